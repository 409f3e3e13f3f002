//! What the worker adds to a page's `/client` call about its visitor, where the body
//! does not say it already:
//!
//! - `location.ip`: the visitor's address. Klaviyo places a profile (country, time
//!   zone: "send at the recipient's local time") by the address of the request until an
//!   order gives one; through the worker, every request would come from Cloudflare's.
//! - The identity of the first-party cookie (`visitor_id.rs`): its `anonymous_id` in
//!   place of the body's, and its `_kx` where the body has none, so that a browser whose
//!   script storage was wiped (Safari deletes it after 7 days without a visit) stays the
//!   profile it was from its first call on.
//!
//! The body was checked before (UTF-8, JSON, no duplicate key); only the profile's
//! attributes object is touched, by inserting members that are absent (so no key is
//! ever doubled) or replacing the one value of `anonymous_id`. Every other byte stays
//! as the page sent it.

use std::net::IpAddr;

use serde::de::{Deserialize, Deserializer};
use serde_json::value::RawValue;

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

/// The profile's attributes object in a route's body (one pass: every other member is
/// skipped), and whether Klaviyo takes a `location` there (the back-in-stock profile
/// holds identifiers only).
fn profile_attributes<'a>(route: &str, body: &'a str) -> Option<(&'a RawValue, bool)> {
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
    let nested = |body: &'a str| {
        serde_json::from_str::<Nested<'a>>(body)
            .ok()
            .map(|d| d.data.attributes.profile.data.attributes)
    };
    match route {
        "/client/events" | "/client/subscriptions" | "/client/event-bulk-create" => {
            nested(body).map(|a| (a, true))
        }
        "/client/profiles" => serde_json::from_str::<Data<Attrs<&'a RawValue>>>(body)
            .ok()
            .map(|d| (d.data.attributes, true)),
        "/client/back-in-stock-subscriptions" => nested(body).map(|a| (a, false)),
        _ => None,
    }
}

/// The body with the additions made, or `None` when it stays as received (nothing to
/// add, or all of it already there, or not the shape the route takes: Klaviyo answers
/// that one itself).
pub fn enrich(route: &str, body: &str, add: &Additions) -> Option<String> {
    if add.is_empty() {
        return None;
    }
    let (attrs, takes_location) = profile_attributes(route, body)?;
    let attrs = attrs.get();
    if !attrs.starts_with('{') {
        return None;
    }
    let known: Known = serde_json::from_str(attrs).ok()?;
    let mut edits: Vec<Edit> = Vec::new();
    // Members inserted at the start of the attributes object.
    let mut front = String::new();
    if let Some(id) = add.id {
        match known.anonymous_id.0 {
            None => push_member(&mut front, "anonymous_id", &quote(&id.anonymous_id)),
            Some(v) if serde_json::from_str::<&str>(v.get()).ok() != Some(&id.anonymous_id) => {
                edits.push(Edit::replace(body, v.get(), quote(&id.anonymous_id)));
            }
            Some(_) => {}
        }
        if let (Some(kx), None) = (&id.kx, known.kx.0) {
            push_member(&mut front, "_kx", &quote(kx));
        }
    }
    if let (Some(ip), true) = (add.ip, takes_location) {
        let ip = quote(&ip.to_string());
        match known.location.0 {
            None => push_member(&mut front, "location", &format!("{{\"ip\":{ip}}}")),
            Some(loc) if loc.get().starts_with('{') => {
                let has_ip = serde_json::from_str::<Location>(loc.get())
                    .map(|l| l.ip.0.is_some())
                    .unwrap_or(true);
                if !has_ip {
                    edits.push(Edit::open(body, loc.get(), "ip", &ip));
                }
            }
            // `null` or another kind: the page's own word, left as it is.
            Some(_) => {}
        }
    }
    if !front.is_empty() {
        edits.push(Edit::front(body, attrs, front));
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|e| e.at);
    let mut out = String::with_capacity(body.len() + 96);
    let mut from = 0;
    for e in &edits {
        out.push_str(&body[from..e.at]);
        out.push_str(&e.text);
        from = e.at + e.cut;
    }
    out.push_str(&body[from..]);
    Some(out)
}

/// Text to put at byte `at` of the body, in place of `cut` bytes.
struct Edit {
    at: usize,
    cut: usize,
    text: String,
}

impl Edit {
    /// `value`, a sub-slice of `body`, replaced by `text`.
    fn replace(body: &str, value: &str, text: String) -> Edit {
        Edit {
            at: offset(body, value),
            cut: value.len(),
            text,
        }
    }

    /// `members` (`"k":v,...` without the last comma) at the start of `object`.
    fn front(body: &str, object: &str, members: String) -> Edit {
        let empty = object[1..].trim_start().starts_with('}');
        let mut text = members;
        if !empty {
            text.push(',');
        }
        Edit {
            at: offset(body, object) + 1,
            cut: 0,
            text,
        }
    }

    /// The member `key: value` at the start of `object`.
    fn open(body: &str, object: &str, key: &str, value: &str) -> Edit {
        let mut members = String::new();
        push_member(&mut members, key, value);
        Edit::front(body, object, members)
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
