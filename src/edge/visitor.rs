//! What the worker adds to a page's `/client` call about its visitor, where the body
//! does not say it already:
//!
//! - `location.ip`: the visitor's address. Klaviyo places a profile (country, time
//!   zone: "send at the recipient's local time") by the address of the request until an
//!   order gives one; through the worker, every request would come from Cloudflare's.
//! - The identity of the first-party cookie (`visitor_id.rs`): its `anonymous_id` in
//!   place of the body's, and its `_kx` where the body has none (each only where the
//!   route's profile takes it: [`profile_path`]), so that a browser whose
//!   script storage was wiped (Safari deletes it after 7 days without a visit) stays the
//!   profile it was from its first call on.
//!
//! The body is checked (UTF-8, JSON, no duplicate key) in the same pass that finds the
//! profile ([`checked_facts`]: `body_scan.rs` for the ordinary body, serde_json for the
//! rest); only the profile's attributes object is touched, by inserting members that are absent (so no key is
//! ever doubled) or replacing the one value of `anonymous_id`. Every other byte stays
//! as the page sent it.

use std::net::IpAddr;

use serde::de::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::bodies::{self, Invalid};
use super::body_scan::{self, Facts, LocationSeen};
use super::visitor_id::VisitorId;

/// What there is to add to a call.
#[derive(Clone, Copy, Debug, Default)]
pub struct Additions<'a> {
    pub ip: Option<IpAddr>,
    pub id: Option<&'a VisitorId>,
}

impl Additions<'_> {
    pub fn is_empty(&self) -> bool {
        self.ip.is_none() && self.id.is_none()
    }
}

/// Which of the additions a route's profile takes. Klaviyo refuses a member its schema
/// does not define (400 "'anonymous_id' is not a valid field for the resource
/// 'profile'"), and a refused call is final for the page's queue: a subscription's
/// profile takes `_kx` and `location` but no `anonymous_id`.
#[derive(Clone, Copy)]
struct Takes {
    anonymous_id: bool,
    location: bool,
}

/// Where a route's body keeps the profile's attributes, and what that profile takes
/// (every one takes `_kx`). The back-in-stock profile holds identifiers only (email,
/// phone, external id): nothing is added there.
fn profile_path(route: &str) -> Option<(&'static [&'static str], Takes)> {
    const NESTED: &[&str] = &["data", "attributes", "profile", "data", "attributes"];
    const ALL: Takes = Takes {
        anonymous_id: true,
        location: true,
    };
    match route {
        "/client/events" | "/client/event-bulk-create" => Some((NESTED, ALL)),
        "/client/profiles" => Some((&["data", "attributes"], ALL)),
        "/client/subscriptions" => Some((
            NESTED,
            Takes {
                anonymous_id: false,
                location: true,
            },
        )),
        _ => None,
    }
}

/// A `/client` body checked (UTF-8 text, one JSON value, no duplicate key) and the facts
/// of its profile (`None`: no attributes object where the route keeps one). One pass
/// (`body_scan.rs`) for the ordinary body; serde_json for the rest, and for the error.
pub fn checked_facts<'a>(route: &str, body: &'a str) -> Result<Option<Facts<'a>>, Invalid> {
    let Some((path, _)) = profile_path(route) else {
        return bodies::check(body).map(|()| None);
    };
    match body_scan::scan(body, path) {
        Some(facts) => Ok(facts),
        None => bodies::check(body).map(|()| slow_facts(route, body)),
    }
}

/// The facts the slow way: serde_json finds the attributes, then reads their members.
pub fn slow_facts<'a>(route: &str, body: &'a str) -> Option<Facts<'a>> {
    #[derive(serde::Deserialize)]
    struct Data<T> {
        data: T,
    }
    #[derive(serde::Deserialize)]
    struct Attrs<T> {
        attributes: T,
    }
    #[derive(serde::Deserialize)]
    struct Profile<T> {
        profile: T,
    }
    type Nested<'a> = Data<Attrs<Profile<Data<Attrs<&'a RawValue>>>>>;
    let attrs = match route {
        "/client/profiles" => serde_json::from_str::<Data<Attrs<&'a RawValue>>>(body)
            .ok()
            .map(|d| d.data.attributes),
        _ => serde_json::from_str::<Nested<'a>>(body)
            .ok()
            .map(|d| d.data.attributes.profile.data.attributes),
    }?
    .get();
    if !attrs.starts_with('{') {
        return None;
    }
    let known: Known = serde_json::from_str(attrs).ok()?;
    Some(Facts {
        open: offset(body, attrs),
        empty: empty_object(attrs),
        anonymous_id: known.anonymous_id.0.map(|v| {
            let at = offset(body, v.get());
            (
                at,
                at + v.get().len(),
                serde_json::from_str::<&str>(v.get()).ok(),
            )
        }),
        kx: known.kx.0.is_some(),
        named: [known.email, known.phone_number, known.external_id]
            .iter()
            .any(|v| v.0.is_some_and(|v| v.get() != "null")),
        location: known.location.0.map(|loc| {
            let loc = loc.get();
            if loc.starts_with('{') {
                LocationSeen::Object {
                    open: offset(body, loc),
                    empty: empty_object(loc),
                    has_ip: serde_json::from_str::<Location>(loc)
                        .map(|l| l.ip.0.is_some())
                        .unwrap_or(true),
                }
            } else {
                LocationSeen::Other
            }
        }),
    })
}

/// Whether a raw object is `{}` (whitespace inside allowed).
fn empty_object(raw: &str) -> bool {
    raw.strip_prefix('{')
        .is_some_and(|inner| inner.trim_start().starts_with('}'))
}

/// The body with the additions made, or `None` when it stays as received (nothing to
/// add, or all of it already there, or not the shape the route takes: Klaviyo answers
/// that one itself). [`checked_facts`] then [`apply`], as the `/client` route does.
pub fn enrich(route: &str, body: &str, add: &Additions) -> Option<String> {
    if add.is_empty() {
        return None;
    }
    let facts = checked_facts(route, body).ok()??;
    apply(route, body, &facts, add)
}

/// The additions made where `facts` say (`None`: the body stays as received).
pub fn apply(route: &str, body: &str, facts: &Facts, add: &Additions) -> Option<String> {
    let takes = profile_path(route)?.1;
    let mut edits: Vec<Edit> = Vec::new();
    // Members inserted at the start of the attributes object.
    let mut front = String::new();
    if let Some(id) = add.id {
        match facts.anonymous_id {
            _ if !takes.anonymous_id => {}
            None => push_member(&mut front, "anonymous_id", &quote(&id.anonymous_id)),
            Some((at, end, text)) if text != Some(id.anonymous_id.as_str()) => edits.push(Edit {
                at,
                cut: end - at,
                text: quote(&id.anonymous_id),
            }),
            Some(_) => {}
        }
        // The cookie's `_kx` (an earlier email click, on a shared device perhaps
        // another person's) only where the page's body names nobody: a call never
        // carries two people's identifiers, which would merge their profiles.
        if let (Some(kx), false, false) = (&id.kx, facts.kx, facts.named) {
            push_member(&mut front, "_kx", &quote(kx));
        }
    }
    if let (Some(ip), true) = (add.ip, takes.location) {
        let ip = quote(&ip_text(ip));
        match facts.location {
            None => {
                let mut loc = String::with_capacity(ip.len() + 7);
                loc.push_str("{\"ip\":");
                loc.push_str(&ip);
                loc.push('}');
                push_member(&mut front, "location", &loc);
            }
            Some(LocationSeen::Object {
                open,
                empty,
                has_ip: false,
            }) => edits.push(Edit::front(open, empty, member("ip", &ip))),
            // Given, or `null` or another kind: the page's own word, left as it is.
            Some(_) => {}
        }
    }
    if !front.is_empty() {
        edits.push(Edit::front(facts.open, facts.empty, front));
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|e| e.at);
    let mut out = String::with_capacity(body.len() + 96);
    let mut from = 0;
    for e in &edits {
        out.push_str(body.get(from..e.at)?);
        out.push_str(&e.text);
        from = e.at + e.cut;
    }
    out.push_str(body.get(from..)?);
    Some(out)
}

/// Text to put at byte `at` of the body, in place of `cut` bytes.
struct Edit {
    at: usize,
    cut: usize,
    text: String,
}

impl Edit {
    /// `members` (`"k":v,...` without the last comma) at the start of the object whose
    /// `{` is at `open`.
    fn front(open: usize, empty: bool, members: String) -> Edit {
        let mut text = members;
        if !empty {
            text.push(',');
        }
        Edit {
            at: open + 1,
            cut: 0,
            text,
        }
    }
}

fn member(key: &str, value: &str) -> String {
    let mut m = String::new();
    push_member(&mut m, key, value);
    m
}

/// An address as text: IPv4 written out directly (the usual case, on every call), IPv6
/// by the standard library.
fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut s = String::with_capacity(15);
            for (k, octet) in v4.octets().into_iter().enumerate() {
                if k > 0 {
                    s.push('.');
                }
                crate::core::text::push_u64(&mut s, u64::from(octet));
            }
            s
        }
        IpAddr::V6(v6) => v6.to_string(),
    }
}

fn offset(body: &str, part: &str) -> usize {
    part.as_ptr() as usize - body.as_ptr() as usize
}

fn push_member(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
    out.push_str(value);
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// A member that may be present with any value, `null` included (an `Option` would
/// read `null` as absent, and a member inserted beside it would be a duplicate key).
#[derive(Default)]
struct Present<'a>(Option<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for Present<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&RawValue>::deserialize(d).map(|v| Present(Some(v)))
    }
}

/// The attributes' members this module looks at.
#[derive(serde::Deserialize)]
struct Known<'a> {
    #[serde(borrow, default)]
    anonymous_id: Present<'a>,
    #[serde(borrow, default, rename = "_kx")]
    kx: Present<'a>,
    #[serde(borrow, default)]
    email: Present<'a>,
    #[serde(borrow, default)]
    phone_number: Present<'a>,
    #[serde(borrow, default)]
    external_id: Present<'a>,
    #[serde(borrow, default)]
    location: Present<'a>,
}

#[derive(serde::Deserialize)]
struct Location<'a> {
    #[serde(borrow, default)]
    ip: Present<'a>,
}

#[cfg(test)]
#[path = "visitor_tests.rs"]
mod tests;
