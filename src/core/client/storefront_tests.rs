//! Parity with Klaviyo's own onsite script: one visitor shared through its cookies, its
//! opt-out, `isIdentified`, the storefront events (Viewed Collection, Submitted Search,
//! Active on Site and its page views) and the custom-integration Added to Cart; and the
//! calls of a page that never became ready, adopted when they turn stale.

use super::*;

/// A `__kla_id` cookie as Klaviyo's onsite script writes it: base64 of its JSON.
fn kla_id(json: &str) -> String {
    use base64::Engine;
    format!(
        "__kla_id={}",
        base64::engine::general_purpose::STANDARD.encode(json)
    )
}

const KNOWN: &str = r#"{"cid":"ZjQ5","$exchange_id":"KX-onsite","$email":"ann@example.com"}"#;

/// The profile a new event carries (requests before it are answered 202).
fn tracked(p: &mut Page) -> Json {
    p.call(Op::Track, &[r#""Viewed Page""#]).unwrap();
    loop {
        let t = p.send();
        if t.endpoint == Endpoint::Events {
            return profile(&t);
        }
        p.c.on_outcome(t.id, ok(), NOW, 0);
    }
}

#[test]
fn the_onsite_scripts_visitor_is_ours_too() {
    let mut p = Page::new();
    p.c.read_cookies(&format!("_ga=1; {}", kla_id(KNOWN)));
    assert!(p.c.is_identified());
    assert_eq!(
        tracked(&mut p),
        serde_json::json!({"_kx": "KX-onsite", "email": "ann@example.com", "anonymous_id": "id-0"})
    );
    // Never stored: the next page reads the cookie again (or not, if it is gone).
    let stored = p.disk.get(IDENTITY_KEY).cloned().unwrap_or_default();
    assert!(
        !stored.contains("KX-onsite") && !stored.contains("ann@"),
        "{stored}"
    );
}

#[test]
fn a_kx_from_the_url_or_our_identify_wins_over_the_cookie() {
    let mut p = Page::with(config(), "?_kx=KX-url");
    p.c.read_cookies(&kla_id(KNOWN));
    let attrs = tracked(&mut p);
    assert_eq!(attrs["_kx"], "KX-url");
    assert_eq!(attrs["email"], "ann@example.com");
    // Once our identify names the visitor, the cookie's email is not used.
    let mut p = Page::new();
    p.c.read_cookies(&kla_id(KNOWN));
    p.call(Op::Identify, &[r#"{"external_id":"c-7"}"#]).unwrap();
    let attrs = tracked(&mut p);
    assert_eq!(attrs["external_id"], "c-7");
    assert_eq!(attrs.get("email"), None);
    assert_eq!(
        attrs.get("_kx"),
        None,
        "nor its _kx, which names a person too"
    );
}

#[test]
fn on_a_shared_device_a_sign_in_never_carries_an_earlier_persons_kx() {
    // Ann clicked a Klaviyo email on this computer: klaviyo.js's cookie names her, and
    // the click's `_kx` is ours too. Bob signs in.
    for (query, cookie) in [
        ("", true),
        ("?_kx=KX-ann-click", false),
        ("?_kx=KX-ann-click", true),
    ] {
        let mut p = Page::with(config(), query);
        if cookie {
            p.c.read_cookies(&kla_id(KNOWN));
        }
        assert!(tracked(&mut p).get("_kx").is_some());
        p.call(Op::Identify, &[r#"{"email":"bob@example.com"}"#])
            .unwrap();
        let attrs = tracked(&mut p);
        assert_eq!(attrs["email"], "bob@example.com", "{query} {cookie}");
        assert_eq!(attrs.get("_kx"), None, "{query} {cookie}: {attrs}");
        // Nor on a later page, with the cookie still there.
        let mut next = p.reload();
        next.c.read_cookies(&kla_id(KNOWN));
        next.call(Op::Track, &[r#""Next Page""#]).unwrap();
        let sent = next.sent();
        let t = sent.iter().find(|t| t.body.contains("Next Page")).unwrap();
        let attrs = profile(t);
        assert_eq!(attrs["email"], "bob@example.com");
        assert_eq!(
            attrs.get("_kx"),
            None,
            "{query} {cookie}: next page {attrs}"
        );
    }
}

#[test]
fn a_cookie_that_cannot_be_read_changes_nothing() {
    for cookies in [
        String::new(),
        "__kla_id=%%%".to_string(),
        kla_id("not json"),
        kla_id(r#"{"$email":"nope"}"#),
    ] {
        let mut p = Page::new();
        p.c.read_cookies(&cookies);
        assert!(!p.c.is_identified(), "{cookies}");
        assert_eq!(
            tracked(&mut p),
            serde_json::json!({"anonymous_id": "id-0"}),
            "{cookies}"
        );
    }
}

#[test]
fn kla_off_acts_like_a_denial_for_as_long_as_it_is_set() {
    let mut p = page_with("granted", &granted_disk());
    p.c.read_cookies("__kla_off=true");
    assert_eq!(p.c.consent(), Consent::Denied);
    assert_eq!(
        p.end_task(),
        denial(true),
        "our keys are erased, the tabs told"
    );
    // The page's consent manager cannot override it.
    p.c.set_consent(Consent::Granted, "id-new");
    assert_eq!(p.c.consent(), Consent::Denied);
    p.call(Op::Track, &[r#""Dropped""#]).unwrap();
    p.call(Op::Track, &[r#""Dropped too""#]).unwrap();
    assert_eq!(
        consent_reports(&mut p.c).len(),
        1,
        "onError hears of it once"
    );
    assert!(p.end_task().is_empty(), "nothing stored");
    assert_eq!(p.c.poll_transmit(NOW, ALL), None, "nothing sent");
    assert!(!p.c.is_identified());
    // The next page without the cookie tracks again.
    let mut next = page_with("granted", &p.disk);
    next.c.read_cookies("");
    assert_eq!(next.c.consent(), Consent::Granted);
    next.call(Op::Track, &[r#""Back""#]).unwrap();
    assert!(next.c.poll_transmit(NOW, ALL).is_none() || next.c.pending() == 1);
    assert_eq!(next.c.pending(), 1);
}

#[test]
fn kla_off_at_start_stores_and_sends_nothing_from_the_first_call() {
    let mut p = page_with("granted", &BTreeMap::new());
    p.c.read_cookies("theme=dark; __kla_off=true");
    p.call(Op::Track, &[r#""Viewed Page""#]).unwrap();
    let ops = p.end_task();
    assert!(
        ops.iter()
            .all(|op| !matches!(op, StorageOp::Put { key, .. } if key != MARKER)),
        "{ops:?}"
    );
    assert_eq!(p.c.pending(), 0);
}

#[test]
fn is_identified_means_an_email_a_phone_an_external_id_or_a_kx() {
    let mut p = Page::new();
    assert!(!p.c.is_identified());
    p.call(Op::Identify, &[r#"{"first_name":"Ann"}"#]).unwrap();
    assert!(!p.c.is_identified(), "a name alone is nobody");
    p.call(Op::Identify, &[r#"{"phone_number":"+15005550006"}"#])
        .unwrap();
    assert!(p.c.is_identified());
    assert!(Page::with(config(), "?_kx=KX").c.is_identified());
}

#[test]
fn storefront_events_carry_klaviyos_names_and_refuse_bad_input_by_name() {
    let mut p = Page::new();
    p.call(
        Op::ViewedCollection,
        &[r#"{"CollectionID":42,"CollectionHandle":"tops","URL":"https://shop.example/c/tops"}"#],
    )
    .unwrap();
    let a = attrs(&p.send());
    assert_eq!(
        at(&a, &["metric", "data", "attributes", "name"]),
        "Viewed Collection"
    );
    assert_eq!(a["properties"]["CollectionHandle"], "tops");
    let mut p = Page::new();
    p.call(
        Op::SubmittedSearch,
        &[r#"{"SearchTerm":"red tee","ResultCount":3}"#],
    )
    .unwrap();
    let a = attrs(&p.send());
    assert_eq!(
        at(&a, &["metric", "data", "attributes", "name"]),
        "Submitted Search"
    );
    let mut p = Page::new();
    p.call(Op::ActiveOnSite, &[r#"{"URL":"https://shop.example/"}"#])
        .unwrap();
    let a = attrs(&p.send());
    assert_eq!(
        at(&a, &["metric", "data", "attributes", "name"]),
        "Active on Site"
    );
    assert_eq!(a["unique_id"], "id-1", "a unique_id like every event");

    for (op, args, message) in [
        (
            Op::ViewedCollection,
            "{}",
            "viewedCollection: CollectionID is required (a string or number)",
        ),
        (
            Op::ViewedCollection,
            r#"{"CollectionID":""}"#,
            "viewedCollection: CollectionID is required (a string or number)",
        ),
        (
            Op::ViewedCollection,
            r#"{"CollectionID":"c","URL":7}"#,
            "viewedCollection: URL must be a string",
        ),
        (
            Op::SubmittedSearch,
            r#"{"SearchTerm":" "}"#,
            "submittedSearch: SearchTerm must be a non-empty string",
        ),
        (
            Op::SubmittedSearch,
            r#"{"SearchTerm":"x","ResultCount":"3"}"#,
            "submittedSearch: ResultCount must be a finite number",
        ),
        (
            Op::ActiveOnSite,
            r#"{"page":["/"]}"#,
            "activeOnSite: page must be a string",
        ),
        (
            Op::ActiveOnSite,
            "[]",
            "activeOnSite: properties must be an object",
        ),
    ] {
        let mut p = Page::new();
        assert_eq!(p.refused(op, &[args]), message);
        assert_eq!(p.c.pending(), 0);
    }
}

#[test]
fn the_landing_views_late_send_leaves_the_route_the_visitor_is_on_as_the_last_page() {
    let view = |url: &str| format!(r#"{{"URL":"https://shop.example{url}"}}"#);
    let landing = r#"{"time":1700000000000}"#;
    // Landed on /a, a route change to /b before the load, the load (/a's view, late),
    // then back to /a after it: each is a view.
    let mut p = Page::new();
    p.call(Op::PageView, &[&view("/b")]).unwrap();
    p.call(Op::PageView, &[&view("/a"), landing]).unwrap();
    p.call(Op::PageView, &[&view("/a")]).unwrap();
    assert_eq!(p.c.pending(), 3, "/b, /a landed, /a again");
    p.call(Op::PageView, &[&view("/a")]).unwrap();
    assert_eq!(p.c.pending(), 3, "then not twice in a row");
    // No route change before the load: the landing view is the last page.
    let mut p = Page::new();
    p.call(Op::PageView, &[&view("/a"), landing]).unwrap();
    p.call(Op::PageView, &[&view("/a")]).unwrap();
    assert_eq!(p.c.pending(), 1, "a pushState of the same URL sends none");
    // A hash change (popstate) or a pushState of the same URL before the load: the
    // landing view is that page's, once.
    let mut p = Page::new();
    p.call(Op::PageView, &[&view("/a")]).unwrap();
    p.call(Op::PageView, &[&view("/a"), landing]).unwrap();
    assert_eq!(p.c.pending(), 1);
}

#[test]
fn beside_klaviyos_onsite_script_a_page_view_goes_only_for_a_visitor_we_alone_named() {
    // Klaviyo's onsite script sends Active on Site for a browser it has identified (its
    // cookie, an email click's `_kx`) and none for any other: ours fills that gap for a
    // visitor the shop's identify named, and stays out of its way otherwise.
    let beside = r#"{"onsite":1}"#;
    let view = |url: &str| format!(r#"{{"URL":"https://shop.example{url}"}}"#);
    // Nobody knows the visitor: neither sends one.
    let mut p = Page::new();
    p.call(Op::PageView, &[&view("/a"), beside]).unwrap();
    assert_eq!(p.c.pending(), 0);
    // Our identify named them and the onsite script does not know them: ours goes.
    p.call(Op::Identify, &[r#"{"email":"ann@example.com"}"#])
        .unwrap();
    p.call(Op::PageView, &[&view("/a"), beside]).unwrap();
    assert_eq!(p.c.pending(), 2, "the profile and the page view");
    // Its cookie names a visitor: it sends its own.
    let mut known = Page::new();
    known.c.read_cookies(&kla_id(KNOWN));
    known
        .call(Op::Identify, &[r#"{"email":"ann@example.com"}"#])
        .unwrap();
    known.call(Op::PageView, &[&view("/a"), beside]).unwrap();
    assert_eq!(known.c.pending(), 1, "the profile only");
    // Known to us by an earlier email click's `_kx` only (its cookie gone, as Safari
    // drops it after 7 days): ours goes. (A `_kx` in this page's URL is the adapter's
    // to see: the onsite script identifies the browser by it, and no view is asked.)
    let mut clicked = Page::with(config(), "?_kx=KX-click");
    clicked.call(Op::Track, &[r#""M""#]).unwrap();
    clicked.end_task();
    let mut later = clicked.reload();
    later.call(Op::PageView, &[&view("/a"), beside]).unwrap();
    assert_eq!(later.c.pending(), 2, "the earlier event and the page view");
    // Its cookie names the visitor by the same click: its own goes.
    later
        .c
        .read_cookies(&kla_id(r#"{"$exchange_id":"KX-click"}"#));
    later.call(Op::PageView, &[&view("/b"), beside]).unwrap();
    assert_eq!(later.c.pending(), 2);
    // Without the onsite script, every page view goes, as before.
    let mut alone = Page::new();
    alone.call(Op::PageView, &[&view("/a")]).unwrap();
    assert_eq!(alone.c.pending(), 1);
}

#[test]
fn page_views_send_one_active_on_site_per_url_in_a_row() {
    let mut p = Page::new();
    for url in ["/a", "/a", "/b", "/b", "/a", "/c"] {
        let props = format!(r#"{{"URL":"https://shop.example{url}"}}"#);
        p.call(Op::PageView, &[&props]).unwrap();
    }
    assert_eq!(
        p.c.pending(),
        4,
        "/a /b /a /c: never two for one URL in a row"
    );
    // A page view is an Active on Site like any other.
    let t = p.send();
    let v = parse(&t);
    let Json::Array(events) = at(&v, &["data", "attributes", "events", "data"]) else {
        panic!("{}", t.body)
    };
    let urls: Vec<&str> = events
        .iter()
        .map(|e| {
            at(e, &["attributes", "properties", "URL"])
                .as_str()
                .unwrap_or("")
        })
        .collect();
    assert_eq!(
        urls,
        [
            "https://shop.example/a",
            "https://shop.example/b",
            "https://shop.example/a",
            "https://shop.example/c"
        ]
    );
    // The shop's own calls are never held back.
    let mut p = Page::new();
    for _ in 0..2 {
        p.call(Op::ActiveOnSite, &[r#"{"URL":"https://shop.example/a"}"#])
            .unwrap();
    }
    assert_eq!(p.c.pending(), 2);
}

#[test]
fn added_to_cart_takes_the_custom_integration_guides_names_as_sent() {
    let guide = r#"{"$value":29.98,"AddedItemProductName":"A Tale of Two Cities","AddedItemProductID":"1111","AddedItemPrice":19.99,"AddedItemQuantity":1,"ItemNames":["Winnie the Pooh","A Tale of Two Cities"],"CheckoutURL":"https://shop.example/checkout","Items":[{"ProductID":"1112","RowTotal":9.99},{"ProductID":"1111","RowTotal":19.99}]}"#;
    let mut p = Page::new();
    p.call(Op::AddedToCart, &[guide]).unwrap();
    let a = attrs(&p.send());
    assert_eq!(a["value"], num("29.98"), "the cart total");
    assert_eq!(
        a["properties"]["AddedItemProductName"],
        "A Tale of Two Cities"
    );
    // Without the cart total: the item's price times its quantity, exactly.
    let mut p = Page::new();
    p.call(
        Op::AddedToCart,
        &[r#"{"AddedItemProductID":"1","AddedItemProductName":"Tee","AddedItemPrice":19.99,"AddedItemQuantity":3}"#],
    )
    .unwrap();
    assert_eq!(attrs(&p.send())["value"], num("59.97"));
    // The guide's id left null (a shape mapped member by member): ours is read.
    let mut p = Page::new();
    p.call(
        Op::AddedToCart,
        &[r#"{"ProductID":"1","ProductName":"Tee","Price":19.99,"Quantity":3,"AddedItemProductID":null}"#],
    )
    .unwrap();
    assert_eq!(attrs(&p.send())["value"], num("59.97"));
    for (args, message) in [
        (
            r#"{"AddedItemProductID":"1","AddedItemPrice":1}"#,
            "addedToCart: AddedItemProductName must be a non-empty string",
        ),
        (
            r#"{"AddedItemProductID":"1","AddedItemProductName":"T"}"#,
            "addedToCart: AddedItemPrice is required and must be a number",
        ),
        (
            r#"{"AddedItemProductID":"1","AddedItemProductName":"T","AddedItemPrice":1,"AddedItemQuantity":0}"#,
            "addedToCart: AddedItemQuantity must be greater than zero",
        ),
    ] {
        let mut p = Page::new();
        assert_eq!(p.refused(Op::AddedToCart, &[args]), message);
    }
}

#[test]
fn a_never_ready_pages_calls_are_adopted_as_soon_as_they_are_stale() {
    let key = "klaviyo:AbC123:pre:page-2";
    let saved = NOW - 10_000;
    let value = super::early_record(
        saved,
        &[(
            Op::Track as u32,
            &format!(r#"["early-9",{saved},"Early",null,null]"#),
        )],
    );
    let stored = Stored::pack(&[(key, value.as_str())]);
    let stored = Stored(&stored);
    // A tab that does not send leaves it to the sender, at start and later.
    let mut other = Page::new();
    other.c.set_sender(false);
    other.c.load_stored(stored);
    other.c.adopt_stored(stored, NOW + EARLY_STALE_MS);
    other.c.early_written(key, Some(&value), NOW);
    assert_eq!((other.c.pending(), other.c.early_due()), (0, None));
    // The sender saw them before they were stale: not adopted yet, but due.
    let mut p = Page::new();
    p.c.set_sender(true); // the adapter's election
    p.c.adopt_stored(stored, NOW);
    assert_eq!(p.c.pending(), 0);
    let due = p.c.early_due().expect("a time to look again");
    assert_eq!(due, saved + EARLY_STALE_MS);
    // At that time, what storage still holds is adopted, once.
    p.c.adopt_stored(stored, due - 1);
    assert_eq!((p.c.pending(), p.c.early_due()), (0, Some(due)));
    p.c.adopt_stored(stored, due);
    assert_eq!((p.c.pending(), p.c.early_due()), (1, None));
    assert!(p
        .end_task()
        .iter()
        .any(|op| matches!(op, StorageOp::Remove { key: k } if k == key)));
    let t = p.c.poll_transmit(due, ALL).expect("sent");
    assert_eq!(attrs(&t)["unique_id"], "early-9");
    // A page that starts later saves its window while its wasm loads: the sender hears
    // the write and looks again once that window is stale (its page may never load).
    let held = p.c.pending(); // early-9, in flight
    let later = super::early_record(
        due,
        &[(Op::Track as u32, r#"["early-10",0,"Later",null,null]"#)],
    );
    p.c.early_written("klaviyo:AbC123:pre:page-3", Some(&later), due);
    assert_eq!(p.c.early_due(), Some(due + EARLY_STALE_MS));
    assert_eq!(p.c.pending(), held);
    p.c.early_written("klaviyo:AbC123:q:x", Some(&later), due + EARLY_STALE_MS);
    assert_eq!(p.c.pending(), held, "only loading-window keys");
}

#[test]
fn on_a_shared_device_a_subscription_goes_with_its_own_email_alone_and_names_the_visitor() {
    // Ann clicked a Klaviyo email here (the URL's `_kx`, or klaviyo.js's cookie with her
    // email and phone); Bob signs up in the footer with his email.
    let ann =
        r#"{"$exchange_id":"KX-onsite","$email":"ann@example.com","$phone_number":"+15005550006"}"#;
    for (query, cookie) in [("?_kx=KX-ann-click", false), ("", true)] {
        let mut p = Page::with(config(), query);
        if cookie {
            p.c.read_cookies(&kla_id(ann));
        }
        p.call(
            Op::Subscribe,
            &[r#"{"listId":"Y6nRLr","email":"bob@example.com","channels":["email"]}"#],
        )
        .unwrap();
        let sent = p.sent();
        let sub = sent
            .iter()
            .find(|t| t.endpoint == Endpoint::Subscriptions)
            .unwrap();
        let v = parse(sub);
        let who = at(&v, &["data", "attributes", "profile", "data", "attributes"]);
        assert_eq!(who["email"], "bob@example.com", "{query} {cookie}");
        for other in ["_kx", "phone_number"] {
            assert_eq!(who.get(other), None, "{query} {cookie}: {who}");
        }
        // His cart after it goes to him, without her click.
        for t in &sent {
            p.c.on_outcome(t.id, ok(), NOW, 0);
        }
        let attrs = tracked(&mut p);
        assert_eq!(attrs["email"], "bob@example.com", "{query} {cookie}");
        assert_eq!(attrs.get("_kx"), None, "{query} {cookie}: {attrs}");
        assert_eq!(attrs.get("phone_number"), None, "{query} {cookie}: {attrs}");
    }
}
