//! The stored form of the queue: one localStorage record per task, holding that task's
//! calls, one per line.
//!
//! ```text
//! 2 <created_ms>
//! p<profile attributes, JSON>                      the profile of the events below it
//! e<idx>\t<time_s>\t<"unique_id">\t<value>\t<currency>\t<"metric">\t<properties JSON>
//! b<idx>\t<endpoint code>\t<request body JSON>    a whole non-event request
//! ```
//!
//! `idx` numbers a call within its record and never changes, so a record rewritten
//! after some of its calls were delivered still names the rest the same way (other
//! tabs and keepalive marks refer to calls as record + idx). JSON written by us or by
//! `JSON.stringify` never holds a raw newline or tab, so those separate safely; a
//! `unique_id` has no control characters.

use super::jsontext::{self as jt, Kind};
use super::payload::Event;
use super::text::{self, push_u64};

const VERSION: &str = "2";

/// The `/client` endpoints the browser sends to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Events,
    BulkEvents,
    Profiles,
    Subscriptions,
    BackInStock,
}

pub const ENDPOINTS: usize = 5;

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Events => "/client/events",
            Endpoint::BulkEvents => "/client/event-bulk-create",
            Endpoint::Profiles => "/client/profiles",
            Endpoint::Subscriptions => "/client/subscriptions",
            Endpoint::BackInStock => "/client/back-in-stock-subscriptions",
        }
    }

    /// Klaviyo's published limits: (burst per second, steady per minute).
    pub fn limits(self) -> (u32, u32) {
        match self {
            Endpoint::BulkEvents => (10, 150),
            Endpoint::Subscriptions => (350, 750),
            _ => (350, 3500),
        }
    }

    fn code(self) -> char {
        match self {
            Endpoint::Events | Endpoint::BulkEvents => 'E',
            Endpoint::Profiles => 'P',
            Endpoint::Subscriptions => 'S',
            Endpoint::BackInStock => 'B',
        }
    }

    fn from_code(c: &str) -> Option<Endpoint> {
        Some(match c {
            "P" => Endpoint::Profiles,
            "S" => Endpoint::Subscriptions,
            "B" => Endpoint::BackInStock,
            _ => return None,
        })
    }
}

/// One line of a record, as read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// The profile attributes of the events that follow.
    Profile(&'a str),
    /// An event: its fields as [`event_fields`] wrote them.
    Event { idx: u32, fields: &'a str },
    /// A whole request body.
    Body {
        idx: u32,
        endpoint: Endpoint,
        body: &'a str,
    },
}

/// Starts a record created at `created_ms`.
pub fn header(created_ms: u64, out: &mut String) {
    out.push_str(VERSION);
    out.push(' ');
    push_u64(out, created_ms);
}

pub fn push_profile(profile: &str, out: &mut String) {
    out.push_str("\np");
    out.push_str(profile);
}

pub fn push_event(idx: u32, fields: &str, out: &mut String) {
    out.push_str("\ne");
    push_u64(out, u64::from(idx));
    out.push('\t');
    out.push_str(fields);
}

pub fn push_body(idx: u32, endpoint: Endpoint, body: &str, out: &mut String) {
    out.push_str("\nb");
    push_u64(out, u64::from(idx));
    out.push('\t');
    out.push(endpoint.code());
    out.push('\t');
    out.push_str(body);
}

/// A record's creation time and lines; `None` when it is not a record of ours. Lines
/// that do not read back (a damaged record) make the whole record unreadable.
pub fn read(value: &str) -> Option<(u64, Vec<Line<'_>>)> {
    let mut lines = text::parts(value, b'\n');
    let created = lines.next()?.strip_prefix(VERSION)?.strip_prefix(" ")?;
    let created_ms = text::parse_u64(created)?;
    let mut out = Vec::new();
    let mut profile = false;
    for line in lines {
        let (tag, rest) = (line.get(..1)?, line.get(1..)?);
        out.push(match tag {
            "p" if jt::kind(rest) == Kind::Obj => {
                profile = true;
                Line::Profile(rest)
            }
            "e" if profile => {
                let (idx, fields) = text::cut(rest, b'\t')?;
                read_event(fields)?;
                Line::Event {
                    idx: text::parse_u64(idx).and_then(|n| u32::try_from(n).ok())?,
                    fields,
                }
            }
            "b" => {
                let (idx, rest) = text::cut(rest, b'\t')?;
                let (code, body) = text::cut(rest, b'\t')?;
                if jt::kind(body) != Kind::Obj {
                    return None;
                }
                Line::Body {
                    idx: text::parse_u64(idx).and_then(|n| u32::try_from(n).ok())?,
                    endpoint: Endpoint::from_code(code)?,
                    body,
                }
            }
            _ => return None,
        });
    }
    Some((created_ms, out))
}

/// The fields of an event line: `time_s \t "unique_id" \t value \t currency \t "metric" \t properties`.
pub fn event_fields(e: &Event) -> String {
    let mut out = String::with_capacity(
        e.unique_id.len() + e.value.len() + e.metric.len() + e.properties.len() + 24,
    );
    text::push_i64(&mut out, e.time_s);
    for part in &[e.unique_id, e.value, e.currency, e.metric, e.properties] {
        out.push('\t');
        out.push_str(part);
    }
    out
}

/// Reads what [`event_fields`] wrote; `None` for anything else.
pub fn read_event(fields: &str) -> Option<Event<'_>> {
    let (time_s, rest) = text::cut(fields, b'\t')?;
    let (unique_id, rest) = text::cut(rest, b'\t')?;
    let (value, rest) = text::cut(rest, b'\t')?;
    let (currency, rest) = text::cut(rest, b'\t')?;
    let (metric, properties) = text::cut(rest, b'\t')?;
    let e = Event {
        time_s: text::parse_i64(time_s)?,
        unique_id,
        value,
        currency,
        metric,
        properties,
    };
    let ok = jt::kind(e.unique_id) == Kind::Str
        && jt::kind(e.metric) == Kind::Str
        && (e.value.is_empty() || jt::kind(e.value) == Kind::Num)
        && (e.currency.is_empty() || e.currency.bytes().all(|b| b.is_ascii_alphabetic()))
        && jt::kind(e.properties) == Kind::Obj;
    ok.then_some(e)
}

/// Keepalive marks (`k:<record id>`): `<until_ms> <idx>,<idx>,...`, the calls of that
/// record that were in a request the page could not wait for.
pub fn mark(until_ms: u64, idx: &[u32], out: &mut String) {
    push_u64(out, until_ms);
    for (n, i) in idx.iter().enumerate() {
        out.push(if n == 0 { ' ' } else { ',' });
        push_u64(out, u64::from(*i));
    }
}

/// A mark's time and its list of idx, checked and kept as text (read with
/// [`mark_lists`]): no list of numbers to build for a mark.
pub fn read_mark(value: &str) -> Option<(u64, &str)> {
    let (until, list) = text::cut(value, b' ')?;
    if !text::parts(list, b',').all(|i| mark_idx(i).is_some()) {
        return None;
    }
    Some((text::parse_u64(until)?, list))
}

/// Whether a mark's list (as [`read_mark`] gives it) names call `idx`.
pub fn mark_lists(list: &str, idx: u32) -> bool {
    text::parts(list, b',').any(|i| mark_idx(i) == Some(idx))
}

fn mark_idx(i: &str) -> Option<u32> {
    text::parse_u64(i).and_then(|n| u32::try_from(n).ok())
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
