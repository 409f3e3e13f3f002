//! Where the visitor came from, kept as Klaviyo's onsite script (`klaviyo.js`) keeps it:
//! Klaviyo computes a profile's Initial Source ("How They Found You") from it. Two
//! touches, each `{"ts":<unix seconds>,"value":<the referrer, "" for direct>,
//! "first_page":<the landing URL>}`:
//!
//! - `$referrer`: the visitor's first touch, set once;
//! - `$last_referrer`: their last arrival from another site.
//!
//! Both go as profile properties with Active on Site and `identify`, where klaviyo.js
//! sends them. Ours are one JSON object (`{"$referrer":…,"$last_referrer":…}`, either
//! member absent), stored with the identity (`identity.rs`); klaviyo.js keeps its own in
//! its `__kla_id` cookie (`onsite.rs`), which is read, never written.

use super::jsontext::{self as jt, Kind};
use super::text;

pub const FIRST: &str = "$referrer";
pub const LAST: &str = "$last_referrer";

/// How this page was reached: `(fresh, from)`. `page_url` is `location.href`,
/// `referrer` `document.referrer` ("" when the browser gives none: typed, a bookmark,
/// or a referrer policy that hides it).
///
/// - `fresh`: the touches of a new profile starting here (a `reset()`, consent given
///   back after a denial): this page as the first touch, direct. How the person taking
///   over the browser came is unknown (the page's referrer led the one before here), and
///   nothing read before a denial passes to the profile after it.
/// - `from`: this page as a touch whose value is the referrer, when it was reached from
///   another site (another origin than its own).
pub fn arrival(page_url: &str, referrer: &str, now_ms: u64) -> (String, Option<String>) {
    let page = without_fragment(page_url);
    let ts = now_ms / 1000;
    let mut fresh = String::from("{\"$referrer\":");
    touch(&mut fresh, ts, "\"\"", page);
    fresh.push('}');
    // This page's origin: `https://shop.example/`, to its third `/`.
    let mut slashes = 0;
    let origin = page.bytes().position(|b| {
        slashes += usize::from(b == b'/');
        slashes == 3
    });
    let origin = origin.and_then(|i| page.get(..=i)).unwrap_or(page);
    let from = (!referrer.is_empty() && !referrer.starts_with(origin)).then(|| {
        let mut t = String::new();
        touch(&mut t, ts, &jt::quote(referrer), page);
        t
    });
    (fresh, from)
}

/// The touches of a visitor whose own were `ours`, after an [`arrival`]: their first
/// touch kept, else this page's (`from`, or `fresh`'s direct one: a page of the shop's
/// own as referrer means we did not see how they came); their last arrival `from`,
/// when there is one. `None` when that changes nothing.
pub fn record(ours: &str, fresh: &str, from: Option<&str>) -> Option<String> {
    let first = jt::get(ours, FIRST).is_some();
    let Some(t) = from else {
        return (!first).then(|| fresh.to_string());
    };
    let new;
    let base = if first {
        ours
    } else {
        new = jt::with("{}", FIRST, Some(t));
        &new
    };
    Some(jt::with(base, LAST, Some(t)))
}

/// Writes a touch: `{"ts":…,"value":…,"first_page":…}` (`value` a string literal).
fn touch(out: &mut String, ts: u64, value: &str, page: &str) {
    out.push_str("{\"ts\":");
    text::push_u64(out, ts);
    out.push_str(",\"value\":");
    out.push_str(value);
    out.push_str(",\"first_page\":");
    jt::write_str(page, out);
    out.push('}');
}

/// A profile's `attributes` with the touches to send among its `properties`: the first
/// touch klaviyo.js keeps in its cookie (`cookie`, its JSON) where it has one, so that
/// both scripts send one, else ours; our last arrival from another site, else its
/// (its cookie stops changing once the shop has replaced it with us, while ours follows
/// every page). Only objects: what else the cookie holds there is not a touch.
pub fn into_properties(attributes: &str, ours: &str, cookie: &str) -> String {
    let obj = |t: &&str| jt::kind(t) == Kind::Obj;
    // (An object: `identify` takes no other, and one of another kind would be replaced.)
    let mut props = jt::get(attributes, "properties")
        .unwrap_or("{}")
        .to_string();
    for (key, mine, other) in [(FIRST, cookie, ours), (LAST, ours, cookie)] {
        let get = |from| jt::get(from, key).filter(obj);
        if let Some(t) = get(mine).or_else(|| get(other)) {
            props = jt::with(&props, key, Some(t));
        }
    }
    if props.len() > 2 {
        jt::with(attributes, "properties", Some(&props))
    } else {
        attributes.to_string()
    }
}

/// A URL without its fragment.
pub fn without_fragment(url: &str) -> &str {
    text::cut(url, b'#').map_or(url, |(u, _)| u)
}

#[cfg(test)]
#[path = "referrer_tests.rs"]
mod tests;
