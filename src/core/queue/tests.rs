//! Every queue rule with a fake clock: one record per task, persistence and reload,
//! batching, retry and backoff, Retry-After, bulk isolation, storage and memory bounds,
//! give-up, rate limits, online/offline, tabs, keepalive marks, broken storage.

use super::*;
use crate::core::jsontext as jt;
use crate::core::payload::Event;
use serde_json::Value as Json;
use std::collections::BTreeMap;

const T0: u64 = 1_795_669_339_000;
const Q: &str = "klaviyo:AbC123:q:";
const K: &str = "klaviyo:AbC123:k:";
const ANON: &str = r#"{"anonymous_id":"a-1"}"#;
const ANN: &str = r#"{"email":"ann@example.com","anonymous_id":"a-1"}"#;
const ALL: usize = usize::MAX;

fn queue() -> Queue {
    with(Limits::default())
}

fn with(limits: Limits) -> Queue {
    Queue::new(Q.into(), K.into(), limits)
}

/// The stored fields of an event whose `unique_id` is `uid`.
fn fields(uid: &str) -> String {
    let uid = jt::quote(uid);
    record::event_fields(&Event {
        time_s: (T0 / 1000) as i64,
        unique_id: &uid,
        value: "",
        currency: "",
        metric: r#""M""#,
        properties: "{}",
    })
}

/// Pushes events `<tag>-0` .. `<tag>-<n-1>` of `profile` (call ids and unique ids
/// alike, so a task's record is `<tag>-0`).
fn push(q: &mut Queue, tag: &str, n: usize, profile: &str, now: u64) {
    for i in 0..n {
        let id = format!("{tag}-{i}");
        q.push_event(&id, profile, fields(&id), now);
    }
}

/// One task of `n` events, ended by the sync; returns its storage writes.
fn task(q: &mut Queue, tag: &str, n: usize, profile: &str, now: u64) -> Vec<StorageOp> {
    push(q, tag, n, profile, now);
    q.sync(now);
    q.take_ops()
}

fn status(s: u16) -> Outcome {
    Outcome::Status {
        status: s,
        retry_after_s: None,
        body: String::new(),
    }
}

fn ok() -> Outcome {
    status(202)
}

/// An answer `s` whose `Retry-After` asks for `secs` seconds.
fn waiting(s: u16, secs: u32) -> Outcome {
    Outcome::Status {
        status: s,
        retry_after_s: Some(secs),
        body: String::new(),
    }
}

fn refused(s: u16, body: &str) -> Outcome {
    Outcome::Status {
        status: s,
        retry_after_s: None,
        body: body.into(),
    }
}

fn put(key: &str, value: &str) -> StorageOp {
    StorageOp::Put {
        key: key.into(),
        value: value.into(),
    }
}

fn remove(key: &str) -> StorageOp {
    StorageOp::Remove { key: key.into() }
}

/// The keys and values of the `Put`s among `ops`.
fn puts(ops: &[StorageOp]) -> Vec<(&str, &str)> {
    ops.iter()
        .filter_map(|op| match op {
            StorageOp::Put { key, value } => Some((key.as_str(), value.as_str())),
            _ => None,
        })
        .collect()
}

/// The idx of the event lines of a stored record, in order.
fn lines(value: &str) -> Vec<u32> {
    let (_, lines) = record::read(value).expect("a record");
    lines.iter().filter_map(line_idx).collect()
}

/// A fake localStorage.
#[derive(Default)]
struct Disk(BTreeMap<String, String>);

impl Disk {
    fn apply(&mut self, ops: &[StorageOp]) {
        for op in ops {
            match op {
                StorageOp::Put { key, value } => self.0.insert(key.clone(), value.clone()),
                StorageOp::Remove { key } => self.0.remove(key),
                StorageOp::Erase { prefix } => {
                    self.0.retain(|k, _| !k.starts_with(prefix.as_str()));
                    None
                }
            };
        }
    }

    /// A new page: a queue that loads everything stored (in key order).
    fn reload(&self) -> Queue {
        let mut q = queue();
        for (k, v) in &self.0 {
            q.load(k, v);
        }
        q
    }
}

/// Feeds `ops` made by one tab to another as storage events.
fn mirror(ops: &[StorageOp], other: &mut Queue) {
    for op in ops {
        match op {
            StorageOp::Put { key, value } => other.on_storage_change(key, Some(value)),
            StorageOp::Remove { key } => other.on_storage_change(key, None),
            StorageOp::Erase { .. } => unreachable!("the queue never erases"),
        }
    }
}

fn body(t: &Transmit) -> Json {
    serde_json::from_str::<Json>(&t.body).expect("a valid JSON body")
}

fn at<'a>(v: &'a Json, path: &[&str]) -> &'a Json {
    path.iter().fold(v, |v, k| v.get(k).unwrap_or(&Json::Null))
}

/// The unique ids a transmit carries, in order.
fn uids(t: &Transmit) -> Vec<String> {
    let v = body(t);
    let uid = |a: &Json| at(a, &["unique_id"]).as_str().unwrap().to_string();
    match at(&v, &["data", "attributes", "events", "data"]) {
        Json::Array(events) => events.iter().map(|e| uid(at(e, &["attributes"]))).collect(),
        _ => vec![uid(at(&v, &["data", "attributes"]))],
    }
}

/// The profile attributes of an event transmit, as the JSON text `expected` would
/// parse (key order aside).
fn profile(t: &Transmit) -> Json {
    at(
        &body(t),
        &["data", "attributes", "profile", "data", "attributes"],
    )
    .clone()
}

fn parsed(text: &str) -> Json {
    serde_json::from_str(text).expect("JSON")
}

fn report_count(reports: &[Report], kind: ReportKind) -> usize {
    reports
        .iter()
        .filter(|r| r.kind == kind)
        .map(|r| r.count)
        .sum()
}

/// Sends and accepts everything, moving the clock to each wake-up; then syncs.
/// Returns the size of each request and the time it ended.
fn drain(q: &mut Queue, mut now: u64) -> (Vec<usize>, u64) {
    let mut sizes = Vec::new();
    for _ in 0..10_000 {
        while let Some(t) = q.poll_transmit(now, ALL) {
            sizes.push(t.items);
            q.on_outcome(t.id, ok(), now, 0);
        }
        match q.poll_timeout() {
            Some(at) if at > now => now = at,
            Some(_) => panic!("due at {now} but nothing was sent"),
            None => {
                q.sync(now);
                return (sizes, now);
            }
        }
    }
    panic!("the queue never drained");
}

// ------------------------------------------------------------ one task, one record

#[test]
fn the_calls_of_one_task_are_written_as_one_record_at_its_end() {
    let mut q = queue();
    push(&mut q, "a", 3, ANON, T0);
    assert!(
        q.take_ops().is_empty(),
        "nothing is written during the task"
    );
    assert!(
        q.poll_transmit(T0, ALL).is_none(),
        "nothing is sent before its record"
    );
    assert_eq!(q.poll_timeout(), None);
    q.sync(T0);
    let ops = q.take_ops();
    assert_eq!(ops.len(), 1);
    let [(key, value)] = puts(&ops)[..] else {
        panic!("{ops:?}")
    };
    assert_eq!(key, "klaviyo:AbC123:q:a-0");
    let (created, read) = record::read(value).unwrap();
    assert_eq!(created, T0);
    assert_eq!(read[0], Line::Profile(ANON));
    assert_eq!(lines(value), vec![0, 1, 2]);
    assert_eq!(q.poll_timeout(), Some(T0));
    assert_eq!(q.poll_transmit(T0, ALL).unwrap().items, 3);
}

#[test]
fn a_later_task_writes_a_new_record_and_leaves_the_earlier_one_alone() {
    let mut q = queue();
    task(&mut q, "a", 2, ANON, T0);
    let ops = task(&mut q, "b", 2, ANON, T0 + 1);
    assert_eq!(puts(&ops).len(), 1);
    assert_eq!(ops.len(), 1, "no rewrite or removal of the earlier record");
    assert_eq!(puts(&ops)[0].0, "klaviyo:AbC123:q:b-0");
    assert_eq!(q.len(), 4);
    assert_eq!(q.stored(), 4);
}

#[test]
fn the_open_task_is_not_sent_with_the_written_ones() {
    let mut q = queue();
    task(&mut q, "a", 2, ANON, T0);
    push(&mut q, "b", 2, ANON, T0);
    let t = q.poll_transmit(T0, ALL).unwrap();
    assert_eq!(uids(&t), ["a-0", "a-1"]);
    assert!(q.poll_transmit(T0, ALL).is_none());
    q.sync(T0);
    assert_eq!(uids(&q.poll_transmit(T0, ALL).unwrap()), ["b-0", "b-1"]);
}

#[test]
fn a_record_is_removed_only_after_klaviyo_answered() {
    let mut q = queue();
    task(&mut q, "a", 1, ANON, T0);
    let t = q.poll_transmit(T0, ALL).unwrap();
    q.sync(T0);
    assert!(q.take_ops().is_empty(), "in flight is still on disk");
    q.on_outcome(t.id, status(503), T0, 0);
    q.sync(T0);
    assert!(q.take_ops().is_empty());
    let t = q.poll_transmit(T0 + 10_000, ALL).unwrap();
    q.on_outcome(t.id, ok(), T0 + 10_000, 0);
    q.sync(T0 + 10_000);
    assert_eq!(q.take_ops(), vec![remove("klaviyo:AbC123:q:a-0")]);
    assert!(q.is_empty());
    assert_eq!(q.delivered, 1);
}

#[test]
fn a_partial_delivery_rewrites_the_record_with_the_rest_under_the_same_numbers() {
    let mut q = with(Limits {
        batch_events: 2,
        ..Limits::default()
    });
    let first = task(&mut q, "a", 5, ANON, T0);
    let t = q.poll_transmit(T0, ALL).unwrap();
    assert_eq!(uids(&t), ["a-0", "a-1"]);
    q.on_outcome(t.id, ok(), T0, 0);
    q.sync(T0);
    let ops = q.take_ops();
    let [(key, value)] = puts(&ops)[..] else {
        panic!("{ops:?}")
    };
    assert_eq!(key, puts(&first)[0].0, "the same key, rewritten");
    assert_eq!(lines(value), vec![2, 3, 4]);
    assert_eq!(
        record::read(value).unwrap().0,
        T0,
        "it keeps its creation time"
    );
    // A reload holds only the rest.
    let mut disk = Disk::default();
    disk.apply(&ops);
    let mut next = disk.reload();
    assert_eq!(next.len(), 3);
    assert_eq!(
        uids(&next.poll_transmit(T0, ALL).unwrap()),
        ["a-2", "a-3", "a-4"]
    );
    drain(&mut q, T0);
    assert_eq!(q.take_ops(), vec![remove(key)]);
}

#[test]
fn a_record_with_two_profiles_sends_each_call_with_its_own_profile() {
    let mut q = queue();
    push(&mut q, "a", 1, ANON, T0);
    let profile_body = r#"{"data":{"type":"profile","attributes":{"email":"ann@example.com","anonymous_id":"a-1"}}}"#;
    q.push_body("p", Endpoint::Profiles, profile_body.into(), T0);
    push(&mut q, "b", 1, ANN, T0);
    q.sync(T0);
    let ops = q.take_ops();
    assert_eq!(ops.len(), 1, "one task, one record");
    let check = |q: &mut Queue| {
        let t = q.poll_transmit(T0, ALL).unwrap();
        assert_eq!(
            (t.endpoint, uids(&t)),
            (Endpoint::Events, vec!["a-0".into()])
        );
        assert_eq!(profile(&t), parsed(ANON));
        let t = q.poll_transmit(T0, ALL).unwrap();
        assert_eq!(
            (t.endpoint, t.body.as_str()),
            (Endpoint::Profiles, profile_body)
        );
        let t = q.poll_transmit(T0, ALL).unwrap();
        assert_eq!(uids(&t), ["b-0"]);
        assert_eq!(profile(&t), parsed(ANN));
        assert!(q.poll_transmit(T0, ALL).is_none());
    };
    check(&mut q);
    // The record names each line's profile, so a reload sends the same requests.
    let mut disk = Disk::default();
    disk.apply(&ops);
    check(&mut disk.reload());
}

#[test]
fn a_reload_restores_the_same_calls_with_their_ids_and_times_in_time_order() {
    let mut q = queue();
    let mut disk = Disk::default();
    // The newer record has the key that sorts first.
    disk.apply(&task(&mut q, "z", 2, ANON, T0));
    disk.apply(&task(&mut q, "a", 2, ANON, T0 + 5));
    let sent = q.poll_transmit(T0 + 10, ALL).unwrap();
    assert_eq!(uids(&sent), ["z-0", "z-1", "a-0", "a-1"]);
    let mut next = disk.reload();
    assert_eq!(next.len(), 4);
    assert!(next.take_ops().is_empty());
    let again = next.poll_transmit(T0 + 3_600_000, ALL).unwrap();
    assert_eq!(
        again.body, sent.body,
        "same unique_id and time, oldest first"
    );
}

#[test]
fn garbage_under_our_keys_is_removed_and_other_keys_are_ignored() {
    let mut q = queue();
    for (k, v) in [
        ("klaviyo:AbC123:q:junk", "not a record"),
        ("klaviyo:AbC123:q:old", "1\nE\n12\nu\n{}"),
        ("klaviyo:AbC123:q:cut", "2 5\np{}\ne0\t1\t\"u\"\t\t\t\"m\""),
        ("klaviyo:AbC123:k:junk", "soon"),
        ("klaviyo:Other1:q:x", "foreign"),
        ("klaviyo:AbC123:id", "{}"),
        ("unrelated", "x"),
    ] {
        q.load(k, v);
    }
    assert!(q.is_empty());
    assert_eq!(
        q.take_ops(),
        vec![
            remove("klaviyo:AbC123:q:junk"),
            remove("klaviyo:AbC123:q:old"),
            remove("klaviyo:AbC123:q:cut"),
            remove("klaviyo:AbC123:k:junk"),
        ]
    );
}

#[test]
fn a_record_loaded_twice_is_held_once() {
    let mut q = queue();
    let ops = task(&mut q, "a", 2, ANON, T0);
    let mut other = queue();
    let (k, v) = puts(&ops)[0];
    other.load(k, v);
    other.load(k, v);
    assert_eq!(other.len(), 2);
    assert_eq!(other.stored(), 2);
}

// ------------------------------------------------------------ batching

#[test]
fn events_of_one_profile_go_together_and_other_profiles_separately() {
    let mut q = queue();
    push(&mut q, "a", 3, ANON, T0);
    push(&mut q, "b", 1, ANN, T0);
    q.sync(T0);
    let t1 = q.poll_transmit(T0, ALL).unwrap();
    assert_eq!((t1.endpoint, t1.items), (Endpoint::BulkEvents, 3));
    assert_eq!(profile(&t1), parsed(ANON));
    let t2 = q.poll_transmit(T0, ALL).unwrap();
    assert_eq!((t2.endpoint, t2.items), (Endpoint::Events, 1));
    assert_eq!(profile(&t2), parsed(ANN));
    assert!(q.poll_transmit(T0, ALL).is_none());
}

#[test]
fn a_thousand_events_of_one_profile_drain_in_one_request() {
    let mut q = queue();
    task(&mut q, "a", 1000, ANON, T0);
    let t = q.poll_transmit(T0, ALL).unwrap();
    assert_eq!(t.items, 1000);
    assert!(t.body.len() < 512 * 1024);
    let v = body(&t);
    assert_eq!(
        at(&v, &["data", "type"]).as_str(),
        Some("event-bulk-create")
    );
    q.on_outcome(t.id, ok(), T0, 0);
    assert!(q.is_empty());
}

#[test]
fn batches_stop_at_1000_events_and_at_the_byte_cap() {
    let mut q = with(Limits {
        max_events: 5000,
        max_bytes: 50_000_000,
        ..Limits::default()
    });
    task(&mut q, "a", 2500, ANON, T0);
    let sizes: Vec<usize> = std::iter::from_fn(|| q.poll_transmit(T0, ALL))
        .map(|t| t.items)
        .collect();
    assert_eq!(sizes, vec![1000, 1000, 500]);

    let mut q = with(Limits {
        batch_bytes: 2_000,
        ..Limits::default()
    });
    task(&mut q, "a", 30, ANON, T0);
    let t = q.poll_transmit(T0, ALL).unwrap();
    assert!(t.body.len() <= 2_000, "{}", t.body.len());
    assert!(t.items > 1 && t.items < 30);
}

#[test]
fn a_repeated_unique_id_goes_in_a_separate_request() {
    let mut q = queue();
    for (call, uid) in [("c-0", "dup"), ("c-1", "dup"), ("c-2", "other")] {
        q.push_event(call, ANON, fields(uid), T0);
    }
    q.sync(T0);
    let first = q.poll_transmit(T0, ALL).unwrap();
    assert_eq!(uids(&first), ["dup", "other"]);
    let second = q.poll_transmit(T0, ALL).unwrap();
    assert_eq!(
        (second.endpoint, uids(&second)),
        (Endpoint::Events, vec!["dup".into()])
    );
    q.on_outcome(first.id, ok(), T0, 0);
    q.on_outcome(second.id, ok(), T0, 0);
    assert!(q.is_empty());
}

#[test]
fn the_flush_delay_holds_a_task_back_for_later_calls() {
    let mut q = with(Limits {
        flush_delay_ms: 50,
        ..Limits::default()
    });
    task(&mut q, "a", 1, ANON, T0);
    assert!(q.poll_transmit(T0 + 49, ALL).is_none());
    assert_eq!(q.poll_timeout(), Some(T0 + 50));
    task(&mut q, "b", 1, ANON, T0 + 20);
    // The first call's delay decides; the later one joins its request.
    assert_eq!(q.poll_transmit(T0 + 50, ALL).unwrap().items, 2);
    assert_eq!(q.poll_timeout(), None);
}

// ------------------------------------------------------------ retries

#[test]
fn network_errors_back_off_exponentially() {
    let mut q = queue();
    task(&mut q, "a", 1, ANON, T0);
    let mut now = T0;
    for expected in [1_000, 2_000, 4_000, 8_000] {
        let t = q.poll_transmit(now, ALL).unwrap();
        q.on_outcome(t.id, Outcome::Network, now, 0);
        assert!(q.poll_transmit(now + expected - 1, ALL).is_none());
        assert_eq!(q.poll_timeout(), Some(now + expected));
        now += expected;
    }
    assert!(q.poll_transmit(now, ALL).is_some());
}

#[test]
fn the_jitter_given_with_an_answer_adds_up_to_a_quarter() {
    let mut q = queue();
    task(&mut q, "a", 1, ANON, T0);
    let t = q.poll_transmit(T0, ALL).unwrap();
    q.on_outcome(t.id, Outcome::Network, T0, u16::MAX);
    assert_eq!(q.poll_timeout(), Some(T0 + 1_250));
    let reports = q.take_reports();
    assert_eq!(
        (reports[0].kind, reports[0].count),
        (ReportKind::WillRetry, 1)
    );
}

#[test]
fn five_503s_then_202_delivers_once() {
    let mut q = queue();
    task(&mut q, "a", 1, ANON, T0);
    let mut now = T0;
    let mut sends = 0;
    while !q.is_empty() {
        let Some(t) = q.poll_transmit(now, ALL) else {
            now = q.poll_timeout().unwrap();
            continue;
        };
        sends += 1;
        let answer = if sends <= 5 { status(503) } else { ok() };
        q.on_outcome(t.id, answer, now, 0);
    }
    assert_eq!(sends, 6);
    assert_eq!((q.delivered, q.failed), (1, 5));
}

#[test]
fn a_429_pauses_every_request_until_retry_after() {
    let mut q = queue();
    push(&mut q, "a", 1, ANON, T0);
    push(&mut q, "b", 1, ANN, T0);
    q.sync(T0);
    let t = q.poll_transmit(T0, ALL).unwrap();
    let answer = waiting(429, 3);
    q.on_outcome(t.id, answer, T0, 0);
    assert!(
        q.poll_transmit(T0 + 2_999, ALL).is_none(),
        "not even the other profile's event"
    );
    assert_eq!(q.poll_timeout(), Some(T0 + 3_000));
    let mut sent = Vec::new();
    while let Some(t) = q.poll_transmit(T0 + 3_000, ALL) {
        sent.extend(uids(&t));
    }
    assert_eq!(sent, ["a-0", "b-0"]);
}

#[test]
fn a_429s_pause_outlives_the_page_and_reaches_the_other_tabs_then_its_mark_goes() {
    let mut q = queue();
    let mut other = queue();
    let mut disk = Disk::default();
    let ops = task(&mut q, "a", 1, ANON, T0);
    disk.apply(&ops);
    mirror(&ops, &mut other);
    let t = q.poll_transmit(T0, ALL).unwrap();
    let answer = waiting(429, 30);
    q.on_outcome(t.id, answer, T0, 0);
    q.sync(T0);
    let ops = q.take_ops();
    let until = format!("{} 0", T0 + 30_000);
    assert_eq!(puts(&ops), [("klaviyo:AbC123:k:pause", until.as_str())]);
    disk.apply(&ops);
    mirror(&ops, &mut other);
    // A reload (or a tab that becomes the sender) waits for the rest of it.
    let mut next = disk.reload();
    assert!(
        next.poll_transmit(T0 + 1_000, ALL).is_none(),
        "the next page"
    );
    assert_eq!(next.poll_timeout(), Some(T0 + 30_000));
    other.set_sender(true);
    task(&mut other, "b", 1, ANN, T0 + 1_000);
    assert!(
        other.poll_transmit(T0 + 1_000, ALL).is_none(),
        "another tab"
    );
    assert!(next.poll_transmit(T0 + 30_000, ALL).is_some());
    // Over: removed by whichever tab or page holds it then (the one that stored it may
    // be gone), never while a newer pause it heard of lasts.
    let newer = format!("{} 0", T0 + 60_000);
    q.on_storage_change("klaviyo:AbC123:k:pause", Some(&newer));
    q.sync(T0 + 31_000);
    assert!(q.take_ops().is_empty(), "another tab's newer pause stays");
    next.sync(T0 + 30_000);
    assert_eq!(next.take_ops(), [remove("klaviyo:AbC123:k:pause")]);
}

#[test]
fn a_servers_wait_is_an_hour_at_most_and_a_stored_pause_further_ahead_is_dropped() {
    let mut q = queue();
    task(&mut q, "a", 1, ANON, T0);
    let t = q.poll_transmit(T0, ALL).unwrap();
    let days = waiting(429, 30 * 24 * 3600);
    q.on_outcome(t.id, days, T0, 0);
    q.sync(T0);
    let until = format!("{} 0", T0 + MAX_PAUSE_MS);
    assert_eq!(
        puts(&q.take_ops()),
        [("klaviyo:AbC123:k:pause", until.as_str())]
    );
    // Then one request asks again: the throttled call itself.
    assert!(q.poll_transmit(T0 + MAX_PAUSE_MS - 1, ALL).is_none());
    assert_eq!(
        uids(&q.poll_transmit(T0 + MAX_PAUSE_MS, ALL).unwrap()),
        ["a-0"]
    );
    // A value further ahead than any 429 stores (a clock far ahead, a bad write):
    // dropped at the first sync, and removed.
    let mut next = queue();
    next.load("klaviyo:AbC123:k:pause", "99999999999999 0");
    let ops = task(&mut next, "b", 1, ANON, T0);
    assert!(ops.contains(&remove("klaviyo:AbC123:k:pause")));
    assert!(next.poll_transmit(T0, ALL).is_some(), "sent at once");
}

#[test]
fn a_429_without_a_readable_retry_after_waits_ten_seconds() {
    let mut q = queue();
    task(&mut q, "a", 1, ANON, T0);
    let t = q.poll_transmit(T0, ALL).unwrap();
    q.on_outcome(t.id, status(429), T0, 0);
    assert!(q.poll_transmit(T0 + 9_999, ALL).is_none());
    assert!(q.poll_transmit(T0 + 10_000, ALL).is_some());
}

#[test]
fn a_permanent_4xx_removes_and_reports() {
    let mut q = queue();
    task(&mut q, "a", 1, ANON, T0);
    let t = q.poll_transmit(T0, ALL).unwrap();
    let detail =
        r#"{"errors":[{"id":"1","code":"invalid","title":"Invalid input.","detail":"x"}]}"#;
    q.on_outcome(t.id, refused(400, detail), T0, 0);
    assert!(q.is_empty());
    let r = q.take_reports();
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].kind, r[0].status, r[0].count),
        (ReportKind::Rejected, 400, 1)
    );
    assert_eq!(r[0].detail, detail);
    q.sync(T0);
    assert_eq!(q.take_ops(), vec![remove("klaviyo:AbC123:q:a-0")]);
}

#[test]
fn a_bulk_400_with_a_pointer_drops_only_the_named_event() {
    let mut q = queue();
    task(&mut q, "a", 10, ANON, T0);
    let t = q.poll_transmit(T0, ALL).unwrap();
    let detail = r#"{"errors":[{"id":"1","code":"invalid","title":"Invalid input.","detail":"bad","source":{"pointer":"/data/attributes/events/data/3/attributes/properties"}}]}"#;
    q.on_outcome(t.id, refused(400, detail), T0, 0);
    let r = q.take_reports();
    assert_eq!((r[0].kind, r[0].count), (ReportKind::Rejected, 1));
    q.sync(T0);
    let ops = q.take_ops();
    assert_eq!(lines(puts(&ops)[0].1), vec![0, 1, 2, 4, 5, 6, 7, 8, 9]);
    let again = q
        .poll_transmit(T0, ALL)
        .expect("the good ones are resent at once");
    assert_eq!(again.items, 9);
    assert!(!uids(&again).contains(&"a-3".to_string()));
}

#[test]
fn a_bulk_400_without_a_pointer_bisects_to_the_bad_event() {
    let mut q = queue();
    task(&mut q, "a", 16, ANON, T0);
    let mut requests = 0;
    let mut delivered = Vec::new();
    while let Some(t) = q.poll_transmit(T0, ALL) {
        requests += 1;
        let ids = uids(&t);
        if ids.contains(&"a-11".to_string()) {
            q.on_outcome(t.id, status(400), T0, 0);
        } else {
            delivered.extend(ids);
            q.on_outcome(t.id, ok(), T0, 0);
        }
    }
    assert_eq!(delivered.len(), 15);
    assert!(!delivered.contains(&"a-11".to_string()));
    assert!(q.is_empty());
    assert_eq!(
        report_count(&q.take_reports(), ReportKind::Rejected),
        1,
        "only the bad event"
    );
    assert!(requests <= 10, "bisection is logarithmic: {requests}");
}

#[test]
fn pointers_are_read_from_jsonapi_errors() {
    let body = r#"{"errors":[{"source":{"pointer":"/data/attributes/events/data/12/attributes/time"}},{"source":{"pointer":"/data/attributes/events/data/3"}},{"source":{"pointer":"/data/attributes/events/data/3/x"}},{"source":{"pointer":"/data/attributes/profile"}}]}"#;
    assert_eq!(event_pointers(body, 13), vec![12, 3]);
    assert_eq!(event_pointers(body, 12), vec![3]);
    assert!(event_pointers("", 13).is_empty());
}

#[test]
fn gives_up_after_the_attempt_limit_and_reports() {
    let mut q = with(Limits {
        max_attempts: 3,
        ..Limits::default()
    });
    task(&mut q, "a", 1, ANON, T0);
    let mut now = T0;
    for _ in 0..3 {
        let t = q.poll_transmit(now, ALL).unwrap();
        q.on_outcome(t.id, status(500), now, 0);
        now = q.poll_timeout().unwrap();
    }
    q.take_reports();
    assert!(q.poll_transmit(now, ALL).is_none());
    assert!(q.is_empty());
    let r = q.take_reports();
    assert_eq!((r[0].kind, r[0].count), (ReportKind::GaveUp, 1));
    q.sync(now);
    assert_eq!(q.take_ops(), vec![remove("klaviyo:AbC123:q:a-0")]);
}

#[test]
fn gives_up_on_calls_older_than_the_age_limit() {
    let mut q = with(Limits {
        max_age_ms: 1_000,
        ..Limits::default()
    });
    task(&mut q, "a", 1, ANON, T0);
    assert!(q.poll_transmit(T0 + 1_001, ALL).is_none());
    assert!(q.is_empty());
    assert_eq!(q.take_reports()[0].kind, ReportKind::GaveUp);
}

#[test]
fn the_bulk_endpoint_is_rate_limited_to_its_published_burst() {
    let mut q = queue();
    // Eleven profiles, two events each: eleven bulk requests.
    for p in 0..11 {
        push(
            &mut q,
            &format!("p{p}"),
            2,
            &format!(r#"{{"anonymous_id":"{p}"}}"#),
            T0,
        );
    }
    q.sync(T0);
    let mut sent = 0;
    while q.poll_transmit(T0, ALL).is_some() {
        sent += 1;
    }
    assert_eq!(sent, 10);
    assert_eq!(q.poll_timeout(), Some(T0 + 100));
    assert!(q.poll_transmit(T0 + 100, ALL).is_some());
}

#[test]
fn offline_sends_nothing_and_online_sends_at_once() {
    let mut q = queue();
    task(&mut q, "a", 1, ANON, T0);
    let t = q.poll_transmit(T0, ALL).unwrap();
    q.on_outcome(t.id, Outcome::Network, T0, 0);
    q.set_online(false);
    assert!(q.poll_transmit(T0 + 60_000, ALL).is_none());
    assert_eq!(q.poll_timeout(), None);
    q.set_online(true);
    assert!(
        q.poll_transmit(T0 + 10, ALL).is_some(),
        "the backoff waited for the network"
    );
}

#[test]
fn coming_back_online_ends_the_backoff_but_not_a_servers_retry_after() {
    let mut q = queue();
    task(&mut q, "a", 1, ANON, T0);
    let t = q.poll_transmit(T0, ALL).unwrap();
    let unavailable = waiting(503, 30);
    q.on_outcome(t.id, unavailable, T0, 0);
    q.set_online(false);
    q.set_online(true);
    assert!(
        q.poll_transmit(T0 + 1_000, ALL).is_none(),
        "Klaviyo asked for 30 s"
    );
    assert_eq!(q.poll_timeout(), Some(T0 + 30_000));
    assert!(q.poll_transmit(T0 + 30_000, ALL).is_some());
}

#[test]
fn superseded_profile_updates_are_dropped() {
    let mut q = queue();
    let body = |n: &str| {
        format!(
            r#"{{"data":{{"type":"profile","attributes":{{"first_name":"{n}","anonymous_id":"a-1"}}}}}}"#
        )
    };
    q.push_body("p1", Endpoint::Profiles, body("A"), T0);
    q.drop_superseded(Endpoint::Profiles, r#""anonymous_id":"a-1""#);
    q.push_body("p2", Endpoint::Profiles, body("B"), T0);
    q.sync(T0);
    assert_eq!(q.len(), 1);
    let t = q.poll_transmit(T0, ALL).unwrap();
    assert!(t.body.contains(r#""first_name":"B""#));
    // One in flight is not superseded: it has gone already.
    q.drop_superseded(Endpoint::Profiles, r#""anonymous_id":"a-1""#);
    assert_eq!(q.len(), 1);
}

// ------------------------------------------------------------ storage and memory bounds

#[test]
fn past_max_events_the_oldest_leave_storage_but_this_page_still_sends_them() {
    let mut q = with(Limits {
        max_events: 5,
        ..Limits::default()
    });
    let ops = task(&mut q, "a", 8, ANON, T0);
    let reports = q.take_reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        (reports[0].kind, reports[0].count),
        (ReportKind::Evicted, 3)
    );
    assert_eq!(ops.len(), 1);
    assert_eq!(
        lines(puts(&ops)[0].1),
        vec![3, 4, 5, 6, 7],
        "the newest five"
    );
    assert_eq!((q.len(), q.stored()), (8, 5));
    let mut disk = Disk::default();
    disk.apply(&ops);
    let reloaded = disk.reload();
    assert_eq!(reloaded.len(), 5, "a reload has only what was stored");
    let (sizes, _) = drain(&mut q, T0);
    assert_eq!(sizes, vec![8]);
    assert_eq!(q.delivered, 8);
    assert_eq!(q.take_ops(), vec![remove("klaviyo:AbC123:q:a-0")]);
}

#[test]
fn a_later_task_evicts_the_oldest_record_first() {
    let mut q = with(Limits {
        max_events: 3,
        ..Limits::default()
    });
    task(&mut q, "a", 2, ANON, T0);
    let ops = task(&mut q, "b", 2, ANON, T0 + 1);
    let rewritten = puts(&ops);
    assert_eq!(rewritten.len(), 2, "{ops:?}");
    assert_eq!(rewritten[0].0, "klaviyo:AbC123:q:a-0");
    assert_eq!(lines(rewritten[0].1), vec![1]);
    assert_eq!(rewritten[1].0, "klaviyo:AbC123:q:b-0");
    let ops = task(&mut q, "c", 1, ANON, T0 + 2);
    assert_eq!(ops[0], remove("klaviyo:AbC123:q:a-0"));
    assert_eq!(report_count(&q.take_reports(), ReportKind::Evicted), 2);
    assert_eq!((q.len(), q.stored()), (5, 3));
}

#[test]
fn max_bytes_bounds_what_is_stored() {
    let one = fields("a-0").len();
    let mut q = with(Limits {
        max_bytes: one * 3,
        ..Limits::default()
    });
    let ops = task(&mut q, "a", 6, ANON, T0);
    assert_eq!(q.stored(), 3);
    assert_eq!(lines(puts(&ops)[0].1), vec![3, 4, 5]);
    assert_eq!(report_count(&q.take_reports(), ReportKind::Evicted), 3);
    assert_eq!(drain(&mut q, T0).0, vec![6]);
}

#[test]
fn a_burst_of_10000_events_goes_in_ten_bulk_requests_and_1000_stay_stored() {
    let mut q = queue();
    let started = std::time::Instant::now();
    push(&mut q, "a", 10_000, ANON, T0);
    q.sync(T0);
    let pushed = started.elapsed();
    let ops = q.take_ops();
    assert_eq!(ops.len(), 1);
    assert_eq!(lines(puts(&ops)[0].1).len(), 1000);
    assert_eq!(q.stored(), 1000);
    let evicted = report_count(&q.take_reports(), ReportKind::Evicted);
    assert_eq!(
        evicted,
        10_000 - q.stored(),
        "every call that left storage is reported"
    );
    assert_eq!(q.len(), 10_000);
    let (sizes, _) = drain(&mut q, T0);
    let total = started.elapsed();
    assert_eq!(sizes, vec![1000; 10]);
    assert_eq!(q.delivered, 10_000);
    assert_eq!(q.take_ops(), vec![remove("klaviyo:AbC123:q:a-0")]);
    eprintln!("10k events: push + sync {pushed:?}, all delivered {total:?}");
    // Far above the measured figure (a few ms even in debug): only a quadratic
    // push loop would come near it.
    assert!(pushed.as_millis() < 1_000, "{pushed:?}");
}

#[test]
fn past_the_memory_bound_the_oldest_are_dropped_but_never_the_newest_or_one_in_flight() {
    let one = fields("a-0").len();
    let mut q = with(Limits {
        max_memory_bytes: one * 5,
        ..Limits::default()
    });
    task(&mut q, "a", 1, ANON, T0);
    let in_flight = q.poll_transmit(T0, ALL).unwrap();
    task(&mut q, "b", 8, ANON, T0);
    let dropped = report_count(&q.take_reports(), ReportKind::Dropped);
    assert!(dropped > 0);
    assert_eq!(q.len(), 9 - dropped);
    q.on_outcome(in_flight.id, ok(), T0, 0);
    assert_eq!(q.delivered, 1, "the call in flight was kept");
    let t = q.poll_transmit(T0, ALL).unwrap();
    let sent = uids(&t);
    assert_eq!(
        sent.last().map(String::as_str),
        Some("b-7"),
        "the newest was kept"
    );
    assert!(!sent.contains(&"b-0".to_string()), "the oldest went");

    // Even a bound smaller than one call keeps the call just pushed.
    let mut q = with(Limits {
        max_memory_bytes: 1,
        ..Limits::default()
    });
    for n in 0..3 {
        task(&mut q, &format!("c{n}"), 1, ANON, T0);
        assert_eq!(q.len(), 1);
    }
    assert_eq!(report_count(&q.take_reports(), ReportKind::Dropped), 2);
    assert_eq!(uids(&q.poll_transmit(T0, ALL).unwrap()), ["c2-0"]);
}

// ------------------------------------------------------------ keepalive

#[test]
fn keepalive_sends_only_what_fits_the_budget() {
    let mut q = queue();
    task(&mut q, "a", 400, ANON, T0);
    let t = q.poll_transmit(T0, KEEPALIVE_BUDGET).unwrap();
    assert!(t.body.len() <= KEEPALIVE_BUDGET);
    assert!(t.items > 1 && t.items < 400);
    let mut tiny = queue();
    task(&mut tiny, "a", 1, ANON, T0);
    assert!(tiny.poll_transmit(T0, 50).is_none());
}

#[test]
fn a_keepalive_batch_of_events_with_value_and_currency_fits_its_budget() {
    let mut q = queue();
    for i in 0..1000 {
        let uid = jt::quote(&format!("u-{i}"));
        let f = record::event_fields(&Event {
            time_s: (T0 / 1000) as i64,
            unique_id: &uid,
            value: "9.5",
            currency: "USD",
            metric: r#""M""#,
            properties: "{}",
        });
        q.push_event("a", ANON, f, T0);
    }
    q.sync(T0);
    for budget in [KEEPALIVE_BUDGET, 20_000, 5_000] {
        let t = q.poll_transmit(T0, budget).expect("a batch that fits");
        assert!(t.body.len() <= budget && t.items > 1, "{budget}");
    }
}

#[test]
fn on_hide_marks_the_stored_calls_still_in_flight() {
    let mut q = with(Limits {
        batch_events: 2,
        ..Limits::default()
    });
    task(&mut q, "a", 3, ANON, T0);
    let t = q.poll_transmit(T0, KEEPALIVE_BUDGET).unwrap();
    assert_eq!(t.items, 2);
    q.on_hide(T0 + 5);
    let ops = q.take_ops();
    // `<until> <idx,...>`, until = now + KEEPALIVE_WAIT_MS.
    assert_eq!(ops, vec![put("klaviyo:AbC123:k:a-0", "1795669349005 0,1")]);
    assert_eq!(
        record::read_mark(puts(&ops)[0].1),
        Some((T0 + 5 + KEEPALIVE_WAIT_MS, "0,1"))
    );
    // Nothing in flight, nothing to mark.
    let mut idle = queue();
    task(&mut idle, "a", 3, ANON, T0);
    idle.on_hide(T0);
    assert!(idle.take_ops().is_empty());
    // Calls in flight that are not stored are not marked: no next page has them.
    let mut unstored = queue();
    task(&mut unstored, "a", 3, ANON, T0);
    unstored.on_storage_failed("klaviyo:AbC123:q:a-0");
    unstored.poll_transmit(T0, KEEPALIVE_BUDGET).unwrap();
    unstored.on_hide(T0);
    assert!(unstored.take_ops().is_empty());
}

/// A page that sent `a-0` and `a-1` of a three-call record with keepalive and went away.
fn hidden_page() -> Disk {
    let mut q = with(Limits {
        batch_events: 2,
        ..Limits::default()
    });
    let mut disk = Disk::default();
    disk.apply(&task(&mut q, "a", 3, ANON, T0));
    q.poll_transmit(T0, KEEPALIVE_BUDGET).unwrap();
    q.on_hide(T0);
    disk.apply(&q.take_ops());
    disk
}

#[test]
fn the_next_page_holds_marked_calls_back_until_the_mark_expires() {
    let until = T0 + KEEPALIVE_WAIT_MS;
    let disk = hidden_page();
    assert_eq!(disk.0.len(), 2);
    // Storage order puts the mark first; a record that arrives first works as well.
    let mut reversed = queue();
    for (k, v) in disk.0.iter().rev() {
        reversed.load(k, v);
    }
    for mut q in [disk.reload(), reversed] {
        let t = q.poll_transmit(T0 + 1, ALL).unwrap();
        assert_eq!(uids(&t), ["a-2"], "the unmarked call goes at once");
        q.on_outcome(t.id, ok(), T0 + 1, 0);
        assert!(q.poll_transmit(until - 1, ALL).is_none());
        assert_eq!(q.poll_timeout(), Some(until));
        let t = q.poll_transmit(until, ALL).unwrap();
        assert_eq!(uids(&t), ["a-0", "a-1"]);
    }
}

#[test]
fn removing_a_record_also_removes_its_mark() {
    let until = T0 + KEEPALIVE_WAIT_MS;
    let mut q = hidden_page().reload();
    let (_, end) = drain(&mut q, T0 + 1);
    assert!(end >= until);
    let ops = q.take_ops();
    assert_eq!(
        ops,
        vec![
            remove("klaviyo:AbC123:q:a-0"),
            remove("klaviyo:AbC123:k:a-0")
        ]
    );

    // The hidden page itself, if it lives to read the answer, cleans up too.
    let mut q = with(Limits {
        batch_events: 2,
        ..Limits::default()
    });
    task(&mut q, "a", 3, ANON, T0);
    let t = q.poll_transmit(T0, KEEPALIVE_BUDGET).unwrap();
    q.on_hide(T0);
    q.take_ops();
    q.on_outcome(t.id, ok(), T0 + 1, 0);
    let t = q.poll_transmit(T0 + 1, ALL).unwrap();
    q.on_outcome(t.id, ok(), T0 + 1, 0);
    q.sync(T0 + 1);
    assert_eq!(
        q.take_ops(),
        vec![
            remove("klaviyo:AbC123:q:a-0"),
            remove("klaviyo:AbC123:k:a-0")
        ]
    );
}

#[test]
fn a_mark_for_an_unknown_record_expires_and_its_key_is_removed() {
    let mut q = queue();
    let mut mark = String::new();
    record::mark(T0 + 100, &[0], &mut mark);
    q.load("klaviyo:AbC123:k:gone", &mark);
    q.sync(T0 + 99);
    assert!(q.take_ops().is_empty());
    q.sync(T0 + 100);
    assert_eq!(q.take_ops(), vec![remove("klaviyo:AbC123:k:gone")]);
    q.sync(T0 + 200);
    assert!(q.take_ops().is_empty(), "removed once");
}

#[test]
fn a_mark_of_a_live_record_stays_until_the_record_goes() {
    let disk = hidden_page();
    let mut q = queue();
    for (k, v) in &disk.0 {
        q.load(k, v);
    }
    q.sync(T0 + KEEPALIVE_WAIT_MS + 1);
    assert!(q.take_ops().is_empty(), "the record still refers to it");
}

// ------------------------------------------------------------ tabs

#[test]
fn a_tab_that_is_not_the_sender_queues_but_never_sends_stored_calls() {
    let mut follower = queue();
    follower.set_sender(false);
    assert!(!follower.is_sender());
    let ops = task(&mut follower, "f", 2, ANON, T0);
    assert!(follower.poll_transmit(T0, ALL).is_none());
    assert_eq!(follower.poll_timeout(), None);
    // The sender tab sees the follower's record through storage events.
    let mut sender = queue();
    mirror(&ops, &mut sender);
    assert_eq!(sender.len(), 2);
    let (sizes, _) = drain(&mut sender, T0);
    assert_eq!(sizes, vec![2]);
    let ops = sender.take_ops();
    assert_eq!(ops, vec![remove("klaviyo:AbC123:q:f-0")]);
    mirror(&ops, &mut follower);
    assert!(follower.is_empty(), "pending() agrees across tabs");
    follower.sync(T0);
    assert!(follower.take_ops().is_empty(), "mirroring writes nothing");
}

#[test]
fn a_follower_tab_still_sends_what_only_it_holds() {
    let mut q = queue();
    q.set_sender(false);
    task(&mut q, "a", 1, ANON, T0);
    push(&mut q, "b", 1, ANON, T0);
    q.sync(T0);
    q.on_storage_failed("klaviyo:AbC123:q:b-0");
    let t = q.poll_transmit(T0, ALL).expect("the unstored event");
    assert_eq!(uids(&t), ["b-0"]);
    assert!(q.poll_transmit(T0, ALL).is_none());
    assert!(q.poll_timeout().is_none());
}

#[test]
fn another_tabs_rewrite_forgets_the_calls_it_no_longer_lists_but_not_ones_in_flight() {
    let mut writer = queue();
    writer.set_sender(false);
    let mut mine = with(Limits {
        batch_events: 2,
        ..Limits::default()
    });
    mirror(&task(&mut writer, "a", 4, ANON, T0), &mut mine);
    let t = mine.poll_transmit(T0, ALL).unwrap();
    assert_eq!(uids(&t), ["a-0", "a-1"]);
    // Another tab rewrites the record with a-3 only.
    let mut rewritten = String::new();
    record::header(T0, &mut rewritten);
    record::push_profile(ANON, &mut rewritten);
    record::push_event(3, &fields("a-3"), &mut rewritten);
    mine.on_storage_change("klaviyo:AbC123:q:a-0", Some(&rewritten));
    assert_eq!(mine.len(), 3, "a-2 is forgotten; a-0 and a-1 are in flight");
    mine.sync(T0);
    assert!(
        mine.take_ops().is_empty(),
        "another tab's doing: nothing to rewrite"
    );
    mine.on_outcome(t.id, Outcome::Network, T0, 0);
    let t = mine.poll_transmit(T0 + 1_000, ALL).unwrap();
    assert_eq!(uids(&t), ["a-0", "a-1"]);
    mine.on_outcome(t.id, ok(), T0 + 1_000, 0);
    assert_eq!(uids(&mine.poll_transmit(T0 + 1_000, ALL).unwrap()), ["a-3"]);
}

#[test]
fn a_record_removed_by_another_tab_is_forgotten_except_calls_in_flight() {
    let mut mine = queue();
    let a = task(&mut mine, "a", 2, ANON, T0);
    let b = task(&mut mine, "b", 2, ANON, T0 + 1);
    task(&mut mine, "m", 1, ANN, T0 + 2);
    mine.on_storage_failed("klaviyo:AbC123:q:m-0");
    let in_flight = mine.poll_transmit(T0 + 2, ALL).unwrap();
    assert_eq!(uids(&in_flight), ["a-0", "a-1", "b-0", "b-1"]);
    mine.on_outcome(in_flight.id, Outcome::Network, T0 + 2, 0);
    mine.on_storage_change(puts(&a)[0].0, None);
    assert_eq!(mine.len(), 3);
    let t = mine.poll_transmit(T0 + 10_000, ALL).unwrap();
    assert_eq!(uids(&t), ["b-0", "b-1"]);
    mine.on_storage_change(puts(&b)[0].0, None);
    assert_eq!(mine.len(), 3, "in flight: kept");
    mine.on_outcome(t.id, ok(), T0 + 10_000, 0);
    mine.sync(T0 + 10_000);
    assert!(mine.take_ops().is_empty(), "the record is gone already");
    assert_eq!(
        uids(&mine.poll_transmit(T0 + 10_000, ALL).unwrap()),
        ["m-0"],
        "memory only: kept"
    );
}

#[test]
fn resync_forgets_what_another_tab_delivered_and_adds_what_it_queued() {
    let mut q = queue();
    q.set_sender(false);
    task(&mut q, "a", 1, ANON, T0);
    let b = task(&mut q, "b", 1, ANON, T0 + 1);
    let mut other = queue();
    let c = task(&mut other, "c", 1, ANON, T0 + 2);
    // Storage now holds b (a was delivered elsewhere) and c, plus a foreign key.
    let (b, c) = (puts(&b), puts(&c));
    let stored = [
        (b[0].0, b[0].1),
        (c[0].0, c[0].1),
        ("klaviyo:AbC123:id", "{}"),
    ];
    q.set_sender(true);
    q.resync(Stored(&Stored::pack(&stored)));
    assert_eq!(q.len(), 2);
    assert_eq!(uids(&q.poll_transmit(T0 + 3, ALL).unwrap()), ["b-0", "c-0"]);
}

#[test]
fn a_cleared_storage_delivered_nothing_every_call_held_is_written_again_and_sent() {
    // The sender holds its own calls and another tab's; a script (a logout) clears all.
    let mut follower = queue();
    follower.set_sender(false);
    let theirs = task(&mut follower, "f", 2, ANON, T0);
    let mut sender = queue();
    mirror(&theirs, &mut sender);
    let mine = task(&mut sender, "s", 1, ANN, T0 + 1);
    let mut disk = Disk::default();
    disk.apply(&theirs);
    disk.apply(&mine);
    let before = disk.0.clone();
    let t = sender.poll_transmit(T0 + 1, ALL).expect("a request");
    disk.0.clear();
    for (q, held) in [(&mut follower, 2), (&mut sender, 3)] {
        q.on_storage_cleared();
        q.resync(Stored(""));
        assert_eq!(q.len(), held, "nothing forgotten");
        q.sync(T0 + 2);
        let ops = q.take_ops();
        // Only the sender writes: it alone removes delivered calls, so a follower's copy
        // written now could bring back one it has just delivered.
        assert_eq!(ops.is_empty(), held == 2, "the follower writes nothing");
        disk.apply(&ops);
    }
    assert_eq!(disk.0, before, "each record written again, as it was");
    // The answer to the request in flight still counts; the rest is sent, once.
    sender.on_outcome(t.id, ok(), T0 + 2, 0);
    let (sizes, _) = drain(&mut sender, T0 + 2);
    assert_eq!(sizes.iter().sum::<usize>() + t.items, 3);
    disk.apply(&sender.take_ops());
    assert!(disk.0.is_empty(), "then removed as delivered");
}

#[test]
fn after_a_clear_the_tab_that_takes_over_writes_the_records_again() {
    // The sender runs the logout's clear itself (no event for it) and goes; or no tab
    // sends at that moment (all pending). The follower keeps its copies.
    let mut follower = queue();
    follower.set_sender(false);
    let mut disk = Disk::default();
    disk.apply(&task(&mut follower, "f", 2, ANON, T0));
    disk.0.clear();
    follower.on_storage_cleared();
    follower.resync(Stored(""));
    follower.sync(T0 + 1);
    assert!(follower.take_ops().is_empty(), "not the sender's to write");
    assert_eq!(follower.len(), 2, "kept");
    // The lock comes to it: the calls are on disk again, then sent.
    follower.resync(Stored(""));
    follower.set_sender(true);
    follower.sync(T0 + 2);
    disk.apply(&follower.take_ops());
    assert_eq!(disk.reload().len(), 2);
    assert_eq!(
        uids(&follower.poll_transmit(T0 + 2, ALL).unwrap()),
        ["f-0", "f-1"]
    );
}

// ------------------------------------------------------------ broken storage

#[test]
fn a_failed_storage_write_keeps_the_calls_in_memory_and_warns_once() {
    let mut q = queue();
    task(&mut q, "a", 2, ANON, T0);
    q.on_storage_failed("klaviyo:AbC123:q:a-0");
    assert_eq!(q.stored(), 0);
    task(&mut q, "b", 1, ANON, T0);
    q.on_storage_failed("klaviyo:AbC123:k:b-0");
    let r = q.take_reports();
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].kind, r[0].count), (ReportKind::Storage, 1));
    assert_eq!(q.len(), 3);
    let t = q.poll_transmit(T0, ALL).unwrap();
    assert_eq!(t.items, 3);
    // resync (becoming sender) must not forget calls that never reached storage.
    q.on_outcome(t.id, Outcome::Network, T0, 0);
    q.resync(Stored(""));
    assert_eq!(q.len(), 3);
    q.sync(T0);
    assert!(q.take_ops().is_empty(), "nothing stored, nothing to remove");
}

#[test]
fn after_a_failed_write_new_tasks_skip_storage_until_a_delivery_frees_space() {
    let mut q = queue();
    task(&mut q, "a", 1, ANON, T0);
    q.on_storage_failed("klaviyo:AbC123:q:a-0");
    assert!(task(&mut q, "b", 1, ANON, T0).is_empty(), "no doomed write");
    assert_eq!(q.stored(), 0);
    let t = q.poll_transmit(T0, ALL).unwrap();
    q.on_outcome(t.id, ok(), T0, 0);
    let ops = task(&mut q, "c", 1, ANON, T0);
    assert_eq!(puts(&ops).len(), 1, "space was freed: try storage again");
    assert_eq!(q.stored(), 1);
}

#[test]
fn a_delivery_of_stored_calls_lets_storage_be_tried_again() {
    let mut q = queue();
    task(&mut q, "a", 1, ANON, T0);
    task(&mut q, "b", 1, ANON, T0 + 1);
    q.on_storage_failed("klaviyo:AbC123:q:b-0");
    assert!(task(&mut q, "c", 1, ANON, T0 + 2).is_empty());
    let t = q.poll_transmit(T0 + 2, ALL).unwrap();
    assert_eq!(t.items, 3);
    q.on_outcome(t.id, ok(), T0 + 2, 0);
    let ops = task(&mut q, "d", 1, ANON, T0 + 3);
    assert_eq!(ops[0], remove("klaviyo:AbC123:q:a-0"));
    assert_eq!(puts(&ops[1..])[0].0, "klaviyo:AbC123:q:d-0");
}

#[test]
fn report_kinds_have_the_names_on_error_sees() {
    let names: Vec<&str> = ReportKind::ALL
        .iter()
        .map(|k| {
            assert!(k.message().starts_with("klaviyo: "));
            k.name()
        })
        .collect();
    assert_eq!(
        names,
        ["rejected", "retry", "evicted", "dropped", "gave_up", "storage", "invalid", "consent"]
    );
}

#[test]
fn only_the_sender_evicts_and_then_it_sends_what_it_evicted() {
    let limits = Limits {
        max_events: 3,
        ..Limits::default()
    };
    let mut follower = with(limits.clone());
    follower.set_sender(false);
    let mut sender = with(limits);
    let ops = task(&mut follower, "f", 5, ANON, T0);
    assert_eq!(puts(&ops).len(), 1, "a follower writes its record whole");
    assert!(follower.take_reports().is_empty(), "and evicts nothing");
    mirror(&ops, &mut sender);
    sender.sync(T0);
    let evicting = sender.take_ops();
    assert_eq!(
        lines(puts(&evicting)[0].1),
        [2, 3, 4],
        "the sender trims it"
    );
    assert_eq!(sender.take_reports()[0].kind, ReportKind::Evicted);
    mirror(&evicting, &mut follower);
    assert_eq!(follower.len(), 3, "the follower forgets what left storage");
    // The sender holds the two it evicted and sends all five.
    let t = sender.poll_transmit(T0, ALL).unwrap();
    assert_eq!(uids(&t), ["f-0", "f-1", "f-2", "f-3", "f-4"]);
    assert!(follower.poll_transmit(T0, ALL).is_none());
}

#[test]
fn a_follower_forgetting_stored_calls_never_rewrites_storage() {
    let mut follower = queue();
    follower.set_sender(false);
    let mut sender = queue();
    let ops = task(&mut sender, "s", 2, ANON, T0);
    mirror(&ops, &mut follower);
    // Past the age limit: the sender's to give up, not the follower's.
    let later = T0 + Limits::default().max_age_ms + 1;
    assert!(follower.poll_transmit(later, ALL).is_none());
    assert!(follower.take_reports().is_empty());
    follower.sync(later);
    assert!(follower.take_ops().is_empty());
    assert_eq!(follower.len(), 2);
}

#[test]
fn a_failed_rewrite_removes_the_older_version() {
    // Deliver part of a record, so it is rewritten, and let that write fail.
    let mut q = with(Limits {
        batch_events: 1,
        ..Limits::default()
    });
    task(&mut q, "a", 2, ANON, T0);
    let t = q.poll_transmit(T0, ALL).unwrap();
    q.on_outcome(t.id, ok(), T0, 0);
    q.sync(T0);
    let rewrite = q.take_ops();
    assert_eq!(
        puts(&rewrite).len(),
        1,
        "a-0 delivered: the record is rewritten"
    );
    q.on_storage_failed("klaviyo:AbC123:q:a-0");
    assert_eq!(
        q.take_ops(),
        vec![remove("klaviyo:AbC123:q:a-0")],
        "the older version (listing the delivered call) must go"
    );
    assert_eq!(q.len(), 1, "a-1 stays in memory and is still sent");
    assert_eq!(uids(&q.poll_transmit(T0, ALL).unwrap()), ["a-1"]);
}

#[test]
fn going_away_ignores_the_flush_delay_but_not_backoff() {
    let mut q = with(Limits {
        flush_delay_ms: 60_000,
        ..Limits::default()
    });
    task(&mut q, "a", 2, ANON, T0);
    assert!(
        q.poll_transmit(T0, ALL).is_none(),
        "held by the flush delay"
    );
    assert_eq!(q.poll_timeout(), Some(T0 + 60_000));
    let t = q.poll_keepalive(T0, KEEPALIVE_BUDGET).unwrap();
    assert_eq!(uids(&t), ["a-0", "a-1"]);
    q.on_outcome(t.id, status(503), T0, 0);
    assert!(
        q.poll_keepalive(T0 + 10, KEEPALIVE_BUDGET).is_none(),
        "a retry waits for its backoff even when the page goes away"
    );
}

#[test]
fn going_away_passes_over_a_call_too_large_for_the_keepalive_allowance() {
    let mut q = queue();
    let big = jt::quote(&"x".repeat(KEEPALIVE_BUDGET));
    q.push_body(
        "big",
        Endpoint::Profiles,
        format!(r#"{{"data":{big}}}"#),
        T0,
    );
    q.sync(T0);
    task(&mut q, "a", 1, ANON, T0 + 1);
    let t = q.poll_keepalive(T0 + 1, KEEPALIVE_BUDGET).unwrap();
    assert_eq!(uids(&t), ["a-0"]);
    assert!(q.poll_keepalive(T0 + 1, KEEPALIVE_BUDGET).is_none());
    assert_eq!(
        q.poll_transmit(T0 + 1, ALL).unwrap().endpoint,
        Endpoint::Profiles
    );
}

#[test]
fn an_empty_record_is_removed() {
    let mut q = queue();
    q.load("klaviyo:AbC123:q:empty", "2 5");
    assert_eq!(q.take_ops(), vec![remove("klaviyo:AbC123:q:empty")]);
}

#[test]
fn calls_still_in_their_flush_delay_join_a_request_that_goes() {
    let mut q = with(Limits {
        flush_delay_ms: 300,
        ..Limits::default()
    });
    task(&mut q, "a", 2, ANON, T0);
    task(&mut q, "b", 2, ANON, T0 + 100);
    assert!(q.poll_transmit(T0 + 299, ALL).is_none());
    let t = q.poll_transmit(T0 + 300, ALL).unwrap();
    assert_eq!(uids(&t), ["a-0", "a-1", "b-0", "b-1"]);
}

// ------------------------------------------------------------ profile requests in order

/// A profile request of visitor a-1 whose `first_name` is `name`.
fn profile_body(name: &str) -> String {
    format!(
        r#"{{"data":{{"type":"profile","attributes":{{"first_name":"{name}","anonymous_id":"a-1"}}}}}}"#
    )
}

#[test]
fn a_visitors_profile_requests_go_in_order_one_at_a_time() {
    // The first is out when the page identifies again: the newer waits for it, and when
    // its answer is lost it goes again before the newer (before, the newer went at once
    // and the older, retried, was accepted last: Klaviyo's profile ended on "Ann").
    let mut q = queue();
    q.push_body("p-1", Endpoint::Profiles, profile_body("Ann"), T0);
    q.sync(T0);
    let first = q.poll_transmit(T0, ALL).unwrap();
    q.push_body("p-2", Endpoint::Profiles, profile_body("Anne"), T0 + 5);
    q.sync(T0 + 5);
    assert!(
        q.poll_transmit(T0 + 5, ALL).is_none(),
        "not while the first is out"
    );
    q.on_outcome(first.id, Outcome::Network, T0 + 10, 0);
    assert!(
        q.poll_transmit(T0 + 10, ALL).is_none(),
        "nor before it, in its backoff"
    );
    // And the page is not woken for it meanwhile (it was, every 10 ms).
    assert!(q.poll_timeout().is_some_and(|t| t > T0 + 10));
    // Another visitor's (after a `reset()`) does not wait for that one.
    let other = profile_body("Bo").replace("a-1", "a-2");
    q.push_body("p-3", Endpoint::Profiles, other, T0 + 10);
    q.sync(T0 + 10);
    let bo = q.poll_transmit(T0 + 10, ALL).unwrap();
    assert!(bo.body.contains("a-2"));
    q.on_outcome(bo.id, ok(), T0 + 10, 0);
    let again = q.poll_transmit(T0 + 10_000, ALL).unwrap();
    assert!(again.body.contains("\"Ann\""));
    q.on_outcome(again.id, ok(), T0 + 10_000, 0);
    let last = q.poll_transmit(T0 + 10_000, ALL).unwrap();
    assert!(last.body.contains("\"Anne\""));
}

#[test]
fn records_are_dated_apart_and_after_those_read_but_never_far_ahead() {
    let mut disk = Disk::default();
    let mut q = queue();
    // Two tasks in one millisecond: read back in the order they were made.
    q.push_body("p-1", Endpoint::Profiles, profile_body("Ann"), T0);
    q.sync(T0);
    q.push_body("p-2", Endpoint::Profiles, profile_body("Anne"), T0);
    q.sync(T0);
    disk.apply(&q.take_ops());
    let dates: Vec<u64> = disk
        .0
        .values()
        .filter_map(|v| record::read(v).map(|r| r.0))
        .collect();
    assert_eq!(dates.len(), 2);
    assert_ne!(dates[0], dates[1]);
    // A record of another tab dated a day ahead (a clock set back): this page's next is
    // dated a second ahead at most, and a flush delay holds it no longer than that.
    let mut p = with(Limits {
        flush_delay_ms: 50,
        ..Limits::default()
    });
    let mut ahead = String::new();
    record::header(T0 + 86_400_000, &mut ahead);
    record::push_body(0, Endpoint::Profiles, &profile_body("Bob"), &mut ahead);
    p.load(&format!("{Q}other-1"), &ahead);
    p.set_sender(true);
    task(&mut p, "e", 1, ANON, T0);
    assert!(
        p.poll_transmit(T0 + 1_100, ALL).is_some(),
        "sent within the second"
    );
}
