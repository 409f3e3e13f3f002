use super::*;

const NOW: u64 = 1_795_669_339_123;
const SHOP: &str = "https://shop.example/products/tee?utm_campaign=spring#reviews";
/// `SHOP` as a touch names it: without the fragment.
const PAGE: &str = "https://shop.example/products/tee?utm_campaign=spring";

fn touch(ts: u64, value: &str, page: &str) -> String {
    format!(r#"{{"ts":{ts},"value":"{value}","first_page":"{page}"}}"#)
}

fn first(t: &str) -> String {
    format!(r#"{{"$referrer":{t}}}"#)
}

fn both(first: &str, last: &str) -> String {
    format!(r#"{{"$referrer":{first},"$last_referrer":{last}}}"#)
}

#[test]
fn an_arrival_is_from_another_site_when_the_referrer_is_not_of_the_pages_origin() {
    let from = |referrer: &str| arrival(SHOP, referrer, NOW).1.is_some();
    assert!(from("https://www.google.com/"));
    assert!(from("android-app://com.google.android.gm/"));
    assert!(from("https://shop.example:8443/"), "another port");
    assert!(from("https://shop.example.evil.example/"), "another host");
    assert!(
        from("https://blog.shop.example/post"),
        "another host of the shop's"
    );
    assert!(from("http://shop.example/"), "another scheme");
    assert!(!from(""), "none: direct");
    assert!(!from("https://shop.example/cart"), "the shop's own page");
    assert!(!from("https://shop.example/"), "its home page");
    // A page URL without a path after its host (none a browser gives) is its origin.
    assert_eq!(
        arrival("https://shop.example", "https://shop.example/", NOW).1,
        None
    );
}

/// The touches of `ours` after reaching `page` from `referrer` at `at` (`ours` when
/// nothing changes).
fn after(ours: &str, page: &str, referrer: &str, at: u64) -> String {
    let (fresh, from) = arrival(page, referrer, at);
    record(ours, &fresh, from.as_deref()).unwrap_or_else(|| ours.to_string())
}

#[test]
fn the_first_touch_is_recorded_once_and_the_last_only_for_an_arrival_from_another_site() {
    let t = touch(1_795_669_339, "https://www.google.com/", PAGE);
    let seen = after("{}", SHOP, "https://www.google.com/", NOW);
    assert_eq!(seen, both(&t, &t));
    // Later pages: the shop's own page as referrer, or none, change nothing.
    let later = NOW + 3_600_000;
    let (fresh, inside) = arrival("https://shop.example/cart", "https://shop.example/", later);
    assert_eq!(record(&seen, &fresh, inside.as_deref()), None);
    let (fresh, typed) = arrival(SHOP, "", later);
    assert_eq!(record(&seen, &fresh, typed.as_deref()), None);
    // Another site: the last arrival, the first touch kept.
    let t2 = touch(
        1_795_672_939,
        "https://www.bing.com/",
        "https://shop.example/sale",
    );
    let bing = after(
        &seen,
        "https://shop.example/sale",
        "https://www.bing.com/",
        later,
    );
    assert_eq!(bing, both(&t, &t2));
    // A first touch on a page the shop's own page led to: how they came is unknown.
    let unseen = touch(1_795_672_939, "", "https://shop.example/cart");
    let cart = after(
        "{}",
        "https://shop.example/cart",
        "https://shop.example/",
        later,
    );
    assert_eq!(cart, first(&unseen));
    let direct = touch(1_795_669_339, "", "https://shop.example/");
    assert_eq!(after("", "https://shop.example/", "", NOW), first(&direct));
    // What storage held of another kind has no first touch: this page's replaces it.
    assert_eq!(
        after("[1]", SHOP, "https://www.google.com/", NOW),
        both(&t, &t)
    );
}

#[test]
fn a_new_profiles_first_touch_is_this_page_direct() {
    let (fresh, _) = arrival(SHOP, "https://www.google.com/", NOW);
    assert_eq!(fresh, first(&touch(1_795_669_339, "", PAGE)));
    // The referrer as the browser gives it, written as a JSON string.
    let (_, odd) = arrival(SHOP, "https://a.example/?q=\"x\"", NOW);
    let odd = odd.unwrap_or_default();
    assert!(
        odd.contains(r#""value":"https://a.example/?q=\"x\"""#),
        "{odd}"
    );
}

#[test]
fn klaviyo_js_first_touch_is_sent_and_our_last_arrival_where_we_have_one() {
    let theirs_first = touch(100, "https://a.example/", "https://shop.example/");
    let theirs_last = touch(200, "https://b.example/", "https://shop.example/b");
    let ours_first = touch(150, "", "https://shop.example/x");
    let ours_last = touch(300, "https://c.example/", "https://shop.example/c");
    let cookie = both(&theirs_first, &theirs_last);
    let ours = both(&ours_first, &ours_last);
    let sent = |ours: &str, cookie: &str| {
        let a = into_properties(r#"{"anonymous_id":"x"}"#, ours, cookie);
        jt::get(&a, "properties").unwrap_or("").to_string()
    };
    assert_eq!(sent(&ours, &cookie), both(&theirs_first, &ours_last));
    assert_eq!(sent(&first(&ours_first), &cookie), cookie);
    assert_eq!(sent(&ours, "{}"), ours);
    assert_eq!(sent("{}", &cookie), cookie);
    assert_eq!(sent("{}", "{}"), "");
    // The cookie's JSON as read: what else it holds stays out, and so does a touch that
    // is no object.
    let json = format!(
        r#"{{"cid":"ZjQ5","$email":"a@b.co","$referrer":"x","$last_referrer":{theirs_last}}}"#
    );
    assert_eq!(sent(&ours, &json), ours);
    assert_eq!(
        sent(&first(&ours_first), &json),
        both(&ours_first, &theirs_last)
    );
    assert_eq!(sent("{}", ""), "");
}

#[test]
fn touches_join_the_profiles_own_properties() {
    let t = touch(1, "", "https://s.example/");
    assert_eq!(
        into_properties(r#"{"email":"a@b.co","anonymous_id":"x"}"#, &first(&t), "{}"),
        format!(
            r#"{{"email":"a@b.co","anonymous_id":"x","properties":{}}}"#,
            first(&t)
        )
    );
    assert_eq!(
        into_properties(
            r#"{"properties":{"vip":true},"anonymous_id":"x"}"#,
            &first(&t),
            "{}"
        ),
        format!(r#"{{"properties":{{"vip":true,"$referrer":{t}}},"anonymous_id":"x"}}"#)
    );
    assert_eq!(
        into_properties(r#"{"anonymous_id":"x"}"#, "{}", "{}"),
        r#"{"anonymous_id":"x"}"#
    );
}
