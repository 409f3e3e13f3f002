//! An event's properties as Klaviyo's onsite script reads them (its guides write them
//! so): `track`'s `$value` the event's value and any event's `$event_id` its
//! `unique_id`, where the options give none.

use super::*;

/// The `value`, `value_currency` and `properties` of the one event `args` (the call's
/// JSON text as the adapter hands it over, made now) makes.
fn sent(args: &str) -> (Json, Json, Json) {
    let a = attrs_of(args);
    let currency = a.get("value_currency").cloned().unwrap_or(Json::Null);
    (a["value"].clone(), currency, a["properties"].clone())
}

/// `data.attributes` of the one event `args` makes.
fn attrs_of(args: &str) -> Json {
    let mut p = Page::new();
    p.c.call_json(Op::Track, args, NOW).unwrap();
    attrs(&p.send())
}

#[test]
fn a_number_in_dollar_value_is_the_events_value_in_the_trackers_currency() {
    let (value, currency, props) =
        sent(r#"["id-9",null,"Ordered Pizza",{"$value":23.99,"Size":"L"},null,"eur"]"#);
    assert_eq!(value, num("23.99"), "its exact decimals");
    assert_eq!(currency, "EUR");
    assert_eq!(props, serde_json::json!({ "Size": "L" }), "taken out");
    // Without options or a currency at all.
    let (value, currency, _) = sent(r#"["id-9",null,"Ordered Pizza",{"$value":0}]"#);
    assert_eq!((value, currency), (num("0"), Json::Null));
}

#[test]
fn the_options_value_wins_and_dollar_value_then_stays_a_property() {
    let (value, _, props) = sent(r#"["id-9",null,"M",{"$value":5},{"value":7.5}]"#);
    assert_eq!(value, num("7.5"));
    assert_eq!(props, serde_json::json!({ "$value": 5 }));
    // A value option left out another way (null, blank) is not given.
    for opts in [r#"{"value":null}"#, r#"{"value":" "}"#] {
        let args = format!(r#"["id-9",null,"M",{{"$value":5}},{opts}]"#);
        assert_eq!(sent(&args).0, num("5"), "{opts}");
    }
}

#[test]
fn dollar_value_that_is_not_a_number_stays_a_property_and_the_event_has_no_value() {
    for v in [r#""9,99 €""#, "null", "true", "[1]"] {
        let args = format!(r#"["id-9",null,"M",{{"$value":{v}}},null,"EUR"]"#);
        let (value, currency, props) = sent(&args);
        assert_eq!((value, currency), (Json::Null, Json::Null), "{v}");
        assert_eq!(props["$value"], serde_json::from_str::<Json>(v).unwrap());
    }
}

#[test]
fn dollar_event_id_is_the_unique_id_where_the_options_give_none_a_number_as_its_text() {
    for (id, want) in [
        (r#""order-1001""#, "order-1001"),
        (r#""a\"b""#, "a\"b"),
        ("1001", "1001"),
        ("1e+21", "1e+21"), // as JSON.stringify and JS's String write 1e21
        ("-0.5", "-0.5"),
    ] {
        let a = attrs_of(&format!(
            r#"["id-9",null,"Ordered",{{"$event_id":{id},"n":1}}]"#
        ));
        assert_eq!(a["unique_id"], want, "{id}");
        assert_eq!(
            a["properties"],
            serde_json::json!({ "n": 1 }),
            "taken out: {id}"
        );
    }
    // The options' own wins, and the property stays.
    let a = attrs_of(r#"["id-9",null,"M",{"$event_id":"e-1"},{"uniqueId":"u-1"}]"#);
    assert_eq!(a["unique_id"], "u-1");
    assert_eq!(a["properties"], serde_json::json!({ "$event_id": "e-1" }));
    // Every event call's properties, not track's alone (Klaviyo's guide puts it in its
    // Started Checkout).
    let mut p = Page::new();
    let checkout = r#"{"$event_id":"cart-7_1700000000","$value":19.98}"#;
    p.c.call_json(
        Op::StartedCheckout,
        &format!(r#"["id-9",null,{checkout}]"#),
        NOW,
    )
    .unwrap();
    let a = attrs(&p.send());
    assert_eq!(
        (&a["unique_id"], &a["properties"]),
        (&"cart-7_1700000000".into(), &serde_json::json!({}))
    );
    // Neither text nor a number, or "": the call's own id; the property stays.
    for v in [r#""""#, "null", "true", r#"{"a":1}"#] {
        let a = attrs_of(&format!(
            r#"["id-9",null,"M",{{"$event_id":{v}}},{{"uniqueId":null}}]"#
        ));
        assert_eq!(a["unique_id"], "id-9", "{v}");
        assert_eq!(
            a["properties"]["$event_id"],
            serde_json::from_str::<Json>(v).unwrap()
        );
    }
}

#[test]
fn a_dollar_event_id_klaviyo_would_refuse_refuses_the_call_by_its_name() {
    let mut p = Page::new();
    let long = "x".repeat(256);
    for id in [format!(r#""{long}""#), r#""a\u0007b""#.to_string()] {
        let props = format!(r#"{{"$event_id":{id}}}"#);
        let msg = p.refused(Op::Track, &[r#""M""#, &props]);
        assert_eq!(
            msg,
            "track: $event_id must be 1 to 255 characters without control characters"
        );
    }
    assert_eq!(p.c.pending(), 0, "nothing queued");
}

#[test]
fn a_bad_properties_argument_is_named_before_bad_options() {
    let mut p = Page::new();
    let msg = p.refused(Op::Track, &[r#""M""#, "1", "2"]);
    assert_eq!(msg, "track: properties must be an object");
}
