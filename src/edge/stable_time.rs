//! Events given the time the worker accepted them, where they have no `time`. Klaviyo
//! otherwise stamps an event when the request reaches it: a queued call delivered
//! after an outage would carry the hour it was delivered, and an event without a
//! `unique_id` is kept once per profile, metric and second, so a redelivery (a queued
//! call's, `delivery/plan.rs`) or a retry (a call the worker sends itself, `router::direct`)
//! would be a second event. The edits are made in one copy of the body, whatever its
//! size.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::core::time;

/// `{"data": <event>}`: the event given the time the worker accepted it when it has no
/// `time`, so that a redelivery is the same event to Klaviyo, at the time it happened.
pub(super) fn single_event(body: &str, now_s: i64) -> Cow<'_, str> {
    #[derive(Deserialize)]
    struct One<'a> {
        #[serde(borrow)]
        data: &'a RawValue,
    }
    let Ok(one) = serde_json::from_str::<One>(body) else {
        return Cow::Borrowed(body);
    };
    let event = one.data.get();
    let edit = time_edit(event, now_s).map(|e| e.within(body, event));
    apply(body, edit.as_slice())
}

/// An event object (`{"type": "event", "attributes": {...}}`) with `time` set to `now_s`
/// when its attributes have none.
pub(super) fn stable_event(event: &str, now_s: i64) -> Cow<'_, str> {
    apply(event, time_edit(event, now_s).as_slice())
}

/// A change to a text: at byte `at`, `len` bytes replaced by `by`.
struct Edit {
    at: usize,
    len: usize,
    by: String,
}

impl Edit {
    /// This edit of `part` (a sub-slice of `whole`) as one of `whole`.
    fn within(self, whole: &str, part: &str) -> Edit {
        Edit {
            at: self.at + (part.as_ptr() as usize - whole.as_ptr() as usize),
            ..self
        }
    }
}

/// `text` with `edits` (in order, not overlapping) made, in one allocation: a body
/// near the size limit is copied once, never more.
fn apply<'a>(text: &'a str, edits: &[Edit]) -> Cow<'a, str> {
    if edits.is_empty() {
        return Cow::Borrowed(text);
    }
    let grow: usize = edits.iter().map(|e| e.by.len()).sum();
    let mut out = String::with_capacity(text.len() + grow);
    let mut from = 0;
    for e in edits {
        out.push_str(&text[from..e.at]);
        out.push_str(&e.by);
        from = e.at + e.len;
    }
    out.push_str(&text[from..]);
    Cow::Owned(out)
}

/// Where an event's stable time goes: inserted first in its attributes, or in place of
/// a `"time": null` (written beside it, a second `time` member would be read as the
/// last one, null, and the redelivery a new event again). None when the event has a
/// `time`, or is not read as one.
fn time_edit(event: &str, now_s: i64) -> Option<Edit> {
    #[derive(Deserialize)]
    struct Event<'a> {
        #[serde(borrow)]
        attributes: &'a RawValue,
    }
    #[derive(Deserialize)]
    struct Keys<'a> {
        #[serde(borrow, default)]
        time: Member<'a>,
    }
    let e = serde_json::from_str::<Event>(event).ok()?;
    let attrs = e.attributes.get();
    let k = serde_json::from_str::<Keys>(attrs).ok()?;
    if k.time.0.is_some_and(|v| v.get() != "null") || !attrs.starts_with('{') {
        return None;
    }
    let mut by = String::with_capacity(32);
    if let Some(null) = k.time.0 {
        by.push('"');
        time::push_iso(&mut by, now_s);
        by.push('"');
        let at = null.get().as_ptr() as usize - event.as_ptr() as usize;
        return Some(Edit {
            at,
            len: null.get().len(),
            by,
        });
    }
    by.push_str("\"time\":\"");
    time::push_iso(&mut by, now_s);
    by.push('"');
    if !attrs[1..].trim_start().starts_with('}') {
        by.push(',');
    }
    let at = attrs.as_ptr() as usize - event.as_ptr() as usize + 1;
    Some(Edit { at, len: 0, by })
}

/// A member as sent, null included (`Option<&RawValue>` reads a null as no member);
/// absent: the default, `None`.
#[derive(Clone, Copy, Default)]
struct Member<'a>(Option<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for Member<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a RawValue>::deserialize(d).map(|v| Member(Some(v)))
    }
}

/// A call's body as the worker forwards it directly (no queue, or a body the queue does
/// not take): its events given the time the worker accepted them, as a queued call's
/// are, so that a retry after a timeout or a 5xx is the same event to Klaviyo. `None`:
/// the body as received.
pub fn stable_direct(path: &str, body: &str, now_ms: u64) -> Option<String> {
    let now_s = (now_ms / 1000) as i64;
    let stable = match path {
        "/api/events" => single_event(body, now_s),
        "/api/event-bulk-create-jobs" => apply(body, &bulk_edits(body, now_s)),
        _ => return None,
    };
    match stable {
        Cow::Owned(b) => Some(b),
        Cow::Borrowed(_) => None,
    }
}

/// The edits that make each event of an `event-bulk-create-job` stable, in order.
fn bulk_edits(body: &str, now_s: i64) -> Vec<Edit> {
    #[derive(Deserialize)]
    struct Job<'a> {
        #[serde(borrow)]
        data: Attributes<JobAttributes<'a>>,
    }
    #[derive(Deserialize)]
    struct Attributes<T> {
        attributes: T,
    }
    #[derive(Deserialize)]
    struct JobAttributes<'a> {
        #[serde(rename = "events-bulk-create", borrow)]
        entries: List<Attributes<Events<'a>>>,
    }
    #[derive(Deserialize)]
    struct List<T> {
        data: Vec<T>,
    }
    #[derive(Deserialize)]
    struct Events<'a> {
        #[serde(borrow)]
        events: List<&'a RawValue>,
    }
    let Ok(job) = serde_json::from_str::<Job>(body) else {
        return Vec::new();
    };
    let mut edits = Vec::new();
    for entry in &job.data.attributes.entries.data {
        for e in &entry.attributes.events.data {
            if let Some(edit) = time_edit(e.get(), now_s) {
                edits.push(edit.within(body, e.get()));
            }
        }
    }
    edits
}
