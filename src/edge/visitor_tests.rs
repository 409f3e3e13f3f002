//! The visitor's additions to `/client` bodies, natively: inserted where absent, never a
//! duplicate key, every other byte as sent.

use super::*;
use crate::edge::bodies;

fn ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

fn event(profile_attrs: &str) -> String {
    format!(
        r#"{{"data":{{"type":"event","attributes":{{"properties":{{"a":1}},"metric":{{"data":{{"type":"metric","attributes":{{"name":"Viewed Product"}}}}}},"profile":{{"data":{{"type":"profile","attributes":{profile_attrs}}}}}}}}}}}"#
    )
}

fn attrs_of(route: &str, body: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(body).expect("json");
    match route {
        "/client/profiles" => v["data"]["attributes"].clone(),
        _ => v["data"]["attributes"]["profile"]["data"]["attributes"].clone(),
    }
}

/// The result is JSON without duplicate keys, and apart from the profile's attributes,
/// the same document.
fn checked(route: &str, before: &str, after: &str) {
    bodies::check(after).expect("still one JSON document without duplicate keys");
    let mut a: serde_json::Value = serde_json::from_str(before).expect("json");
    let mut b: serde_json::Value = serde_json::from_str(after).expect("json");
    let strip = |v: &mut serde_json::Value| match route {
        "/client/profiles" => v["data"]["attributes"] = serde_json::Value::Null,
        _ => v["data"]["attributes"]["profile"]["data"]["attributes"] = serde_json::Value::Null,
    };
    strip(&mut a);
    strip(&mut b);
    assert_eq!(a, b, "nothing else changed");
}

#[test]
fn the_visitor_address_becomes_location_ip_where_the_profile_has_none() {
    let add = Additions {
        ip: ip("203.0.113.7"),
        id: None,
    };
    for (attrs, want) in [
        (
            r#"{"anonymous_id":"a-1"}"#,
            serde_json::json!({"ip": "203.0.113.7"}),
        ),
        ("{}", serde_json::json!({"ip": "203.0.113.7"})),
        ("{ }", serde_json::json!({"ip": "203.0.113.7"})),
        (
            r#"{"location":{"city":"Boston"}}"#,
            serde_json::json!({"ip": "203.0.113.7", "city": "Boston"}),
        ),
        (
            r#"{"location":{}}"#,
            serde_json::json!({"ip": "203.0.113.7"}),
        ),
    ] {
        let body = event(attrs);
        let out = enrich("/client/events", &body, &add).expect("changed");
        checked("/client/events", &body, &out);
        assert_eq!(
            attrs_of("/client/events", &out)["location"],
            want,
            "{attrs}"
        );
    }
}

#[test]
fn a_location_ip_the_page_gave_is_kept_and_the_body_sent_as_received() {
    let add = Additions {
        ip: ip("203.0.113.7"),
        id: None,
    };
    for attrs in [
        r#"{"location":{"ip":"198.51.100.1"}}"#,
        r#"{"location":{"ip":null}}"#,
        r#"{"location":null}"#,
        r#"{"location":"somewhere"}"#,
    ] {
        assert_eq!(
            enrich("/client/events", &event(attrs), &add),
            None,
            "{attrs}"
        );
    }
    assert_eq!(
        enrich("/client/events", &event("{}"), &Additions::default()),
        None
    );
}

#[test]
fn every_client_route_with_a_profile_gets_it_but_back_in_stock() {
    let add = Additions {
        ip: ip("2001:db8::7"),
        id: None,
    };
    let profile = r#"{"data":{"type":"profile","attributes":{"email":"a@b.co"}}}"#;
    let subscription = format!(
        r#"{{"data":{{"type":"subscription","attributes":{{"profile":{profile}}},"relationships":{{"list":{{"data":{{"type":"list","id":"Xy12"}}}}}}}}}}"#
    );
    let bulk = format!(
        r#"{{"data":{{"type":"event-bulk-create","attributes":{{"profile":{profile},"events":{{"data":[]}}}}}}}}"#
    );
    for (route, body) in [
        ("/client/profiles", profile.to_string()),
        ("/client/subscriptions", subscription),
        ("/client/event-bulk-create", bulk),
    ] {
        let out = enrich(route, &body, &add).unwrap_or_else(|| panic!("{route}"));
        checked(route, &body, &out);
        assert_eq!(
            attrs_of(route, &out)["location"]["ip"],
            "2001:db8::7",
            "{route}"
        );
        assert_eq!(attrs_of(route, &out)["email"], "a@b.co");
    }
    let bis = format!(
        r#"{{"data":{{"type":"back-in-stock-subscription","attributes":{{"channels":["EMAIL"],"profile":{profile}}}}}}}"#
    );
    assert_eq!(
        enrich("/client/back-in-stock-subscriptions", &bis, &add),
        None
    );
}

#[test]
fn a_body_not_of_the_routes_shape_is_left_to_klaviyo() {
    let add = Additions {
        ip: ip("203.0.113.7"),
        id: None,
    };
    for body in [
        "[]",
        r#"{"data":[]}"#,
        r#"{"data":{"attributes":{"profile":{"data":{"attributes":[]}}}}}"#,
        "{}",
    ] {
        assert_eq!(enrich("/client/events", body, &add), None, "{body}");
    }
}

#[test]
fn the_cookies_identity_replaces_the_anonymous_id_and_fills_a_missing_kx() {
    let id = VisitorId::new("anon-from-cookie", Some("kx-from-cookie")).unwrap();
    let add = Additions {
        ip: None,
        id: Some(&id),
    };
    let body = event(r#"{"anonymous_id":"fresh-after-wipe","first_name":"Ann"}"#);
    let out = enrich("/client/events", &body, &add).expect("changed");
    checked("/client/events", &body, &out);
    let a = attrs_of("/client/events", &out);
    assert_eq!(a["anonymous_id"], "anon-from-cookie");
    assert_eq!(a["_kx"], "kx-from-cookie");
    assert_eq!(a["first_name"], "Ann");
    // A _kx the page has (a newer email click) stays.
    let body = event(r#"{"anonymous_id":"x","_kx":"kx-from-the-url"}"#);
    let a = attrs_of(
        "/client/events",
        &enrich("/client/events", &body, &add).expect("changed"),
    );
    assert_eq!(a["_kx"], "kx-from-the-url");
    // The same identity: sent as received.
    let body = event(r#"{"anonymous_id":"anon-from-cookie","_kx":"k"}"#);
    assert_eq!(enrich("/client/events", &body, &add), None);
}

#[test]
fn the_cookies_kx_never_goes_beside_an_identifier_the_page_sent() {
    // A shared device: the cookie keeps Ann's email click; Bob's call names him.
    let id = VisitorId::new("anon-from-cookie", Some("kx-of-ann")).unwrap();
    let add = Additions {
        ip: None,
        id: Some(&id),
    };
    for named in [
        r#"{"email":"bob@example.com"}"#,
        r#"{"phone_number":"+15005550006"}"#,
        r#"{"external_id":"c-7"}"#,
        r#"{"first_name":"Bob","external_id":"c-7","email":null}"#,
    ] {
        let a = attrs_of(
            "/client/events",
            &enrich("/client/events", &event(named), &add).unwrap(),
        );
        assert_eq!(a.get("_kx"), None, "{named}");
        assert_eq!(a["anonymous_id"], "anon-from-cookie", "{named}");
    }
    // `null` names nobody: the _kx links the visit.
    for anonymous in [r#"{"email":null}"#, r#"{"email":null,"phone_number":null}"#] {
        let a = attrs_of(
            "/client/events",
            &enrich("/client/events", &event(anonymous), &add).unwrap(),
        );
        assert_eq!(a["_kx"], "kx-of-ann", "{anonymous}");
    }
}

#[test]
fn each_route_gets_only_the_members_its_profile_takes() {
    // Klaviyo refuses a member the profile's schema does not define, and the page's
    // queue drops a refused call: a subscription would be lost.
    let id = VisitorId::new("anon-from-cookie", Some("kx-from-cookie")).unwrap();
    let add = Additions {
        ip: ip("203.0.113.7"),
        id: Some(&id),
    };
    let profile = r#"{"data":{"type":"profile","attributes":{"email":"a@b.co"}}}"#;
    let subscription = format!(
        r#"{{"data":{{"type":"subscription","attributes":{{"profile":{profile}}},"relationships":{{"list":{{"data":{{"type":"list","id":"Xy12"}}}}}}}}}}"#
    );
    let out = enrich("/client/subscriptions", &subscription, &add).expect("changed");
    checked("/client/subscriptions", &subscription, &out);
    // It names someone (an email): no _kx beside it.
    assert_eq!(
        attrs_of("/client/subscriptions", &out),
        serde_json::json!({"location": {"ip": "203.0.113.7"}, "email": "a@b.co"})
    );
    // An anonymous_id the page put there itself is the page's word: left as it is.
    let own = subscription.replace(
        r#""email":"a@b.co""#,
        r#""email":"a@b.co","anonymous_id":"p""#,
    );
    let out = enrich("/client/subscriptions", &own, &add).expect("changed");
    assert_eq!(attrs_of("/client/subscriptions", &out)["anonymous_id"], "p");
    // Back in stock: identifiers only, so nothing at all.
    let bis = format!(
        r#"{{"data":{{"type":"back-in-stock-subscription","attributes":{{"channels":["EMAIL"],"profile":{profile}}}}}}}"#
    );
    assert_eq!(
        enrich("/client/back-in-stock-subscriptions", &bis, &add),
        None
    );
    assert_eq!(
        checked_facts("/client/back-in-stock-subscriptions", &bis).map(|f| f.is_none()),
        Ok(true)
    );
    // Events and profiles take all three.
    let anonymous = r#"{"data":{"type":"profile","attributes":{"first_name":"Ann"}}}"#;
    for (route, body) in [
        ("/client/profiles", anonymous.to_string()),
        ("/client/events", event(r#"{"first_name":"Ann"}"#)),
    ] {
        let a = attrs_of(route, &enrich(route, &body, &add).expect("changed"));
        assert_eq!(a["anonymous_id"], "anon-from-cookie", "{route}");
        assert_eq!(a["_kx"], "kx-from-cookie", "{route}");
        assert_eq!(a["location"]["ip"], "203.0.113.7", "{route}");
    }
}

#[test]
fn both_at_once_and_escaped_keys_are_found() {
    let id = VisitorId::new("anon-1", None).unwrap();
    let add = Additions {
        ip: ip("203.0.113.7"),
        id: Some(&id),
    };
    let body = event(r#"{"anonymous\u005fid":"other","locati\u006fn":{"zip":"02110"}}"#);
    let out = enrich("/client/events", &body, &add).expect("changed");
    checked("/client/events", &body, &out);
    let a = attrs_of("/client/events", &out);
    assert_eq!(a["anonymous_id"], "anon-1");
    assert_eq!(
        a["location"],
        serde_json::json!({"ip": "203.0.113.7", "zip": "02110"})
    );
}
