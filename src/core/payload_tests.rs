use super::*;

fn ev(unique_id: &str) -> Event<'_> {
    Event {
        time_s: 1_795_669_339,
        unique_id,
        value: "9.5",
        currency: "USD",
        metric: r#""Viewed Product""#,
        properties: r#"{"ProductID":"p1"}"#,
    }
}

#[test]
fn client_event_has_the_exact_jsonapi_shape() {
    let mut out = String::new();
    client_event(&ev(r#""u-1""#), r#"{"anonymous_id":"a-1"}"#, &mut out);
    assert_eq!(
        out,
        r#"{"data":{"type":"event","attributes":{"properties":{"ProductID":"p1"},"time":"2026-11-26T05:02:19Z","value":9.5,"value_currency":"USD","unique_id":"u-1","metric":{"data":{"type":"metric","attributes":{"name":"Viewed Product"}}},"profile":{"data":{"type":"profile","attributes":{"anonymous_id":"a-1"}}}}}}"#
    );
    assert!(jt::check(&out).is_ok());
}

#[test]
fn optional_value_and_currency_are_left_out() {
    let mut e = ev(r#""u-1""#);
    e.value = "";
    e.currency = "";
    let mut out = String::new();
    client_event(&e, "{}", &mut out);
    assert!(!out.contains("value"));
    assert!(jt::check(&out).is_ok());
}

#[test]
fn bulk_body_shares_one_profile() {
    let mut out = String::new();
    bulk_client_events(
        r#"{"email":"a@b.co"}"#,
        [ev(r#""u-1""#), ev(r#""u-2""#)].into_iter(),
        &mut out,
    );
    let v = jt::check(&out).unwrap();
    let attrs = jt::get(jt::get(&v, "data").unwrap(), "attributes").unwrap();
    assert_eq!(
        jt::get(attrs, "profile"),
        Some(r#"{"data":{"type":"profile","attributes":{"email":"a@b.co"}}}"#)
    );
    let events: Vec<&str> =
        jt::items(jt::get(jt::get(attrs, "events").unwrap(), "data").unwrap()).collect();
    assert_eq!(events.len(), 2);
    assert_eq!(jt::get(events[1], "type"), Some(r#""event""#));
    // The per-event allowance used to size batches covers the wrapper and keys.
    let one = {
        let mut o = String::new();
        bulk_client_events("{}", [ev(r#""u""#)].into_iter(), &mut o);
        o.len()
    };
    let two = out.len() - r#"{"email":"a@b.co"}"#.len() + 2;
    let e = ev(r#""u""#);
    let fields =
        e.unique_id.len() + e.value.len() + e.currency.len() + e.metric.len() + e.properties.len();
    assert!(two - one - fields <= EVENT_OVERHEAD);
}

#[test]
fn subscription_and_back_in_stock_shapes() {
    let sub = client_subscription("Lst123", r#"{"email":"a@b.co"}"#, &["email", "sms"], None);
    assert_eq!(
        sub,
        r#"{"data":{"type":"subscription","attributes":{"profile":{"data":{"type":"profile","attributes":{"email":"a@b.co","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED"}},"sms":{"marketing":{"consent":"SUBSCRIBED"}}}}}}},"relationships":{"list":{"data":{"type":"list","id":"Lst123"}}}}}"#
    );
    let bis = client_back_in_stock(
        "$shopify:::$default:::42",
        r#"{"email":"a@b.co"}"#,
        &["email"],
    );
    assert_eq!(
        bis,
        r#"{"data":{"type":"back-in-stock-subscription","attributes":{"channels":["EMAIL"],"profile":{"data":{"type":"profile","attributes":{"email":"a@b.co"}}}},"relationships":{"variant":{"data":{"type":"catalog-variant","id":"$shopify:::$default:::42"}}}}}"#
    );
    let src = client_subscription("L", "{}", &["email"], Some("Footer \"form\""));
    assert!(src.contains(r#""custom_source":"Footer \"form\"""#));
    assert!(jt::check(&src).is_ok());
}
