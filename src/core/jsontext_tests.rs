use super::*;

fn ok(text: &str) -> String {
    check(text)
        .unwrap_or_else(|at| panic!("{text:?} refused at {at}"))
        .into_owned()
}

#[test]
fn checks_every_kind_of_value() {
    for text in [
        "0",
        "-0.5e+3",
        "12345678901234567890123",
        "true",
        "false",
        "null",
        r#""x\"y\\\n\u0001\ud83d\ude00""#,
        "[]",
        "{}",
        r#"{"a":[1,{"b":null}],"c":"d"}"#,
        r#"[[[]],[{}]]"#,
    ] {
        assert_eq!(ok(text), text);
    }
}

#[test]
fn compacts_whitespace_between_tokens_only() {
    assert_eq!(ok(" { \"a b\" :\n[ 1 ,\t2 ] } "), r#"{"a b":[1,2]}"#);
    assert_eq!(ok(" 7 "), "7");
    assert!(matches!(
        check(r#"{"a":1}"#),
        Ok(std::borrow::Cow::Borrowed(_))
    ));
}

#[test]
fn refuses_malformed_text() {
    for bad in [
        "",
        " ",
        "{",
        "[1,]",
        "[,1]",
        "{\"a\"}",
        "{\"a\":1,}",
        "{,}",
        "{1:2}",
        "01",
        "1.",
        ".5",
        "-",
        "+1",
        "1e",
        "tru",
        "nul",
        "\"\u{1}\"",
        "\"\\q\"",
        "\"\\u12\"",
        "\"\\u+123\"",
        "\"open",
        "{} x",
        "[1 2]",
        "]",
        "[}",
        "{]",
        "NaN",
    ] {
        assert!(check(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn nesting_is_limited_without_recursion() {
    let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
    assert!(check(&deep(MAX_DEPTH)).is_ok());
    assert!(check(&deep(MAX_DEPTH + 1)).is_err());
    // Far deeper than any stack would allow for a recursive parser.
    assert!(check(&"[".repeat(1_000_000)).is_err());
}

#[test]
fn reads_members_and_elements_as_slices() {
    let o = r#"{"a":1,"b":{"c":[1,"]",{"d":"}"}]},"e\"":"x,y","f":null}"#;
    let got: Vec<(&str, &str)> = entries(o).collect();
    assert_eq!(
        got,
        vec![
            (r#""a""#, "1"),
            (r#""b""#, r#"{"c":[1,"]",{"d":"}"}]}"#),
            (r#""e\"""#, r#""x,y""#),
            (r#""f""#, "null"),
        ]
    );
    assert_eq!(get(o, "b"), Some(r#"{"c":[1,"]",{"d":"}"}]}"#));
    assert_eq!(get(o, "e\""), Some(r#""x,y""#));
    assert_eq!(get(o, "zz"), None);
    let arr: Vec<&str> = items(r#"[1,"a,b",[2,3],{"k":"]"},null]"#).collect();
    assert_eq!(arr, vec!["1", r#""a,b""#, "[2,3]", r#"{"k":"]"}"#, "null"]);
    assert_eq!(items("[]").count(), 0);
    assert_eq!(entries("{}").count(), 0);
    assert_eq!(entries("[1]").count(), 0);
}

#[test]
fn the_last_duplicate_key_wins_as_klaviyo_reads_it() {
    assert_eq!(get(r#"{"name":"A","name":"B"}"#, "name"), Some(r#""B""#));
}

#[test]
fn readers_never_panic_on_unchecked_text() {
    for junk in [
        "{\"a",
        "{\"a\":",
        "[\"",
        "{\"\\",
        "[1,",
        "{\"é\":\"",
        "\"\\",
        "[{]",
        "{\"a\":1,\"",
    ] {
        let _ = entries(junk).count();
        let _ = items(junk).count();
        let _ = get(junk, "a");
        let _ = unescape(junk);
    }
}

#[test]
fn unescapes_strings_like_a_browser() {
    assert_eq!(unescape(r#""plain""#).as_deref(), Some("plain"));
    assert_eq!(
        unescape(r#""a\"b\\c\/\n\t\u00e9\ud83d\ude00""#).as_deref(),
        Some("a\"b\\c/\n\té😀")
    );
    // A lone high surrogate is U+FFFD and the escape after it is kept.
    assert_eq!(
        unescape(r#""\ud800\u0041\ud800\n\udc00""#).as_deref(),
        Some("\u{FFFD}A\u{FFFD}\n\u{FFFD}")
    );
    assert_eq!(unescape("12"), None);
    assert_eq!(unescape(r#""\x""#), None);
}

#[test]
fn writes_string_literals_that_read_back() {
    for s in ["", "plain", "q\"b\\s", "ctl\u{1}\u{1f}\n\r\t", "é😀"] {
        let lit = quote(s);
        assert_eq!(ok(&lit), lit);
        assert_eq!(unescape(&lit).as_deref(), Some(s));
    }
    assert_eq!(quote("é\u{1f}\"\\\t"), r#""é\u001f\"\\\t""#);
}

#[test]
fn key_literals_compare_decoded() {
    assert!(key_is(r#""Price""#, "Price"));
    assert!(key_is(r#""Pric\u0065""#, "Price"));
    assert!(!key_is(r#""price""#, "Price"));
}

#[test]
fn objects_are_edited_as_text() {
    let o = r#"{"a":1,"b":2}"#;
    assert_eq!(with(o, "b", Some("3")), r#"{"a":1,"b":3}"#);
    assert_eq!(with(o, "c", Some(r#""x""#)), r#"{"a":1,"b":2,"c":"x"}"#);
    assert_eq!(with(o, "a", None), r#"{"b":2}"#);
    assert_eq!(with("{}", "a", None), "{}");
    let mut w = ObjWriter::new();
    w.raw("k\"", "1").raw("n", "null");
    assert_eq!(w.finish(), r#"{"k\"":1,"n":null}"#);
}
