use super::*;

/// A `__kla_id` as the onsite script writes it: base64 of the JSON.
fn cookie(json: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(json)
}

#[test]
fn base64_reads_both_alphabets_with_or_without_padding() {
    let b64 = |s: &str| base64(s.as_bytes().to_vec());
    assert_eq!(b64("aGk=").as_deref(), Some(&b"hi"[..]));
    assert_eq!(b64("aGk").as_deref(), Some(&b"hi"[..]));
    assert_eq!(b64("-_8").as_deref(), b64("+/8").as_deref());
    assert_eq!(b64("").as_deref(), Some(&b""[..]));
    assert_eq!(b64("a b"), None);
    assert_eq!(b64("aGk=!"), None);
    assert_eq!(cookie(r#"{"a":1}"#), "eyJhIjoxfQ==");
}

fn visitor_of(cookies: &str) -> String {
    read(cookies).visitor
}

#[test]
fn a_known_visitor_is_read_from_the_onsite_cookie() {
    let c = cookie(
        r#"{"cid":"ZjQ5","$exchange_id":"kx.AbC123","$email":"ann@example.com","$phone_number":"+15005550006","$referrer":{"ts":1}}"#,
    );
    let o = read(&format!("_ga=GA1.1; __kla_id={c}; theme=dark"));
    assert_eq!(
        o.visitor,
        r#"{"_kx":"kx.AbC123","email":"ann@example.com","phone_number":"+15005550006"}"#
    );
    assert!(!o.off);
    // Percent-encoded, as some servers write it, and URL-safe base64.
    let encoded = c.replace('=', "%3D");
    assert_eq!(read(&format!("__kla_id={encoded}")), o);
    let url_safe = c.replace('+', "-").replace('/', "_");
    assert_eq!(read(&format!("__kla_id={url_safe}")), o);
}

#[test]
fn a_cookie_that_cannot_be_read_is_ignored() {
    let anonymous = cookie(r#"{"cid":"ZjQ5"}"#);
    let huge = cookie(&format!(r#"{{"$exchange_id":"{}"}}"#, "k".repeat(5000)));
    for cookies in [
        String::new(),
        "other=1".to_string(),
        format!("__kla_id={anonymous}"),
        "__kla_id=not base64!".to_string(),
        format!("__kla_id={}", cookie("not json")),
        format!("__kla_id={}", cookie("[1,2]")),
        format!(
            "__kla_id={}",
            cookie(r#"{"$exchange_id":7,"$email":["a@b.co"]}"#)
        ),
        format!("__kla_id={}", cookie(r#"{"$exchange_id":"","$email":" "}"#)),
        format!("__kla_id={}", cookie(r#"{"$exchange_id":"k\u0041"}"#)),
        format!(
            "__kla_id={}",
            cookie(&format!(r#"{{"$exchange_id":"{}"}}"#, "k".repeat(300)))
        ),
        format!("__kla_id={}", cookie("")),
        format!("__kla_id={huge}"),
        format!("__kla_id={}", cookie("\u{ff}\u{fe}")),
        format!("__kla_id={}%", cookie(r#"{"$exchange_id":"k"}"#)),
        "__kla_id".to_string(),
    ] {
        assert_eq!(
            read(&cookies),
            Onsite {
                visitor: "{}".into(),
                off: false
            },
            "{cookies}"
        );
    }
}

#[test]
fn identifiers_that_are_not_valid_are_dropped_not_sent() {
    let c = cookie(r#"{"$exchange_id":"kx","$email":"not-an-email","$phone_number":"555"}"#);
    assert_eq!(visitor_of(&format!("__kla_id={c}")), r#"{"_kx":"kx"}"#);
}

#[test]
fn kla_off_true_turns_tracking_off_and_nothing_else_does() {
    assert!(read("__kla_off=true").off);
    assert!(read("a=1; __kla_off=true; b=2").off);
    for other in [
        "__kla_off=false",
        "__kla_off=",
        "__kla_off=TRUEish",
        "x__kla_off=true",
        "",
    ] {
        assert!(!read(other).off, "{other}");
    }
    // The first of two wins, as the browser lists the most specific first.
    assert!(!read("__kla_off=false; __kla_off=true").off);
}
