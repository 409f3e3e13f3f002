//! Every queue rule with a fake clock: persistence, batching, retry and backoff,
//! Retry-After, bulk isolation, eviction, give-up, rate limits, online/offline, tabs,
//! keepalive, broken storage.

use super::*;
use crate::core::json::{self, Json};

const T0: u64 = 1_795_669_339_000;

fn queue() -> Queue {
    Queue::new("klaviyo:AbC123:q:".into(), Limits::default())
}

fn event(uid: &str, profile: &str) -> Payload {
    let mut ev = String::from(r#"{"properties":{},"time":"2026-11-26T05:02:19Z","unique_id":"#);
    json::write_str(uid, &mut ev);
    ev.push_str(r#","metric":{"data":{"type":"metric","attributes":{"name":"M"}}}}"#);
    Payload::Event {
        unique_id: uid.into(),
        profile: profile.into(),
        event: ev,
    }
}

fn push_events(q: &mut Queue, n: usize, profile: &str, now: u64) {
    for i in 0..n {
        q.push(format!("id-{i}"), event(&format!("u-{i}"), profile), now);
    }
}

fn status(s: u16) -> Outcome {
    Outcome::Status {
        status: s,
        retry_after_s: None,
        body: String::new(),
    }
}

fn retry_after(s: u16, secs: u32) -> Outcome {
    Outcome::Status {
        status: s,
        retry_after_s: Some(secs),
        body: String::new(),
    }
}

fn uids(t: &Transmit) -> Vec<String> {
    let v = json::parse(&t.body).unwrap();
    let attrs = v.get("data").unwrap().get("attributes").unwrap();
    match attrs.get("events") {
        Some(e) => match e.get("data") {
            Some(Json::Arr(items)) => items
                .iter()
                .map(|i| {
                    let a = i.get("attributes").unwrap();
                    a.get("unique_id").unwrap().as_str().unwrap().to_string()
                })
                .collect(),
            _ => vec![],
        },
        None => vec![attrs
            .get("unique_id")
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()],
    }
}

#[test]
fn each_push_writes_exactly_one_record_before_any_send() {
    let mut q = queue();
    push_events(&mut q, 100, "{}", T0);
    let ops = q.take_ops();
    assert_eq!(ops.len(), 100);
    assert!(ops.iter().all(
        |op| matches!(op, StorageOp::Put { key, .. } if key.starts_with("klaviyo:AbC123:q:id-"))
    ));
    q.push("one-more".into(), event("u-x", "{}"), T0);
    assert_eq!(q.take_ops().len(), 1, "enqueue must not rewrite the queue");
}

#[test]
fn a_record_is_removed_only_after_klaviyo_answered() {
    let mut q = queue();
    push_events(&mut q, 1, "{}", T0);
    q.take_ops();
    let t = q.poll_transmit(T0).unwrap();
    assert!(q.take_ops().is_empty(), "in flight is still on disk");
    q.on_outcome(t.id, status(503), T0, 0);
    assert!(q.take_ops().is_empty());
    let t = q.poll_transmit(T0 + 10_000).unwrap();
    q.on_outcome(t.id, status(202), T0 + 10_000, 0);
    assert_eq!(
        q.take_ops(),
        vec![StorageOp::Remove {
            key: "klaviyo:AbC123:q:id-0".into()
        }]
    );
    assert!(q.is_empty());
}

#[test]
fn restore_rebuilds_in_time_order_and_removes_garbage() {
    let mut a = queue();
    a.push("b".into(), event("u-b", "{}"), T0 + 5);
    a.push("a".into(), event("u-a", "{}"), T0);
    let mut records: Vec<(String, String)> = a
        .take_ops()
        .into_iter()
        .map(|op| match op {
            StorageOp::Put { key, value } => (key, value),
            StorageOp::Remove { .. } => unreachable!(),
        })
        .collect();
    records.push(("klaviyo:AbC123:q:junk".into(), "not a record".into()));
    records.push(("klaviyo:AbC123:q:half".into(), "1\nE\n12\nu\n{}".into()));
    records.push(("klaviyo:Other1:q:x".into(), "foreign".into()));
    let mut q = queue();
    q.restore(records);
    assert_eq!(q.len(), 2);
    let ops = q.take_ops();
    assert_eq!(
        ops,
        vec![
            StorageOp::Remove {
                key: "klaviyo:AbC123:q:junk".into()
            },
            StorageOp::Remove {
                key: "klaviyo:AbC123:q:half".into()
            },
        ]
    );
    let t = q.poll_transmit(T0 + 10).unwrap();
    assert_eq!(uids(&t), vec!["u-a", "u-b"], "oldest first");
}

#[test]
fn events_of_one_profile_go_together_and_other_profiles_separately() {
    let mut q = queue();
    push_events(&mut q, 3, r#"{"email":"a@b.co"}"#, T0);
    q.push("x".into(), event("u-x", r#"{"email":"c@d.co"}"#), T0);
    let t1 = q.poll_transmit(T0).unwrap();
    assert_eq!((t1.endpoint, t1.items), (Endpoint::BulkEvents, 3));
    let t2 = q.poll_transmit(T0).unwrap();
    assert_eq!((t2.endpoint, t2.items), (Endpoint::Events, 1));
    assert!(q.poll_transmit(T0).is_none());
}

#[test]
fn a_thousand_events_of_one_profile_drain_in_one_request() {
    let mut q = queue();
    push_events(&mut q, 1000, r#"{"anonymous_id":"a-1"}"#, T0);
    let t = q.poll_transmit(T0).unwrap();
    assert_eq!(t.items, 1000);
    assert!(t.body.len() < 512 * 1024);
    q.on_outcome(t.id, status(202), T0, 0);
    assert!(q.is_empty());
}

#[test]
fn batches_stop_at_1000_events_and_at_the_byte_cap() {
    let mut q = Queue::new(
        "p:".into(),
        Limits {
            max_events: 5000,
            max_bytes: 50_000_000,
            ..Limits::default()
        },
    );
    push_events(&mut q, 2500, "{}", T0);
    let sizes: Vec<usize> = std::iter::from_fn(|| q.poll_transmit(T0))
        .map(|t| t.items)
        .collect();
    assert_eq!(sizes, vec![1000, 1000, 500]);

    let mut q = Queue::new(
        "p:".into(),
        Limits {
            batch_bytes: 2_000,
            ..Limits::default()
        },
    );
    push_events(&mut q, 30, "{}", T0);
    let t = q.poll_transmit(T0).unwrap();
    assert!(t.body.len() <= 2_000, "{}", t.body.len());
    assert!(t.items > 1 && t.items < 30);
}

#[test]
fn network_errors_back_off_exponentially() {
    let mut q = queue();
    push_events(&mut q, 1, "{}", T0);
    let mut now = T0;
    for expected in [1_000, 2_000, 4_000, 8_000] {
        let t = q.poll_transmit(now).unwrap();
        q.on_outcome(t.id, Outcome::Network, now, 0);
        assert!(q.poll_transmit(now + expected - 1).is_none());
        assert_eq!(q.poll_timeout(), Some(now + expected));
        now += expected;
    }
    assert!(q.poll_transmit(now).is_some());
}

#[test]
fn five_503s_then_202_delivers_once() {
    let mut q = queue();
    push_events(&mut q, 1, "{}", T0);
    let mut now = T0;
    let mut sends = 0;
    loop {
        let Some(t) = q.poll_transmit(now) else {
            now = q.poll_timeout().unwrap();
            continue;
        };
        sends += 1;
        let answer = if sends <= 5 { status(503) } else { status(202) };
        q.on_outcome(t.id, answer, now, 0);
        if q.is_empty() {
            break;
        }
    }
    assert_eq!(sends, 6);
    assert_eq!(q.delivered, 1);
}

#[test]
fn a_429_pauses_every_request_until_retry_after() {
    let mut q = queue();
    q.push("a".into(), event("u-a", r#"{"x":1}"#), T0);
    q.push("b".into(), event("u-b", r#"{"x":2}"#), T0);
    let t = q.poll_transmit(T0).unwrap();
    q.on_outcome(t.id, retry_after(429, 3), T0, u16::MAX);
    assert!(
        q.poll_transmit(T0 + 2_999).is_none(),
        "not even the other profile's event"
    );
    assert!(q.poll_timeout().unwrap() >= T0 + 3_000);
    let first = q
        .poll_transmit(T0 + 3_000)
        .or_else(|| q.poll_transmit(q.poll_timeout().unwrap()));
    assert!(first.is_some());
}

#[test]
fn a_429_without_a_readable_retry_after_waits_ten_seconds() {
    let mut q = queue();
    push_events(&mut q, 1, "{}", T0);
    let t = q.poll_transmit(T0).unwrap();
    q.on_outcome(t.id, status(429), T0, 0);
    assert!(q.poll_transmit(T0 + 9_999).is_none());
    assert!(q.poll_transmit(T0 + 10_000).is_some());
}

#[test]
fn a_permanent_4xx_removes_and_reports() {
    let mut q = queue();
    push_events(&mut q, 1, "{}", T0);
    let t = q.poll_transmit(T0).unwrap();
    let body = r#"{"errors":[{"id":"1","code":"invalid","title":"Invalid input.","detail":"x"}]}"#;
    q.on_outcome(
        t.id,
        Outcome::Status {
            status: 400,
            retry_after_s: None,
            body: body.into(),
        },
        T0,
        0,
    );
    assert!(q.is_empty());
    let r = q.take_reports();
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].kind, r[0].status, r[0].count),
        (ReportKind::Rejected, 400, 1)
    );
    assert_eq!(r[0].detail, body);
}

#[test]
fn a_bulk_400_with_a_pointer_drops_only_the_named_event() {
    let mut q = queue();
    push_events(&mut q, 10, "{}", T0);
    let t = q.poll_transmit(T0).unwrap();
    let body = r#"{"errors":[{"id":"1","code":"invalid","title":"Invalid input.","detail":"bad","source":{"pointer":"/data/attributes/events/data/3/attributes/properties"}}]}"#;
    q.on_outcome(
        t.id,
        Outcome::Status {
            status: 400,
            retry_after_s: None,
            body: body.into(),
        },
        T0,
        0,
    );
    let r = q.take_reports();
    assert_eq!((r[0].kind, r[0].count), (ReportKind::Rejected, 1));
    let again = q
        .poll_transmit(T0)
        .expect("the good ones are resent at once");
    assert_eq!(again.items, 9);
    assert!(!uids(&again).contains(&"u-3".to_string()));
}

#[test]
fn a_bulk_400_without_a_pointer_bisects_to_the_bad_event() {
    let mut q = queue();
    push_events(&mut q, 16, "{}", T0);
    let mut requests = 0;
    let mut delivered = Vec::new();
    while let Some(t) = q.poll_transmit(T0) {
        requests += 1;
        let ids = uids(&t);
        if ids.contains(&"u-11".to_string()) {
            q.on_outcome(t.id, status(400), T0, 0);
        } else {
            delivered.extend(ids);
            q.on_outcome(t.id, status(202), T0, 0);
        }
    }
    assert_eq!(delivered.len(), 15);
    assert!(!delivered.contains(&"u-11".to_string()));
    assert!(q.is_empty());
    let rejected: usize = q
        .take_reports()
        .iter()
        .filter(|r| r.kind == ReportKind::Rejected)
        .map(|r| r.count)
        .sum();
    assert_eq!(rejected, 1, "only the bad event is reported");
    assert!(requests <= 10, "bisection is logarithmic: {requests}");
}

#[test]
fn the_oldest_are_evicted_beyond_max_events_and_reported() {
    let mut q = Queue::new(
        "p:".into(),
        Limits {
            max_events: 3,
            ..Limits::default()
        },
    );
    push_events(&mut q, 5, "{}", T0);
    assert_eq!(q.len(), 3);
    let reports = q.take_reports();
    assert_eq!(reports.iter().map(|r| r.count).sum::<usize>(), 2);
    assert!(reports.iter().all(|r| r.kind == ReportKind::Evicted));
    let removed: Vec<StorageOp> = q
        .take_ops()
        .into_iter()
        .filter(|op| matches!(op, StorageOp::Remove { .. }))
        .collect();
    assert_eq!(
        removed,
        vec![
            StorageOp::Remove {
                key: "p:id-0".into()
            },
            StorageOp::Remove {
                key: "p:id-1".into()
            }
        ]
    );
}

#[test]
fn max_bytes_bounds_the_queue_and_in_flight_requests_are_not_evicted() {
    let one = event("u-x0", "{}").bytes();
    let mut q = Queue::new(
        "p:".into(),
        Limits {
            max_bytes: one * 3,
            ..Limits::default()
        },
    );
    q.push("x0".into(), event("u-x0", "{}"), T0);
    let t = q.poll_transmit(T0).unwrap();
    for i in 1..6 {
        q.push(format!("x{i}"), event(&format!("u-x{i}"), "{}"), T0 + 1);
    }
    assert_eq!(q.len(), 3);
    assert!(q.bytes <= one * 3);
    assert!(
        q.items.iter().any(|i| i.id == "x0"),
        "the request in flight is kept"
    );
    q.on_outcome(t.id, status(202), T0 + 2, 0);
    assert_eq!(q.delivered, 1);
}

#[test]
fn gives_up_after_the_attempt_limit_and_reports() {
    let mut q = Queue::new(
        "p:".into(),
        Limits {
            max_attempts: 3,
            ..Limits::default()
        },
    );
    push_events(&mut q, 1, "{}", T0);
    let mut now = T0;
    for _ in 0..3 {
        let t = q.poll_transmit(now).unwrap();
        q.on_outcome(t.id, status(500), now, 0);
        now = q.poll_timeout().unwrap();
    }
    q.take_reports();
    assert!(q.poll_transmit(now).is_none());
    assert!(q.is_empty());
    assert_eq!(q.take_reports()[0].kind, ReportKind::GaveUp);
}

#[test]
fn gives_up_on_requests_older_than_the_age_limit() {
    let mut q = Queue::new(
        "p:".into(),
        Limits {
            max_age_ms: 1_000,
            ..Limits::default()
        },
    );
    push_events(&mut q, 1, "{}", T0);
    assert!(q.poll_transmit(T0 + 1_001).is_none());
    assert!(q.is_empty());
}

#[test]
fn the_bulk_endpoint_is_rate_limited_to_its_published_burst() {
    let mut q = Queue::new(
        "p:".into(),
        Limits {
            max_events: 100,
            ..Limits::default()
        },
    );
    // Eleven profiles, two events each: eleven bulk requests.
    for p in 0..11 {
        for i in 0..2 {
            q.push(
                format!("{p}-{i}"),
                event(&format!("{p}-{i}"), &format!(r#"{{"p":{p}}}"#)),
                T0,
            );
        }
    }
    let mut sent = 0;
    while q.poll_transmit(T0).is_some() {
        sent += 1;
    }
    assert_eq!(sent, 10);
    assert_eq!(q.poll_timeout(), Some(T0 + 100));
    assert!(q.poll_transmit(T0 + 100).is_some());
}

#[test]
fn offline_sends_nothing_and_online_sends_at_once() {
    let mut q = queue();
    push_events(&mut q, 1, "{}", T0);
    let t = q.poll_transmit(T0).unwrap();
    q.on_outcome(t.id, Outcome::Network, T0, 0);
    q.set_online(false);
    assert!(q.poll_transmit(T0 + 60_000).is_none());
    assert_eq!(q.poll_timeout(), None);
    q.set_online(true);
    assert!(
        q.poll_transmit(T0 + 10).is_some(),
        "the backoff waited for the network"
    );
}

#[test]
fn a_tab_that_is_not_the_sender_queues_but_never_sends() {
    let mut follower = queue();
    follower.set_sender(false);
    push_events(&mut follower, 2, "{}", T0);
    assert!(follower.poll_transmit(T0).is_none());
    assert_eq!(follower.poll_timeout(), None);
    // The sender tab sees the follower's records through storage events.
    let mut sender = queue();
    for op in follower.take_ops() {
        if let StorageOp::Put { key, value } = op {
            sender.on_storage_change(&key, Some(&value));
        }
    }
    assert_eq!(sender.len(), 2);
    let t = sender.poll_transmit(T0).unwrap();
    sender.on_outcome(t.id, status(202), T0, 0);
    for op in sender.take_ops() {
        if let StorageOp::Remove { key } = op {
            follower.on_storage_change(&key, None);
        }
    }
    assert!(follower.is_empty(), "pending() agrees across tabs");
    assert!(follower.take_ops().is_empty(), "mirroring writes nothing");
}

#[test]
fn resync_forgets_what_another_tab_delivered_and_adds_what_it_queued() {
    let mut q = queue();
    push_events(&mut q, 2, "{}", T0);
    let ops = q.take_ops();
    let StorageOp::Put { key, value } = &ops[1] else {
        panic!()
    };
    let mut other = queue();
    other.push("new".into(), event("u-new", "{}"), T0 + 1);
    let StorageOp::Put { key: k2, value: v2 } = &other.take_ops()[0] else {
        panic!()
    };
    q.resync(vec![(key.clone(), value.clone()), (k2.clone(), v2.clone())]);
    assert_eq!(q.len(), 2);
    let t = q.poll_transmit(T0 + 2).unwrap();
    assert_eq!(uids(&t), vec!["u-1", "u-new"]);
}

#[test]
fn keepalive_sends_only_what_fits_the_budget() {
    let mut q = queue();
    push_events(&mut q, 400, "{}", T0);
    let t = q.poll_keepalive(T0, KEEPALIVE_BUDGET).unwrap();
    assert!(t.body.len() <= KEEPALIVE_BUDGET);
    assert!(t.items > 1);
    let mut tiny = queue();
    push_events(&mut tiny, 1, "{}", T0);
    assert!(tiny.poll_keepalive(T0, 50).is_none());
}

#[test]
fn a_failed_storage_write_keeps_the_request_in_memory_and_warns_once() {
    let mut q = queue();
    push_events(&mut q, 2, "{}", T0);
    q.on_storage_failed("klaviyo:AbC123:q:id-0");
    q.on_storage_failed("klaviyo:AbC123:q:id-1");
    let r = q.take_reports();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, ReportKind::Storage);
    assert_eq!(q.len(), 2);
    let t = q.poll_transmit(T0).unwrap();
    assert_eq!(t.items, 2);
    // resync (becoming sender) must not forget requests that never reached storage.
    q.on_outcome(t.id, Outcome::Network, T0, 0);
    q.resync(Vec::new());
    assert_eq!(q.len(), 2);
}

#[test]
fn superseded_profile_updates_are_dropped() {
    let mut q = queue();
    let body = |n: &str| Payload::Body {
        endpoint: Endpoint::Profiles,
        body: format!(
            r#"{{"data":{{"type":"profile","attributes":{{"first_name":"{n}","anonymous_id":"a-1"}}}}}}"#
        ),
    };
    q.push("p1".into(), body("A"), T0);
    q.drop_superseded(Endpoint::Profiles, r#""anonymous_id":"a-1""#);
    q.push("p2".into(), body("B"), T0);
    assert_eq!(q.len(), 1);
    let t = q.poll_transmit(T0).unwrap();
    assert!(t.body.contains(r#""first_name":"B""#));
}

#[test]
fn pointers_are_read_from_jsonapi_errors() {
    let body = r#"{"errors":[{"source":{"pointer":"/data/attributes/events/data/12/attributes/time"}},{"source":{"pointer":"/data/attributes/events/data/3"}},{"source":{"pointer":"/data/attributes/profile"}}]}"#;
    assert_eq!(event_pointers(body), vec![12, 3]);
    assert!(event_pointers("").is_empty());
}

#[test]
fn a_follower_tab_still_sends_what_only_it_holds() {
    let mut q = queue();
    q.set_sender(false);
    push_events(&mut q, 2, "{}", T0);
    q.on_storage_failed("klaviyo:AbC123:q:id-1");
    let t = q.poll_transmit(T0).expect("the unpersisted event");
    assert_eq!(uids(&t), vec!["u-1"]);
    assert!(q.poll_transmit(T0).is_none());
}

#[test]
fn after_a_failed_write_new_requests_skip_storage_until_a_delivery_frees_space() {
    let mut q = queue();
    push_events(&mut q, 1, "{}", T0);
    q.take_ops();
    q.on_storage_failed("klaviyo:AbC123:q:id-0");
    q.push("b".into(), event("u-b", "{}"), T0);
    assert!(q.take_ops().is_empty(), "no doomed write");
    let t = q.poll_transmit(T0).unwrap();
    q.on_outcome(t.id, status(202), T0, 0);
    q.take_ops();
    q.push("c".into(), event("u-c", "{}"), T0);
    assert_eq!(q.take_ops().len(), 1, "space was freed: try storage again");
}
