use super::*;

#[test]
fn company_id_is_six_alphanumerics() {
    assert!(company_id("AbC123").is_ok());
    for bad in ["AbC12", "AbC1234", "AbC-12", "", "ÄbC123"] {
        assert_eq!(company_id(bad).unwrap_err().field, "companyId");
    }
}

#[test]
fn email_accepts_ordinary_addresses_and_rejects_broken_ones() {
    for ok in [
        "a@b.co",
        "first.last+tag@shop.example.com",
        "x@sub-domain.io",
    ] {
        assert!(email("email", ok).is_ok(), "{ok}");
    }
    for bad in [
        "x@", "@b.co", "a b@c.de", "a@b", "a@b..c", "a@-b.c", "plain", "a@b.c d", "a@b@c.de",
    ] {
        let e = email("email", bad).unwrap_err();
        assert_eq!(
            e.message("identify"),
            "identify: email is not a valid email address"
        );
    }
}

#[test]
fn phone_must_be_e164() {
    assert!(phone("phone_number", "+15005550006").is_ok());
    assert!(phone("phone_number", "+4915112345678").is_ok());
    for bad in [
        "15005550006",
        "+0123456789",
        "+1 500 555 0006",
        "+12",
        "+1234567890123456",
    ] {
        assert!(phone("phone_number", bad).is_err(), "{bad}");
    }
}

#[test]
fn metric_name_is_1_to_128_chars() {
    assert!(metric_name("metric", "Viewed Product").is_ok());
    assert!(metric_name("metric", &"é".repeat(128)).is_ok());
    assert!(metric_name("metric", &"é".repeat(129)).is_err());
    assert!(metric_name("metric", "").is_err());
    assert!(metric_name("metric", "   ").is_err());
}

fn obj(n: usize) -> String {
    let mut o = String::from("{");
    for i in 0..n {
        if i > 0 {
            o.push(',');
        }
        o.push_str(&jt::quote(&i.to_string()));
        o.push_str(":null");
    }
    o + "}"
}

#[test]
fn properties_must_be_a_small_enough_object() {
    assert!(properties("properties", "{}").is_ok());
    assert_eq!(
        properties("properties", "[1]").unwrap_err().reason,
        "must be an object"
    );
    assert_eq!(
        properties("properties", &obj(401)).unwrap_err().reason,
        "has more than 400 keys"
    );
    assert!(properties("properties", &obj(400)).is_ok());
    // The shortest possible 401 members: one-character keys would not be distinct,
    // so this is the floor the length shortcut relies on.
    let tight = format!("{{{}}}", vec![r#""":0"#; 401].join(","));
    assert!(tight.len() > 5 * MAX_PROPERTIES);
    assert!(properties("properties", &tight).is_err());
}

#[test]
fn no_string_over_100_kb_anywhere_and_the_field_is_named() {
    let long = jt::quote(&"x".repeat(MAX_STRING_BYTES + 1));
    let fits = jt::quote(&"x".repeat(MAX_STRING_BYTES));
    let top = format!(r#"{{"Description":{long}}}"#);
    assert_eq!(
        properties("properties", &top).unwrap_err().field,
        "properties.Description"
    );
    let nested = format!(r#"{{"Items":[{{"Note":{long}}}]}}"#);
    assert_eq!(
        properties("properties", &nested).unwrap_err().field,
        "properties.Items.Note"
    );
    assert!(properties("properties", &format!(r#"{{"D":{fits}}}"#)).is_ok());
    // Keys passed on the way leave nothing in the path.
    let after = format!(r#"{{"A":{{"B":[{fits}]}},"C":[1,{{"D":{long}}}]}}"#);
    assert_eq!(
        properties("properties", &after).unwrap_err().field,
        "properties.C.D"
    );
    // Escapes count as the characters they stand for.
    let escaped = jt::quote(&"\n".repeat(MAX_STRING_BYTES / 2));
    assert!(escaped.len() > MAX_STRING_BYTES);
    assert!(properties("properties", &format!(r#"{{"E":{escaped}}}"#)).is_ok());
}

#[test]
fn body_is_at_most_5_mb() {
    assert!(body_size(MAX_BODY_BYTES).is_ok());
    assert!(body_size(MAX_BODY_BYTES + 1).is_err());
}

#[test]
fn time_is_between_1990_and_a_year_ahead() {
    let now_ms = 1_795_669_339_000;
    assert!(event_time("time", MIN_TIME_S, now_ms).is_ok());
    assert!(event_time("time", MIN_TIME_S - 1, now_ms).is_err());
    assert!(event_time("time", 1_795_669_339 + 365 * 86_400, now_ms).is_ok());
    assert!(event_time("time", 1_795_669_339 + 367 * 86_400, now_ms).is_err());
}

#[test]
fn value_must_be_a_number_and_currency_three_letters() {
    assert_eq!(number("value", "9.5"), Ok("9.5"));
    assert!(number("value", "null").is_err());
    assert!(number("value", r#""9.5""#).is_err());
    assert_eq!(currency("valueCurrency", r#""usd""#).unwrap(), "USD");
    for bad in [r#""US""#, r#""USDX""#, r#""U$D""#, "7"] {
        assert!(currency("valueCurrency", bad).is_err(), "{bad}");
    }
}

#[test]
fn unique_ids_and_non_empty_strings() {
    assert_eq!(unique_id("uniqueId", r#""order-1""#), Ok(r#""order-1""#));
    let long = jt::quote(&"u".repeat(256));
    for bad in [r#""""#, r#""a""#, "12", long.as_str()] {
        assert!(unique_id("uniqueId", bad).is_err(), "{bad}");
    }
    assert_eq!(non_empty("listId", Some(r#""L1""#)).as_deref(), Ok("L1"));
    for bad in [None, Some(r#""  ""#), Some("1"), Some("null")] {
        assert!(non_empty("listId", bad).is_err());
    }
}

#[test]
fn plain_value_helpers_apply_the_same_rules() {
    assert_eq!(currency_code("value_currency", "eur").unwrap(), "EUR");
    assert!(currency_code("value_currency", "EURO").is_err());
    assert!(unique_id_text("unique_id", "order-1").is_ok());
    assert!(unique_id_text("unique_id", "").is_err());
    assert!(unique_id_text("unique_id", "a\u{7}b").is_err());
    assert!(unique_id_text("unique_id", &"u".repeat(256)).is_err());
    assert!(property_count("properties", 400).is_ok());
    assert_eq!(
        property_count("properties", 401).unwrap_err().reason,
        "has more than 400 keys"
    );
    assert!(property_string("p", &"x".repeat(MAX_STRING_BYTES)).is_ok());
    assert_eq!(
        property_string("p", &"x".repeat(MAX_STRING_BYTES + 1))
            .unwrap_err()
            .reason,
        "is a string longer than 100 KB"
    );
}

#[test]
fn revision_and_api_base_shapes() {
    assert!(revision("2026-07-15").is_ok());
    assert!(revision("2026-07-15.pre").is_ok());
    assert!(revision("2026-7-15").is_err());
    assert!(api_base("https://a.klaviyo.com").is_ok());
    assert!(api_base("http://127.0.0.1:8787/proxy").is_ok());
    for bad in ["a.klaviyo.com", "https://", "ftp://x", "https://x?y"] {
        assert!(api_base(bad).is_err(), "{bad}");
    }
}
