//! A queued bulk job Klaviyo refused (a 4xx) for some of its events: its JSON:API
//! error pointers (`/data/attributes/events-bulk-create/data/2/attributes/events/data/0/…`
//! for one event, `…/data/2/attributes/profile/…` for an entry's every event) say which.
//! The consumer sends the rest again at once and dead-letters the named ones alone, so
//! that one phone number Klaviyo does not take keeps no other profile's events away.
//! Plain Rust: `consumer.rs` does the I/O.

use serde::Deserialize;

use super::bulk_job;

/// The queue's API path for bulk event jobs, the one this applies to.
pub const BULK_EVENTS_PATH: &str = "/api/event-bulk-create-jobs";

/// A refused job divided by its error pointers.
#[derive(Debug, PartialEq, Eq)]
pub struct Divided {
    /// The events no error named, as a job to send again.
    pub kept: String,
    /// The named events, each with its entry's members, as a job of their own.
    pub refused: String,
    /// How many events `refused` holds.
    pub events: usize,
}

/// Job `body` divided by Klaviyo's error answer `errors`; `None` when the answer does not
/// name events of this job in every error (an error of the request as a whole, an error
/// without a pointer, a pointer past the job) or names all of them: then the job is
/// refused whole, as before.
pub fn divide(body: &str, errors: &str) -> Option<Divided> {
    let entries = bulk_job::read(body)?;
    // Per entry, which of its events were named (`None`: the whole entry).
    let mut named: Vec<Option<Vec<usize>>> = vec![Some(Vec::new()); entries.len()];
    for pointer in pointers(errors)? {
        let (entry, event) = parse(&pointer)?;
        let events = entries.get(entry)?.events.len();
        match (named.get_mut(entry)?, event) {
            (Some(list), Some(e)) if e < events => {
                if !list.contains(&e) {
                    list.push(e);
                }
            }
            // A pointer at the entry itself, its profile, or an event it does not have.
            (slot, _) => *slot = None,
        }
    }
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    let mut count = 0;
    for (entry, named) in entries.iter().zip(&named) {
        let is_named = |n: &usize| named.as_ref().is_none_or(|list| list.contains(n));
        let (out, keep): (Vec<_>, Vec<_>) = (0..entry.events.len()).partition(is_named);
        let whole = named.is_none();
        if !keep.is_empty() || (entry.events.is_empty() && !whole) {
            kept.push((entry.members.as_str(), pick(&entry.events, &keep)));
        }
        if !out.is_empty() || (entry.events.is_empty() && whole) {
            count += out.len();
            refused.push((entry.members.as_str(), pick(&entry.events, &out)));
        }
    }
    if kept.is_empty() || refused.is_empty() {
        return None;
    }
    Some(Divided {
        kept: bulk_job::write(kept),
        refused: bulk_job::write(refused),
        events: count,
    })
}

fn pick<'a>(events: &[&'a str], at: &[usize]) -> Vec<&'a str> {
    at.iter().filter_map(|&n| events.get(n).copied()).collect()
}

/// Every error's `source.pointer`; `None` when an error has none, or the answer is no
/// JSON:API error document.
fn pointers(errors: &str) -> Option<Vec<String>> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<Error>,
    }
    #[derive(Deserialize)]
    struct Error {
        source: Option<Source>,
    }
    #[derive(Deserialize)]
    struct Source {
        pointer: Option<String>,
    }
    let doc: Errors = serde_json::from_str(errors).ok()?;
    if doc.errors.is_empty() {
        return None;
    }
    doc.errors
        .into_iter()
        .map(|e| e.source.and_then(|s| s.pointer))
        .collect()
}

/// The entry, and the event if one is named, of a pointer into a bulk job; `None` for
/// a pointer elsewhere (the job's list itself, its type).
fn parse(pointer: &str) -> Option<(usize, Option<usize>)> {
    let rest = pointer.strip_prefix("/data/attributes/events-bulk-create/data/")?;
    let (entry, rest) = index(rest)?;
    let event = rest
        .strip_prefix("/attributes/events/data/")
        .and_then(index)
        .map(|(e, _)| e);
    Some((entry, event))
}

/// A leading array index and what follows it (`3/attributes` → 3, `/attributes`).
fn index(text: &str) -> Option<(usize, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let n = text[..digits].parse().ok()?;
    let rest = &text[digits..];
    (rest.is_empty() || rest.starts_with('/')).then_some((n, rest))
}

#[cfg(test)]
#[path = "refused_events_tests.rs"]
mod tests;
