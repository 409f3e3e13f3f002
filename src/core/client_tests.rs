//! Native tests of the client: every call's body shape, validation, identity and the
//! stability of `unique_id` and `time` across resends and restarts.

use super::*;
use crate::core::queue::Endpoint;

/// A deterministic stand-in for `crypto.getRandomValues` (xorshift).
pub struct SeqRng(pub u64);

impl Entropy for SeqRng {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

pub const NOW: u64 = 1_795_669_339_123; // 2026-11-26T05:02:19.123Z

fn config() -> Config {
    Config::from_json(&json::parse(r#"{"companyId":"AbC123"}"#).unwrap()).unwrap()
}

fn client() -> Client<SeqRng> {
    Client::new(config(), None, Vec::new(), "", SeqRng(42))
}

fn body_of(c: &mut Client<SeqRng>) -> (Endpoint, Json) {
    let t = c.poll_transmit(NOW).expect("a transmit");
    (t.endpoint, json::parse(&t.body).unwrap())
}

fn at<'a>(v: &'a Json, path: &[&str]) -> &'a Json {
    path.iter().fold(v, |v, k| v.get(k).unwrap_or(&Json::Null))
}

#[test]
fn track_builds_a_client_event_with_unique_id_and_time() {
    let mut c = client();
    let id = c
        .track(
            "Ordered Sample",
            r#"{"any":"props"}"#,
            r#"{"value":9.5,"valueCurrency":"usd"}"#,
            NOW,
        )
        .unwrap();
    let (ep, body) = body_of(&mut c);
    assert_eq!(ep, Endpoint::Events);
    let a = at(&body, &["data", "attributes"]);
    assert_eq!(at(a, &["unique_id"]).as_str(), Some(id.as_str()));
    assert_eq!(id.len(), 36);
    assert_eq!(at(a, &["time"]).as_str(), Some("2026-11-26T05:02:19Z"));
    assert_eq!(at(a, &["value"]), &Json::Num("9.5".into()));
    assert_eq!(at(a, &["value_currency"]).as_str(), Some("USD"));
    assert_eq!(
        at(a, &["metric", "data", "attributes", "name"]).as_str(),
        Some("Ordered Sample")
    );
    assert_eq!(at(a, &["properties", "any"]).as_str(), Some("props"));
    let profile = at(a, &["profile", "data", "attributes"]);
    assert_eq!(
        at(profile, &["anonymous_id"]).as_str(),
        Some(c.anonymous_id())
    );
}

#[test]
fn explicit_unique_id_and_time_are_kept() {
    let mut c = client();
    let id = c
        .track(
            "M",
            "null",
            r#"{"uniqueId":"order-1","time":"2026-11-20T10:00:00.500Z"}"#,
            NOW,
        )
        .unwrap();
    assert_eq!(id, "order-1");
    let (_, body) = body_of(&mut c);
    assert_eq!(
        at(&body, &["data", "attributes", "time"]).as_str(),
        Some("2026-11-20T10:00:00Z")
    );
    let mut c = client();
    c.track("M", "{}", r#"{"time":1795669339999}"#, NOW)
        .unwrap();
    let (_, body) = body_of(&mut c);
    assert_eq!(
        at(&body, &["data", "attributes", "time"]).as_str(),
        Some("2026-11-26T05:02:19Z")
    );
}

#[test]
fn a_resend_carries_the_same_unique_id_and_time() {
    let mut c = client();
    c.track("M", "{}", "{}", NOW).unwrap();
    let first = c.poll_transmit(NOW).unwrap();
    c.on_outcome(first.id, Outcome::Network, NOW + 5);
    let later = NOW + 3_600_000;
    let second = c.poll_transmit(later).unwrap();
    assert_eq!(first.body, second.body);
}

#[test]
fn a_restart_resends_the_same_body_from_storage() {
    let mut c = client();
    c.identify(r#"{"email":"a@b.co"}"#, NOW).unwrap();
    c.track("M", r#"{"n":1}"#, "{}", NOW).unwrap();
    let sent = c.poll_transmit(NOW).unwrap();
    let mut disk: Vec<(String, String)> = Vec::new();
    let mut identity = None;
    for op in c.take_storage_ops() {
        match op {
            StorageOp::Put { key, value } if key.ends_with(":id") => identity = Some(value),
            StorageOp::Put { key, value } => disk.push((key, value)),
            StorageOp::Remove { key } => disk.retain(|(k, _)| *k != key),
        }
    }
    // The page dies with the request in flight; the next page restores from storage.
    let mut next = Client::new(config(), identity.as_deref(), disk, "", SeqRng(7));
    assert_eq!(next.pending(), 2);
    assert_eq!(next.anonymous_id(), c.anonymous_id());
    let again = next.poll_transmit(NOW + 10).unwrap();
    assert_eq!(again.body, sent.body);
}

#[test]
fn identify_sends_a_profile_and_follows_later_events() {
    let mut c = client();
    c.identify(r#"{"email":"a@b.co","first_name":"Ann","properties":{"vip":true},"location":{"city":"Oslo","latitude":59.9}}"#, NOW)
        .unwrap();
    let (ep, body) = body_of(&mut c);
    assert_eq!(ep, Endpoint::Profiles);
    assert_eq!(at(&body, &["data", "type"]).as_str(), Some("profile"));
    let a = at(&body, &["data", "attributes"]);
    assert_eq!(at(a, &["email"]).as_str(), Some("a@b.co"));
    assert_eq!(at(a, &["first_name"]).as_str(), Some("Ann"));
    assert_eq!(at(a, &["location", "city"]).as_str(), Some("Oslo"));
    assert!(at(a, &["anonymous_id"]).as_str().is_some());
    c.track("M", "{}", "{}", NOW).unwrap();
    let (_, ev) = body_of(&mut c);
    let p = at(
        &ev,
        &["data", "attributes", "profile", "data", "attributes"],
    );
    assert_eq!(at(p, &["email"]).as_str(), Some("a@b.co"));
    assert_eq!(at(p, &["properties", "vip"]), &Json::Bool(true));
}

#[test]
fn kx_from_the_url_is_sent_and_remembered() {
    let c0 = Client::new(
        config(),
        None,
        Vec::new(),
        "?utm_source=x&_kx=abc%3D%3D.XyZ",
        SeqRng(1),
    );
    let mut c = c0;
    c.track("M", "{}", "{}", NOW).unwrap();
    let (_, ev) = body_of(&mut c);
    assert_eq!(
        at(
            &ev,
            &["data", "attributes", "profile", "data", "attributes", "_kx"]
        )
        .as_str(),
        Some("abc==.XyZ")
    );
    let stored = c
        .take_storage_ops()
        .into_iter()
        .find_map(|op| match op {
            StorageOp::Put { key, value } if key == "klaviyo:AbC123:id" => Some(value),
            _ => None,
        })
        .unwrap();
    let mut next = Client::new(config(), Some(&stored), Vec::new(), "", SeqRng(2));
    next.track("M", "{}", "{}", NOW).unwrap();
    let (_, ev) = body_of(&mut next);
    assert_eq!(
        at(
            &ev,
            &["data", "attributes", "profile", "data", "attributes", "_kx"]
        )
        .as_str(),
        Some("abc==.XyZ")
    );
}

#[test]
fn reset_starts_a_new_anonymous_profile() {
    let mut c = client();
    c.identify(r#"{"email":"a@b.co"}"#, NOW).unwrap();
    let before = c.anonymous_id().to_string();
    c.reset();
    assert_ne!(c.anonymous_id(), before);
    c.track("M", "{}", "{}", NOW).unwrap();
    let t = c.poll_transmit(NOW).unwrap(); // the identify
    assert_eq!(t.endpoint, Endpoint::Profiles);
    let (_, ev) = body_of(&mut c);
    let p = at(
        &ev,
        &["data", "attributes", "profile", "data", "attributes"],
    );
    assert_eq!(p.get("email"), None);
    assert_eq!(at(p, &["anonymous_id"]).as_str(), Some(c.anonymous_id()));
}

#[test]
fn the_anonymous_id_is_made_once_and_kept() {
    let c = client();
    let stored = Identity::new(c.anonymous_id().to_string()).to_storage();
    let again = Client::new(config(), Some(&stored), Vec::new(), "", SeqRng(99));
    assert_eq!(again.anonymous_id(), c.anonymous_id());
}

#[test]
fn bad_input_names_the_field_and_queues_nothing() {
    let cases: &[(&str, &str)] = &[
        (r#"{"email":"x@"}"#, "identify: email is not a valid email address"),
        (r#"{"phone_number":"5550006"}"#, "identify: phone_number must be in E.164 format, like +15005550006"),
        (r#"{"nickname":"x"}"#, "identify: nickname is not a Klaviyo profile attribute (put custom data in properties)"),
        (r#"{}"#, "identify: profile needs at least one of email, phone_number, external_id or an attribute"),
        (r#"[1]"#, "identify: profile must be an object"),
    ];
    for (args, msg) in cases {
        let mut c = client();
        let e = c.identify(args, NOW).unwrap_err();
        assert_eq!(e.message("identify"), *msg);
        assert_eq!(c.pending(), 0);
    }
    let track_cases: &[(&str, &str, &str, &str)] = &[
        ("", "{}", "{}", "metric"),
        ("M", "[]", "{}", "properties"),
        (
            "M",
            "{}",
            r#"{"value":null,"valueCurrency":"US"}"#,
            "valueCurrency",
        ),
        ("M", "{}", r#"{"value":"9"}"#, "value"),
        ("M", "{}", r#"{"time":"1989-12-31T23:59:59Z"}"#, "time"),
        ("M", "{}", r#"{"time":"2029-01-01T00:00:00Z"}"#, "time"),
        ("M", "{}", r#"{"time":"yesterday"}"#, "time"),
        ("M", "{}", r#"{"uniqueId":""}"#, "uniqueId"),
    ];
    for (metric, props, opts, field) in track_cases {
        let mut c = client();
        let e = c.track(metric, props, opts, NOW).unwrap_err();
        assert_eq!(e.field, *field, "{metric} {props} {opts}");
        assert_eq!(c.pending(), 0);
    }
}

#[test]
fn a_failed_call_leaves_the_queue_untouched() {
    let mut c = client();
    c.track("M", "{}", "{}", NOW).unwrap();
    let _ = c.take_storage_ops();
    assert!(c.track("", "{}", "{}", NOW).is_err());
    assert_eq!(c.pending(), 1);
    assert!(c.take_storage_ops().is_empty());
}

#[test]
fn viewed_product_uses_price_as_value() {
    let mut c = client();
    c.commerce(Commerce::ViewedProduct,
        r#"{"ProductID":1111,"ProductName":"Pooh","SKU":"WINNIEPOOH","Price":9.99,"Categories":["Kids"],"URL":"https://x/p","ImageURL":"https://x/i.png","Brand":"Kids Book","CompareAtPrice":12}"#,
        "null",
        NOW,
    )
    .unwrap();
    let (_, body) = body_of(&mut c);
    let a = at(&body, &["data", "attributes"]);
    assert_eq!(
        at(a, &["metric", "data", "attributes", "name"]).as_str(),
        Some("Viewed Product")
    );
    assert_eq!(at(a, &["value"]), &Json::Num("9.99".into()));
    assert_eq!(at(a, &["properties", "SKU"]).as_str(), Some("WINNIEPOOH"));
    for (props, field) in [
        (r#"{"ProductName":"P"}"#, "ProductID"),
        (r#"{"ProductID":"1"}"#, "ProductName"),
        (
            r#"{"ProductID":"1","ProductName":"P","Price":"9"}"#,
            "Price",
        ),
        (
            r#"{"ProductID":"1","ProductName":"P","Categories":"a"}"#,
            "Categories",
        ),
    ] {
        assert_eq!(
            c.commerce(Commerce::ViewedProduct, props, "null", NOW)
                .unwrap_err()
                .field,
            field
        );
    }
}

#[test]
fn added_to_cart_value_is_cart_total_else_price_times_quantity() {
    let mut c = client();
    c.commerce(
        Commerce::AddedToCart,
        r#"{"ProductID":"p","ProductName":"P","Quantity":3,"Price":19.99}"#,
        "null",
        NOW,
    )
    .unwrap();
    let (_, body) = body_of(&mut c);
    assert_eq!(
        at(&body, &["data", "attributes", "value"]),
        &Json::Num("59.97".into())
    );
    let mut c = client();
    c.commerce(Commerce::AddedToCart,
        r#"{"ProductID":"p","ProductName":"P","Quantity":1,"Price":5,"CartTotal":42.5,"ItemNames":["P","Q"],"Items":[{"ProductID":"q"}]}"#,
        "null",
        NOW,
    )
    .unwrap();
    let (_, body) = body_of(&mut c);
    assert_eq!(
        at(&body, &["data", "attributes", "value"]),
        &Json::Num("42.5".into())
    );
    for (props, field) in [
        (r#"{"ProductID":"p","ProductName":"P"}"#, "Price"),
        (
            r#"{"ProductID":"p","ProductName":"P","Price":1,"Quantity":0}"#,
            "Quantity",
        ),
        (
            r#"{"ProductID":"p","ProductName":"P","Price":1,"Quantity":-2}"#,
            "Quantity",
        ),
        (
            r#"{"ProductID":"p","ProductName":"P","Price":1,"ItemNames":[1]}"#,
            "ItemNames",
        ),
    ] {
        assert_eq!(
            c.commerce(Commerce::AddedToCart, props, "null", NOW)
                .unwrap_err()
                .field,
            field
        );
    }
}

#[test]
fn started_checkout_moves_value_out_of_properties() {
    let mut c = client();
    c.commerce(Commerce::StartedCheckout,
        r#"{"CheckoutURL":"https://x/c","ItemNames":["A"],"Items":[],"value":30,"Categories":["K"]}"#,
        "null",
        NOW,
    )
    .unwrap();
    let (_, body) = body_of(&mut c);
    let a = at(&body, &["data", "attributes"]);
    assert_eq!(at(a, &["value"]), &Json::Num("30".into()));
    assert_eq!(at(a, &["properties"]).get("value"), None);
    assert_eq!(
        c.commerce(Commerce::StartedCheckout, r#"{"value":"x"}"#, "null", NOW)
            .unwrap_err()
            .field,
        "value"
    );
}

#[test]
fn subscribe_builds_consent_for_each_channel() {
    let mut c = client();
    c.subscribe(r#"{"listId":"Y6nRLr","email":"a@b.co","phone_number":"+15005550006","channels":["email","SMS"]}"#, NOW)
        .unwrap();
    let (ep, body) = body_of(&mut c);
    assert_eq!(ep, Endpoint::Subscriptions);
    assert_eq!(
        at(&body, &["data", "relationships", "list", "data", "id"]).as_str(),
        Some("Y6nRLr")
    );
    let p = at(
        &body,
        &["data", "attributes", "profile", "data", "attributes"],
    );
    assert_eq!(
        at(p, &["subscriptions", "sms", "marketing", "consent"]).as_str(),
        Some("SUBSCRIBED")
    );
    assert_eq!(p.get("anonymous_id"), None);
    for (args, field) in [
        (r#"{"email":"a@b.co","channels":["email"]}"#, "listId"),
        (r#"{"listId":"L","email":"a@b.co"}"#, "channels"),
        (
            r#"{"listId":"L","email":"a@b.co","channels":["fax"]}"#,
            "channels",
        ),
        (r#"{"listId":"L","channels":["email"]}"#, "email"),
        (
            r#"{"listId":"L","email":"a@b.co","channels":["sms"]}"#,
            "phone_number",
        ),
        (
            r#"{"listId":"L","email":"nope","channels":["email"]}"#,
            "email",
        ),
    ] {
        assert_eq!(c.subscribe(args, NOW).unwrap_err().field, field, "{args}");
    }
}

#[test]
fn subscribe_uses_the_identified_email() {
    let mut c = client();
    c.identify(r#"{"email":"a@b.co"}"#, NOW).unwrap();
    let _ = c.poll_transmit(NOW);
    c.subscribe(r#"{"listId":"L","channels":["email"]}"#, NOW)
        .unwrap();
    let (_, body) = body_of(&mut c);
    let p = at(
        &body,
        &["data", "attributes", "profile", "data", "attributes"],
    );
    assert_eq!(at(p, &["email"]).as_str(), Some("a@b.co"));
}

#[test]
fn back_in_stock_names_the_variant_and_channels() {
    let mut c = client();
    c.back_in_stock(
        r#"{"variantId":"$custom:::$default:::SKU-1","email":"a@b.co","channels":["email"]}"#,
        NOW,
    )
    .unwrap();
    let (ep, body) = body_of(&mut c);
    assert_eq!(ep, Endpoint::BackInStock);
    assert_eq!(
        at(&body, &["data", "relationships", "variant", "data", "id"]).as_str(),
        Some("$custom:::$default:::SKU-1")
    );
    assert_eq!(
        at(&body, &["data", "attributes", "channels"]),
        &Json::Arr(vec![Json::str("EMAIL")])
    );
    assert_eq!(
        c.back_in_stock(r#"{"email":"a@b.co","channels":["email"]}"#, NOW)
            .unwrap_err()
            .field,
        "variantId"
    );
    assert_eq!(
        c.back_in_stock(r#"{"variantId":"a:::b:::c","channels":["email"]}"#, NOW)
            .unwrap_err()
            .field,
        "email"
    );
    assert_eq!(
        c.back_in_stock(
            r#"{"variantId":"SKU-1","email":"a@b.co","channels":["email"]}"#,
            NOW
        )
        .unwrap_err()
        .field,
        "variantId"
    );
}

#[test]
fn events_of_one_profile_share_a_bulk_request() {
    let mut c = client();
    for i in 0..5 {
        c.track("M", &format!(r#"{{"i":{i}}}"#), "{}", NOW).unwrap();
    }
    let (ep, body) = body_of(&mut c);
    assert_eq!(ep, Endpoint::BulkEvents);
    let Json::Arr(events) = at(&body, &["data", "attributes", "events", "data"]) else {
        panic!("no events")
    };
    assert_eq!(events.len(), 5);
    assert_eq!(
        at(&events[4], &["attributes", "properties", "i"]),
        &Json::Num("4".into())
    );
    assert!(c.poll_transmit(NOW).is_none());
}

#[test]
fn oversized_properties_are_refused_before_queueing() {
    let mut c = client();
    let big = format!(
        r#"{{"a":"{}"}}"#,
        "x".repeat(validate::MAX_STRING_BYTES + 1)
    );
    assert_eq!(
        c.track("M", &big, "{}", NOW).unwrap_err().field,
        "properties.a"
    );
    let many: Vec<String> = (0..60)
        .map(|i| format!(r#""k{i}":"{}""#, "y".repeat(100_000)))
        .collect();
    let huge = format!("{{{}}}", many.join(","));
    assert_eq!(c.track("M", &huge, "{}", NOW).unwrap_err().field, "body");
    assert_eq!(c.pending(), 0);
}

#[test]
fn a_reused_unique_id_is_sent_separately_and_both_leave_the_queue() {
    let mut c = client();
    c.track("A", "{}", r#"{"uniqueId":"dup-1"}"#, NOW).unwrap();
    c.track("B", "{}", r#"{"uniqueId":"dup-1"}"#, NOW).unwrap();
    let first = c.poll_transmit(NOW).unwrap();
    assert_eq!(
        first.endpoint,
        Endpoint::Events,
        "a bulk request must not repeat a unique_id"
    );
    let second = c.poll_transmit(NOW).unwrap();
    assert_eq!(second.endpoint, Endpoint::Events);
    assert_ne!(first.body, second.body);
    let accepted = || Outcome::Status {
        status: 202,
        retry_after_s: None,
        body: String::new(),
    };
    c.on_outcome(first.id, accepted(), NOW);
    c.on_outcome(second.id, accepted(), NOW);
    assert_eq!(c.pending(), 0);
    let puts = c
        .take_storage_ops()
        .into_iter()
        .filter(|op| matches!(op, StorageOp::Put { key, .. } if key.contains(":q:")))
        .count();
    assert_eq!(puts, 2, "two storage records, not one overwritten");
}

#[test]
fn a_unique_id_with_a_newline_is_refused() {
    let mut c = client();
    assert_eq!(
        c.track("A", "{}", r#"{"uniqueId":"a\nb"}"#, NOW)
            .unwrap_err()
            .field,
        "uniqueId"
    );
}
