//! An `event-bulk-create-job` body as the queue reads it: each entry's members (its
//! `backfill` if given, its profile) and its events, borrowed from the body as sent, and
//! how a job is written again from such pieces. `delivery/plan.rs` divides a job into parts
//! that fit a message; `refused_in_bulk.rs` takes out the events Klaviyo refused.

use serde::Deserialize;
use serde_json::value::RawValue;

/// What each job written here starts and ends with.
pub const HEAD: &str =
    r#"{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":["#;
pub const TAIL: &str = "]}}}}";
/// What each entry starts with, what comes between its members and its events, and
/// what ends it.
pub const ENTRY: &str = r#"{"type":"event-bulk-create","attributes":{"#;
pub const EVENTS: &str = r#","events":{"data":["#;
pub const ENTRY_END: &str = "]}}}";

/// A job's entries; `None` from [`read`] when the body has members this reading does
/// not know (then it is sent as it is).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Job<'a> {
    #[serde(borrow)]
    data: JobData<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobData<'a> {
    #[serde(rename = "type")]
    _kind: &'a str,
    #[serde(borrow)]
    attributes: JobAttributes<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobAttributes<'a> {
    #[serde(rename = "events-bulk-create", borrow)]
    entries: List<RawEntry<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct List<T> {
    data: Vec<T>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry<'a> {
    #[serde(rename = "type")]
    _kind: &'a str,
    #[serde(borrow)]
    attributes: EntryAttributes<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryAttributes<'a> {
    // Kept as sent (a null too) in each job the entry's events go to.
    #[serde(borrow, default)]
    backfill: Option<&'a RawValue>,
    #[serde(borrow)]
    profile: &'a RawValue,
    #[serde(borrow)]
    events: List<&'a RawValue>,
}

/// One entry: its members before its events, as each job that holds some of its events
/// writes them (`"backfill":…,"profile":…`), and its events as sent.
pub struct Entry<'a> {
    pub members: String,
    pub events: Vec<&'a str>,
}

/// The entries of job `body`, in order; `None` for a body this reading does not know.
pub fn read(body: &str) -> Option<Vec<Entry<'_>>> {
    let job: Job = serde_json::from_str(body).ok()?;
    let entries = job.data.attributes.entries.data;
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let a = entry.attributes;
        let mut members = String::new();
        if let Some(backfill) = a.backfill {
            members.push_str("\"backfill\":");
            members.push_str(backfill.get());
            members.push(',');
        }
        members.push_str("\"profile\":");
        members.push_str(a.profile.get());
        let events = a.events.data.iter().map(|e| e.get()).collect();
        out.push(Entry { members, events });
    }
    Some(out)
}

/// A job of `entries`, each its members and the events to hold (an entry may hold none).
pub fn write<'a>(entries: impl IntoIterator<Item = (&'a str, Vec<&'a str>)>) -> String {
    let mut job = String::from(HEAD);
    for (n, (members, events)) in entries.into_iter().enumerate() {
        if n > 0 {
            job.push(',');
        }
        job.push_str(ENTRY);
        job.push_str(members);
        job.push_str(EVENTS);
        job.push_str(&events.join(","));
        job.push_str(ENTRY_END);
    }
    job.push_str(TAIL);
    job
}
