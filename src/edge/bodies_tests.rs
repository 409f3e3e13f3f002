use super::*;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Outer {
    data: Inner,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Inner {
    name: String,
    count: Option<u32>,
    value: Option<serde_json::Number>,
    tags: Option<Vec<String>>,
    properties: Option<serde_json::Map<String, Value>>,
}

fn err<T: DeserializeOwned + fmt::Debug>(text: &str) -> Invalid {
    parse::<T>(text).unwrap_err()
}

fn pointer(text: &str) -> String {
    err::<Outer>(text).pointer
}

#[test]
fn a_well_typed_body_parses() {
    let o: Outer = parse(r#" {"data":{"name":"n","count":2,"tags":["a"],"extra":[1]}} "#).unwrap();
    assert_eq!(o.data.name, "n");
    assert_eq!(o.data.count, Some(2));
}

#[test]
fn malformed_json_points_at_the_entire_body() {
    for text in [
        "",
        "{",
        r#"{"data":}"#,
        r#"{"data":{"name":"n"}} x"#,
        r#"{"data":{"name":"n",}}"#,
        "{'data':1}",
        "[1,]",
        "NaN",
    ] {
        assert_eq!(
            err::<IgnoredAny>(text),
            Invalid::new("", "the body is not valid JSON"),
            "{text}"
        );
    }
}

#[test]
fn a_wrong_type_points_at_the_field_and_says_what_is_expected() {
    let e = err::<Outer>(r#"{"data":{"name":"n","value":"secret@example.com"}}"#);
    assert_eq!(e, Invalid::new("/data/value", "must be a number"));
    let e = err::<Outer>(r#"{"data":{"name":5}}"#);
    assert_eq!(e, Invalid::new("/data/name", "must be a string"));
    let e = err::<Outer>(r#"{"data":{"name":"n","tags":["a",7]}}"#);
    assert_eq!(e, Invalid::new("/data/tags/1", "must be a string"));
    let e = err::<Outer>(r#"{"data":{"name":"n","tags":{}}}"#);
    assert_eq!(e, Invalid::new("/data/tags", "must be an array"));
    let e = err::<Outer>(r#"{"data":{"name":"n","properties":[]}}"#);
    assert_eq!(e, Invalid::new("/data/properties", "must be an object"));
    let e = err::<Outer>(r#"{"data":"x"}"#);
    assert_eq!(e, Invalid::new("/data", "must be an object"));
    let e = err::<Outer>(r#"{"data":{"name":"n","count":-1}}"#);
    assert_eq!(
        e,
        Invalid::new("/data/count", "must be a whole number, 0 or more")
    );
    let e = err::<Outer>("[]");
    assert_eq!(e, Invalid::new("", "must be an object"));
}

#[test]
fn details_never_repeat_the_value() {
    for text in [
        r#"{"data":{"name":"n","value":"secret@example.com"}}"#,
        r#"{"data":{"name":"n","count":"secret@example.com"}}"#,
        r#"{"data":{"name":"n","tags":"secret@example.com"}}"#,
        r#"{"data":"secret@example.com"}"#,
        r#"{"data":{"name":"n","value":"x, expected secret@example.com"}}"#,
    ] {
        let e = err::<Outer>(text);
        assert!(!e.detail.contains("secret"), "{e:?}");
        assert!(!e.detail.contains("line"), "{e:?}");
    }
}

#[test]
fn a_missing_field_points_at_the_field_itself() {
    assert_eq!(
        err::<Outer>(r#"{"data":{"count":1}}"#),
        Invalid::new("/data/name", "is required")
    );
    assert_eq!(err::<Outer>("{}"), Invalid::new("/data", "is required"));
}

#[test]
fn keys_in_pointers_are_escaped_per_rfc_6901() {
    assert_eq!(
        pointer(r#"{"data":{"name":"n","properties":{"a/b~c":[0,1e400]}}}"#),
        "/data/properties/a~1b~0c/1"
    );
    assert_eq!(at("/p", "~/"), "/p/~0~1");
    assert_eq!(at("", ""), "/");
}

#[test]
fn duplicate_keys_are_refused_at_every_depth() {
    let cases = [
        (r#"{"data":{"name":"a"},"data":{"name":"b"}}"#, "/data"),
        (r#"{"data":{"name":"a","name":"b"}}"#, "/data/name"),
        // Unknown fields, which serde would otherwise skip silently.
        (r#"{"data":{"name":"a","x":1,"x":2}}"#, "/data/x"),
        // Inside free-form objects (a map keeps the last one).
        (
            r#"{"data":{"name":"a","properties":{"k":1,"k":2}}}"#,
            "/data/properties/k",
        ),
        (
            r#"{"data":{"name":"a","properties":{"deep":{"x":{"y":1,"y":1}}}}}"#,
            "/data/properties/deep/x/y",
        ),
        // Inside arrays.
        (
            r#"{"data":{"name":"a","properties":{"Items":[{"a":1},{"b":1,"b":1}]}}}"#,
            "/data/properties/Items/1/b",
        ),
        // The same key written two ways is the same key.
        (r#"{"data":{"name":"a","n\u0061me":"b"}}"#, "/data/name"),
        // Escaped in the pointer.
        (r#"{"data":{"name":"a","a/b":1,"a/b":2}}"#, "/data/a~1b"),
    ];
    for (text, at) in cases {
        assert_eq!(
            err::<Outer>(text),
            Invalid::new(at, "is a duplicate key"),
            "{text}"
        );
        // Whatever the target type: even an untyped read refuses them.
        assert_eq!(err::<Value>(text).pointer, at, "{text}");
        assert_eq!(err::<IgnoredAny>(text).pointer, at, "{text}");
    }
    // Past the short list of keys (a hash set takes over): early and late repeats.
    let keys: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
    let wide = format!("{{\"p\":{{{}}}}}", keys.join(","));
    assert!(check(&wide).is_ok());
    for (repeat, at) in [("k3", "/p/k3"), ("k39", "/p/k39"), ("k15", "/p/k15")] {
        let text = format!("{{\"p\":{{{},\"{repeat}\":0}}}}", keys.join(","));
        assert_eq!(check(&text), Err(Invalid::new(at, "is a duplicate key")));
    }
    // The same key in sibling objects is fine.
    assert!(parse::<Value>(r#"[{"a":1},{"a":1}]"#).is_ok());
    assert!(parse::<Value>(r#"{"a":{"a":{"a":1}}}"#).is_ok());
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    for depth in [128, 10_000, 200_000] {
        let arrays = "[".repeat(depth) + &"]".repeat(depth);
        let e = err::<Value>(&arrays);
        assert_eq!(
            e,
            Invalid::new("", "nests arrays and objects 128 or more levels deep")
        );
        let objects = r#"{"a":"#.repeat(depth) + "1" + &"}".repeat(depth);
        assert_eq!(err::<IgnoredAny>(&objects).pointer, "");
        // Unterminated, too.
        assert_eq!(err::<Outer>(&"[".repeat(depth)).pointer, "");
    }
    // serde_json's limit of 128 counts the levels it enters: 127 still parse.
    let ok = "[".repeat(127) + &"]".repeat(127);
    assert!(parse::<Value>(&ok).is_ok());
}

#[test]
fn numbers_beyond_f64_are_refused_where_they_are() {
    assert_eq!(
        err::<Outer>(r#"{"data":{"name":"n","value":1e400}}"#),
        Invalid::new("/data/value", "is a number out of range")
    );
    assert_eq!(
        err::<Value>(r#"{"a":[-1e309]}"#),
        Invalid::new("/a/0", "is a number out of range")
    );
    // Long integers become f64; zero with any exponent is zero.
    let o: Outer =
        parse(r#"{"data":{"name":"n","value":123456789012345678901234567890}}"#).unwrap();
    assert_eq!(
        o.data.value.and_then(|v| v.as_f64()),
        Some(1.2345678901234568e29)
    );
    let o: Outer = parse(r#"{"data":{"name":"n","value":0e2147483647}}"#).unwrap();
    assert_eq!(o.data.value.and_then(|v| v.as_f64()), Some(0.0));
    let o: Outer = parse(r#"{"data":{"name":"n","value":1e-2147483648}}"#).unwrap();
    assert_eq!(o.data.value.and_then(|v| v.as_f64()), Some(0.0));
}

#[test]
fn lone_surrogates_are_not_json_text() {
    for text in [
        r#"{"data":{"name":"\ud800"}}"#,
        r#"{"data":{"name":"\udc00x"}}"#,
        r#"{"\ud800":1}"#,
    ] {
        assert_eq!(err::<IgnoredAny>(text).pointer, "", "{text}");
    }
    // A proper pair is one character.
    let o: Outer = parse(r#"{"data":{"name":"\ud83d\ude00"}}"#).unwrap();
    assert_eq!(o.data.name, "😀");
}

#[test]
fn core_rule_failures_become_pointers() {
    let e = rule(
        "/data/attributes",
        crate::core::validate::email("email", "x@"),
    )
    .unwrap_err();
    assert_eq!(
        e,
        Invalid::new(
            "/data/attributes/email",
            "email is not a valid email address"
        )
    );
}
