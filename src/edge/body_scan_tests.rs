//! The one pass against serde_json: whatever it accepts, serde_json accepts (with no
//! duplicate key), and what it finds is what the serde look-up finds; it takes the
//! ordinary bodies itself; and everything it leaves goes to serde_json.

use proptest::prelude::*;

use super::*;
use crate::edge::bodies;
use crate::edge::visitor::slow_facts;

const NESTED: &[&str] = &["data", "attributes", "profile", "data", "attributes"];

fn event(attrs: &str, properties: &str) -> String {
    format!(
        r#"{{"data":{{"type":"event","attributes":{{"properties":{properties},"metric":{{"data":{{"type":"metric","attributes":{{"name":"Viewed Product"}}}}}},"profile":{{"data":{{"type":"profile","attributes":{attrs}}}}}}}}}}}"#
    )
}

/// The one pass agrees with serde_json on `body`; `Some` when it took the body itself.
fn agrees(body: &str) -> Option<Option<Facts<'_>>> {
    let fast = scan(body, NESTED);
    if let Some(facts) = &fast {
        assert_eq!(
            bodies::check(body),
            Ok(()),
            "accepted what serde_json refuses: {body}"
        );
        assert_eq!(
            *facts,
            slow_facts("/client/events", body),
            "found otherwise: {body}"
        );
    }
    fast
}

#[test]
fn ordinary_bodies_are_taken_in_one_pass_and_found_as_serde_finds_them() {
    for attrs in [
        r#"{"email":"a@example.com"}"#,
        "{}",
        "{ }",
        r#"{"anonymous_id":"a-1","_kx":"k","location":{"city":"Oslo"}}"#,
        r#"{"location":{}}"#,
        r#"{"location":{"ip":"203.0.113.9"}}"#,
        r#"{"location":null,"anonymous_id":7}"#,
        r#"{"location":"Oslo","anonymous_id":"a\"b"}"#,
        r#"{ "email" : "a@example.com" , "location" : [ 1 ] }"#,
        r#"{"properties":{"location":{"ip":1}},"anonymous_id":null}"#,
        // Who the body names: an identifier other than null.
        r#"{"email":null}"#,
        r#"{ "email" : null , "phone_number" : "+15005550006" }"#,
        r#"{"external_id":7}"#,
        r#"{"email":{"a":null}}"#,
        r#"{"phone_number":[]}"#,
        r#"{"properties":{"email":"a@b.co"},"external_id":null}"#,
        r#"["not", "an", "object"]"#,
        r#""text""#,
    ] {
        let body = event(
            attrs,
            r#"{"items":[{"n":1.5e3,"s":"\u00e9\ud83d\ude00"}],"t":true,"f":false}"#,
        );
        assert!(agrees(&body).is_some(), "not taken: {body}");
    }
    // Spaced out, and the profiles route's shorter path.
    let spaced = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(&event(r#"{"a":1}"#, "{}")).unwrap_or_default(),
    )
    .unwrap_or_default();
    assert!(agrees(&spaced).is_some());
    let profile = r#"{"data":{"type":"profile","attributes":{"email":"a@example.com"}}}"#;
    let facts = scan(profile, &["data", "attributes"]).flatten();
    assert_eq!(facts, slow_facts("/client/profiles", profile));
    assert!(facts.is_some());
}

#[test]
fn what_it_leaves_goes_to_serde_json() {
    for body in [
        // Refused by serde_json: it names the error.
        event("{}", r#"{"a":1,"a":2}"#),
        event("{}", r#"{"n":1e400}"#),
        event("{}", r#"{"s":"\ud800"}"#),
        event("{}", r#"{"s":"\udc00"}"#),
        event("{}", r#"{"s":"a	b"}"#),
        event("{}", r#"{"n":01}"#),
        event("{}", r#"{"n":1.}"#),
        event("{}", r#"{"n":-}"#),
        event("{}", r#"{"a":tru}"#),
        event("{}", r#"{"a":1,}"#),
        event("{}", r#"[1,]"#),
        format!("{}x", event("{}", "{}")),
        format!("\u{feff}{}", event("{}", "{}")),
        // Three objects, then 125 arrays: 128 levels.
        event("{}", &format!("{}{}", "[".repeat(125), "]".repeat(125))),
        // Accepted by serde_json, but not taken here.
        event("{}", r#"{"\u0061":1,"a":2}"#),
        event(
            "{}",
            &format!(
                "{{{}}}",
                (0..40)
                    .map(|k| format!("\"k{k}\":1"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ),
        r#"{"data":[{"type":"event"}]}"#.to_string(),
    ] {
        assert_eq!(scan(&body, NESTED), None, "{body}");
    }
    // 127 levels are still JSON to serde_json, and to the one pass.
    assert!(agrees(&event(
        "{}",
        &format!("{}{}", "[".repeat(124), "]".repeat(124))
    ))
    .is_some());
}

/// Bytes to build bodies from: JSON's own, and the ones that break it.
const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u",
    "d800",
    "dc00",
    "00e9",
    "1",
    "-",
    ".",
    "e",
    "E",
    "+",
    "0",
    "400",
    "true",
    "null",
    "fals",
    " ",
    "\n",
    "\t",
    "\"a\"",
    "\"a\":1",
    "\u{1}",
    "\"location\":",
    "\"ip\":",
    "\"anonymous_id\":",
    "\"_kx\":",
    "\"data\":",
    "\"attributes\":",
    "\"profile\":",
    "é",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::edge::router::fuzz::cases() * 4))]

    /// A valid body with pieces put in, taken out or swapped: wherever the one pass
    /// accepts, serde_json agrees.
    #[test]
    fn mutated_bodies_never_pass_where_serde_json_would_not(
        attrs in prop::sample::select(vec![
            r#"{"email":"a@example.com"}"#, "{}", r#"{"location":{"city":"x"},"anonymous_id":"a"}"#,
            r#"{"location":{},"_kx":"k"}"#,
        ]),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..3, prop::sample::select(PIECES)), 1..4),
    ) {
        let mut body = event(attrs, r#"{"items":[{"n":1.5,"s":"x"}]}"#);
        for (at, kind, piece) in edits {
            let mut i = at.index(body.len() + 1);
            while !body.is_char_boundary(i) {
                i -= 1;
            }
            match kind {
                0 => body.insert_str(i, piece),
                1 => {
                    let mut j = (i + piece.len()).min(body.len());
                    while !body.is_char_boundary(j) {
                        j -= 1;
                    }
                    body.replace_range(i..j, "");
                }
                _ => {
                    let mut j = (i + piece.len()).min(body.len());
                    while !body.is_char_boundary(j) {
                        j -= 1;
                    }
                    body.replace_range(i..j, piece);
                }
            }
        }
        agrees(&body);
    }

    /// Random JSON values: the one pass takes what it can and agrees.
    #[test]
    fn random_documents_agree(value in json_value(4)) {
        let text = serde_json::to_string(&value).unwrap_or_default();
        let fast = scan(&text, NESTED);
        // Left only with an escape, or an array where the profile's path leads.
        let path_array = text.starts_with('[')
            || ["data", "attributes", "profile"].iter().any(|k| text.contains(&format!("\"{k}\":[")));
        prop_assert!(fast.is_some() || text.contains('\\') || path_array, "not taken: {text}");
        if fast.is_some() {
            prop_assert_eq!(bodies::check(&text), Ok(()));
        }
    }
}

fn json_value(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        (-1e300f64..1e300).prop_map(|n| serde_json::json!(n)),
        "[a-z\u{e9}\"\\\\]{0,8}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(depth, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
