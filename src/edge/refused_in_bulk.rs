//! A queued bulk job Klaviyo refused (a 4xx) for some of what it holds: its JSON:API
//! error pointers say which. In an event job, `…/events-bulk-create/data/2/attributes/
//! events/data/0/…` names one event and `…/events-bulk-create/data/2/attributes/profile/…`
//! an entry's every event; in a subscription job, `/data/attributes/profiles/data/3/…`
//! one profile. The consumer sends the rest again at once and dead-letters the named
//! ones alone, so that one email or phone number Klaviyo does not take keeps no other
//! profile's events or consent away. Plain Rust: `consumer.rs` does the I/O.

use serde::Deserialize;
use serde_json::Value;

use super::bulk_job;

/// The API paths of the bulk jobs this applies to.
pub const BULK_EVENTS_PATH: &str = "/api/event-bulk-create-jobs";
pub const BULK_SUBSCRIBE_PATH: &str = "/api/profile-subscription-bulk-create-jobs";

/// A refused job divided by its error pointers.
#[derive(Debug, PartialEq, Eq)]
pub struct Divided {
    /// What no error named, as a job to send again.
    pub kept: String,
    /// What was named (events each with its entry's members), as a job of its own.
    pub refused: String,
    /// How many events, or profiles, `refused` holds.
    pub count: usize,
}

/// Job `body`, sent to `path`, divided by Klaviyo's error answer `errors`; `None` for
/// another path, or when the answer does not name parts of this job in every error (an
/// error of the request as a whole, an error without a pointer, a pointer past the
/// job) or names all of them: then the job is refused whole, as before.
pub fn divide(path: &str, body: &str, errors: &str) -> Option<Divided> {
    match path {
        BULK_EVENTS_PATH => divide_events(body, errors),
        BULK_SUBSCRIBE_PATH => divide_profiles(body, errors),
        _ => None,
    }
}

fn divide_events(body: &str, errors: &str) -> Option<Divided> {
    let entries = bulk_job::read(body)?;
    // Per entry, which of its events were named (`None`: the whole entry).
    let mut named: Vec<Option<Vec<usize>>> = vec![Some(Vec::new()); entries.len()];
    for pointer in pointers(errors)? {
        let (entry, event) = parse_events(&pointer)?;
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
        count,
    })
}

/// A subscription job's profiles divided: each job keeps the rest of the body (its
/// list, `custom_source`, `historical_import`) as sent. Its bodies hold no numbers
/// whose decimals a tree could change.
fn divide_profiles(body: &str, errors: &str) -> Option<Divided> {
    const LIST: &str = "/data/attributes/profiles/data";
    let job: Value = serde_json::from_str(body).ok()?;
    let profiles = job.pointer(LIST)?.as_array()?;
    let mut named = Vec::new();
    for pointer in pointers(errors)? {
        let rest = pointer.strip_prefix(LIST)?.strip_prefix('/')?;
        let (n, _) = index(rest)?;
        if n >= profiles.len() {
            return None;
        }
        if !named.contains(&n) {
            named.push(n);
        }
    }
    let (out, keep): (Vec<_>, Vec<_>) = (0..profiles.len()).partition(|n| named.contains(n));
    if keep.is_empty() || out.is_empty() {
        return None;
    }
    let with = |at: &[usize]| -> Option<String> {
        let mut part = job.clone();
        let list = part.pointer_mut(LIST)?.as_array_mut()?;
        *list = at
            .iter()
            .filter_map(|&n| profiles.get(n).cloned())
            .collect();
        serde_json::to_string(&part).ok()
    };
    Some(Divided {
        kept: with(&keep)?,
        refused: with(&out)?,
        count: out.len(),
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

/// The entry, and the event if one is named, of a pointer into a bulk event job; `None` for
/// a pointer elsewhere (the job's list itself, its type).
fn parse_events(pointer: &str) -> Option<(usize, Option<usize>)> {
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
#[path = "refused_in_bulk_tests.rs"]
mod tests;
