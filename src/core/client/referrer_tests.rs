//! Where the visitor came from (`referrer.rs`), as the client records, stores and sends
//! it: the first touch kept, the last arrival from another site, klaviyo.js's cookie
//! preferred, consent and `reset()`, and the bodies that carry it.

use super::*;

const LANDING: &str = "https://shop.example/products/tee?utm_campaign=spring";
const GOOGLE: &str = "https://www.google.com/";
/// `NOW` in seconds.
const TS: u64 = NOW / 1000;
const HOUR: u64 = 3_600_000;

fn touch(ts: u64, value: &str, page: &str) -> Json {
    serde_json::json!({ "ts": ts, "value": value, "first_page": page })
}

/// The page a visitor reached from `referrer`: a new page of the shop over `disk`, as
/// the adapter starts it (Klaviyo's cookies, then how the page was reached).
fn arrive(
    disk: &BTreeMap<String, String>,
    consent: &str,
    page: &str,
    referrer: &str,
    at: u64,
) -> Page {
    let mut p = page_with(consent, disk);
    p.c.arrived(page, referrer, at);
    p
}

fn granted(disk: &BTreeMap<String, String>, page: &str, referrer: &str, at: u64) -> Page {
    arrive(disk, "granted", page, referrer, at)
}

/// The profile properties of the page's next Active on Site and identify requests.
fn sent_properties(p: &mut Page) -> (Json, Json) {
    p.call(Op::Identify, &[r#"{"first_name":"Ann"}"#]).unwrap();
    p.call(Op::ActiveOnSite, &[&format!(r#"{{"URL":"{LANDING}"}}"#)])
        .unwrap();
    let (mut view, mut ident) = (Json::Null, Json::Null);
    for _ in 0..2 {
        let t = p.send();
        p.c.on_outcome(t.id, ok(), NOW, 0);
        match t.endpoint {
            Endpoint::Profiles => ident = attrs(&t)["properties"].clone(),
            _ => view = profile(&t)["properties"].clone(),
        }
    }
    p.end_task(); // both delivered: nothing left for the next page to send again
    (view, ident)
}

/// What the stored identity says of the touches.
fn stored(p: &Page) -> Json {
    let id: Json = serde_json::from_str(&p.disk[IDENTITY_KEY]).unwrap();
    id["touches"].clone()
}

/// A `__kla_id` cookie as Klaviyo's onsite script writes it: base64 of its JSON.
fn kla_id(json: &Json) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(json.to_string());
    format!("__kla_id={b64}")
}

#[test]
fn the_first_touch_is_kept_and_only_an_arrival_from_another_site_becomes_the_last() {
    let first = touch(TS, GOOGLE, LANDING);
    let mut p = granted(&BTreeMap::new(), &format!("{LANDING}#size"), GOOGLE, NOW);
    let both = serde_json::json!({ "$referrer": first, "$last_referrer": first });
    assert_eq!(sent_properties(&mut p), (both.clone(), both.clone()));
    assert_eq!(stored(&p), both, "kept with the visitor");
    // A later page of the shop, reached from one of its own, or typed: nothing changes.
    let later = NOW + HOUR;
    for referrer in ["https://shop.example/products/tee", ""] {
        let mut next = granted(&p.disk, "https://shop.example/cart", referrer, later);
        assert!(next.end_task().is_empty(), "nothing to write again");
        assert_eq!(sent_properties(&mut next).0, both);
    }
    // Back from another site: the last arrival is that one, the first touch stays.
    let mut back = granted(
        &p.disk,
        "https://shop.example/sale",
        "https://www.bing.com/",
        later,
    );
    let last = touch(
        later / 1000,
        "https://www.bing.com/",
        "https://shop.example/sale",
    );
    let moved = serde_json::json!({ "$referrer": first, "$last_referrer": last });
    assert_eq!(sent_properties(&mut back), (moved.clone(), moved.clone()));
    assert_eq!(stored(&back), moved);
}

#[test]
fn only_active_on_site_and_identify_carry_it_in_klaviyos_shape() {
    let mut p = granted(&BTreeMap::new(), LANDING, "", NOW);
    p.call(Op::Track, &[r#""Viewed Page""#]).unwrap();
    p.call(
        Op::ViewedProduct,
        &[r#"{"ProductID":"1","ProductName":"Tee","Price":9}"#],
    )
    .unwrap();
    let events = p.send();
    assert_eq!(events.endpoint, Endpoint::BulkEvents);
    assert!(!events.body.contains("$referrer"), "{}", events.body);
    p.c.on_outcome(events.id, ok(), NOW, 0);
    // A lone page view: the exact body, the touch of a direct arrival.
    p.call(Op::PageView, &[&format!(r#"{{"URL":"{LANDING}"}}"#)])
        .unwrap();
    let view = p.send();
    assert_eq!(
        view.body,
        format!(
            r#"{{"data":{{"type":"event","attributes":{{"properties":{{"URL":"{LANDING}"}},"time":"2026-11-26T05:02:19Z","unique_id":"id-3","metric":{{"data":{{"type":"metric","attributes":{{"name":"Active on Site"}}}}}},"profile":{{"data":{{"type":"profile","attributes":{{"_kx":"abc","anonymous_id":"id-0","properties":{{"$referrer":{{"ts":{TS},"value":"","first_page":"{LANDING}"}}}}}}}}}}}}}}}}"#
        )
    );
    // The profile's own properties stay beside it.
    p.c.on_outcome(view.id, ok(), NOW, 0);
    p.call(
        Op::Identify,
        &[r#"{"email":"ann@example.com","properties":{"vip":true}}"#],
    )
    .unwrap();
    let ident = p.send();
    assert_eq!(
        ident.body,
        format!(
            r#"{{"data":{{"type":"profile","attributes":{{"email":"ann@example.com","properties":{{"vip":true,"$referrer":{{"ts":{TS},"value":"","first_page":"{LANDING}"}}}},"anonymous_id":"id-0"}}}}}}"#
        )
    );
    // Not stored in what identify said: the next event carries the profile without it.
    p.c.on_outcome(ident.id, ok(), NOW, 0);
    p.call(Op::Track, &[r#""After""#]).unwrap();
    let after = p.send();
    assert_eq!(
        profile(&after)["properties"],
        serde_json::json!({ "vip": true })
    );
}

#[test]
fn klaviyo_js_first_touch_is_shared_and_our_last_arrival_where_we_saw_one() {
    let theirs = touch(
        1_700_000_000,
        "https://www.pinterest.com/",
        "https://shop.example/",
    );
    let their_last = touch(
        1_700_000_500,
        "https://www.facebook.com/",
        "https://shop.example/b",
    );
    let cookie = kla_id(&serde_json::json!({
        "cid": "ZjQ5", "$referrer": theirs, "$last_referrer": their_last,
    }));
    // The shop replaced klaviyo.js with us: its cookie stays as it was.
    let mut p = granted(&BTreeMap::new(), LANDING, GOOGLE, NOW);
    p.c.read_cookies(&cookie);
    let ours = touch(TS, GOOGLE, LANDING);
    let expected = serde_json::json!({ "$referrer": theirs, "$last_referrer": ours });
    assert_eq!(sent_properties(&mut p), (expected.clone(), expected));
    // Never stored: ours are.
    let both = serde_json::json!({ "$referrer": ours, "$last_referrer": ours });
    assert_eq!(stored(&p), both);
    assert!(!p.disk[IDENTITY_KEY].contains("pinterest"));
    // Reached directly, with no arrival of ours from another site yet: klaviyo.js's last.
    let mut q = granted(&BTreeMap::new(), LANDING, "", NOW);
    q.c.read_cookies(&cookie);
    let expected = serde_json::json!({ "$referrer": theirs, "$last_referrer": their_last });
    assert_eq!(sent_properties(&mut q).0, expected);
    // A cookie without them (or not as objects) leaves ours.
    let mut r = granted(&BTreeMap::new(), LANDING, GOOGLE, NOW);
    r.c.read_cookies(&kla_id(
        &serde_json::json!({ "cid": "ZjQ5", "$referrer": "x" }),
    ));
    assert_eq!(sent_properties(&mut r).0, both);
}

#[test]
fn pending_holds_it_in_memory_and_the_grant_writes_it() {
    let mut p = arrive(&BTreeMap::new(), "pending", LANDING, GOOGLE, NOW);
    p.call(Op::PageView, &[&format!(r#"{{"URL":"{LANDING}"}}"#)])
        .unwrap();
    assert!(p.end_task().is_empty(), "nothing written");
    assert_eq!(p.c.poll_transmit(NOW, ALL), None);
    p.c.set_consent(Consent::Granted, "id-unused");
    p.c.set_sender(true); // the adapter's election, as after any grant
    p.end_task();
    let first = touch(TS, GOOGLE, LANDING);
    let both = serde_json::json!({ "$referrer": first, "$last_referrer": first });
    assert_eq!(stored(&p), both);
    let view = p.c.poll_transmit(NOW, ALL).unwrap();
    assert_eq!(
        profile(&view)["properties"],
        both,
        "the call held carries it"
    );
}

#[test]
fn a_denial_erases_it_and_the_profile_after_it_starts_on_this_page_direct() {
    let mut p = granted(&BTreeMap::new(), LANDING, GOOGLE, NOW);
    p.end_task();
    assert!(p.disk[IDENTITY_KEY].contains("$referrer"));
    p.c.set_consent(Consent::Denied, "");
    p.end_task();
    assert!(!p.disk.contains_key(IDENTITY_KEY), "erased with the rest");
    // Denied at load: nothing recorded, nothing written.
    let mut d = arrive(&BTreeMap::new(), "denied", LANDING, GOOGLE, NOW);
    d.end_task();
    assert!(!d.disk.contains_key(IDENTITY_KEY));
    // The visitor agrees after all: a new profile, and nothing read before the denial
    // (this page's referrer) passes to it.
    p.c.set_consent(Consent::Granted, "id-new");
    p.c.set_sender(true);
    let fresh = serde_json::json!({ "$referrer": touch(TS, "", LANDING) });
    assert_eq!(sent_properties(&mut p), (fresh.clone(), fresh.clone()));
    assert_eq!(stored(&p), fresh);
}

#[test]
fn after_a_reset_the_new_visitors_first_touch_is_this_page_direct() {
    let mut p = granted(&BTreeMap::new(), LANDING, GOOGLE, NOW);
    p.end_task();
    let mut next = granted(&p.disk, "https://shop.example/account", GOOGLE, NOW + HOUR);
    next.c.reset("id-next");
    let fresh = serde_json::json!({
        "$referrer": touch((NOW + HOUR) / 1000, "", "https://shop.example/account"),
    });
    assert_eq!(sent_properties(&mut next), (fresh.clone(), fresh.clone()));
    assert_eq!(stored(&next), fresh);
    // Pending: the same, in memory only.
    let mut q = arrive(&BTreeMap::new(), "pending", LANDING, GOOGLE, NOW);
    q.c.reset("id-next");
    assert!(q.end_task().is_empty());
}

#[test]
fn no_page_no_touch() {
    // A Web Worker or a frame: the adapter passes no referrer, and nothing is recorded.
    let mut p = Page::new();
    let (view, ident) = sent_properties(&mut p);
    assert_eq!((view, ident), (Json::Null, Json::Null));
    assert!(!p.disk[IDENTITY_KEY].contains("touches"));
    // What an earlier page stored still goes.
    let mut q = granted(&BTreeMap::new(), LANDING, GOOGLE, NOW);
    q.end_task();
    let mut r = page_with("granted", &q.disk);
    assert_eq!(
        sent_properties(&mut r).0["$referrer"],
        touch(TS, GOOGLE, LANDING)
    );
}

#[test]
fn another_tabs_visitor_is_followed_with_where_they_came_from() {
    let mut a = granted(&BTreeMap::new(), LANDING, "", NOW);
    a.end_task();
    let mut b = granted(&a.disk, "https://shop.example/sale", GOOGLE, NOW + HOUR);
    b.end_task();
    a.c.on_storage_change(IDENTITY_KEY, Some(&b.disk[IDENTITY_KEY]));
    let last = touch((NOW + HOUR) / 1000, GOOGLE, "https://shop.example/sale");
    assert_eq!(sent_properties(&mut a).0["$last_referrer"], last);
}
