//! What a queued call becomes (the messages) and what the consumer does after each
//! attempt, natively, with a fixed clock and fixed jitter. Calls go through the router
//! first, as in the worker, so the messages are those of real decisions.

use std::ops::Range;

use super::*;
use crate::edge::auth;
use crate::edge::config::EdgeConfig;
use crate::edge::config::{ConfigError, Settings};
use crate::edge::ratelimit::Peer;
use crate::edge::router::Action;
use crate::edge::router::{decide, Incoming};
use crate::edge::stable_time::stable_direct;
use crate::edge::stable_time::stable_event;
use crate::edge::upstream::Upstream;

const NOW_MS: u64 = 1_795_669_339_000;
const NOW_S: i64 = 1_795_669_339;
const PRIVATE: &str = "pk_TEST_9f8e7d6c5b4a39281706";
const SIGNING: &str = "edge-signing-5e4d3c2b1a";
const WEBHOOK: &str = "whsec-1a2b3c4d5e6f7a8b";
const API: &str = "http://127.0.0.1:8787";

fn config() -> Result<EdgeConfig, ConfigError> {
    let s: Settings = serde_json::from_value(serde_json::json!({
        "KLAVIYO_PRIVATE_KEY": PRIVATE,
        "KLAVIYO_PUBLIC_KEY": "AbC123",
        "ALLOWED_ORIGINS": "https://shop.example",
        "KLAVIYO_API_BASE": API,
        "EDGE_SIGNING_SECRET": SIGNING,
        "KLAVIYO_WEBHOOK_SECRET": WEBHOOK,
        "WEBHOOK_FORWARD_URL": "https://backend.example/hooks",
    }))
    .expect("settings");
    EdgeConfig::from_settings(&s)
}

/// A signed backend call through the router, then planned as the worker would.
fn planned(path: &str, body: &str) -> Option<Plan> {
    let cfg = config();
    let sig = auth::sign_backend(
        auth::Signed {
            method: "POST",
            path,
            body: body.as_bytes(),
        },
        SIGNING,
        NOW_S,
    );
    let headers = vec![("x-klaviyo-edge-signature".to_string(), sig)];
    let d = decide(
        &Incoming {
            method: "POST",
            path,
            query: "",
            headers: &headers,
            peer: Peer::Cloudflare,
            body: body.as_bytes(),
            too_large: false,
            bot_score: None,
            now_ms: NOW_MS,
        },
        &cfg,
    );
    // A refusal has no tag: it is answered, never queued.
    let Some(tag) = d.gate.replay_key else {
        assert!(matches!(d.action, Action::Reply(_)), "{:?}", d.action);
        return None;
    };
    plan(
        &d.action,
        &tag,
        body.as_bytes(),
        cfg.as_ref().expect("config"),
        NOW_MS,
    )
}

fn parts_of(plan: Option<Plan>) -> Vec<Part> {
    match plan {
        Some(Plan::Enqueue(m)) => m,
        other => panic!("expected messages, got {other:?}"),
    }
}

fn messages_of(plan: Option<Plan>) -> Vec<String> {
    parts_of(plan).into_iter().map(|p| p.text).collect()
}

fn call_of(text: &str) -> (String, serde_json::Value) {
    match read(text).expect("a readable message").work {
        Work::Call { path, body } => (path, serde_json::from_str(body.get()).expect("json")),
        other => panic!("expected a call, got {other:?}"),
    }
}

fn no_secret(text: &str) {
    for s in [PRIVATE, SIGNING, WEBHOOK] {
        assert!(!text.contains(s), "a secret in a message");
    }
}

const ORDER: &str = r#"{"order_id":"o-1001","value":19.98,"profile":{"email":"ann@example.com"},
  "items":[{"product_id":"p-1","name":"Pooh","quantity":1,"price":9.99},
           {"product_id":"p-2","name":"Tigger","quantity":1,"price":9.99}]}"#;

fn event(attrs: &str) -> String {
    format!(
        r#"{{"data":{{"type":"event","attributes":{{"properties":{{}},{attrs}"metric":{{"data":{{"type":"metric","attributes":{{"name":"Viewed"}}}}}},"profile":{{"data":{{"type":"profile","attributes":{{"email":"a@b.co"}}}}}}}}}}}}"#
    )
}

// ------------------------------------------------------------------ what is queued

#[test]
fn an_order_is_one_message_holding_its_bulk_job_with_the_order_id_as_unique_ids() {
    let m = messages_of(planned("/api/orders", ORDER));
    assert_eq!(m.len(), 1);
    no_secret(&m[0]);
    let msg = read(&m[0]).expect("readable");
    assert_eq!((msg.v, msg.part, msg.parts), (VERSION, 0, 1));
    assert!(
        msg.id.starts_with("dlv_") && msg.id.len() == 28,
        "{}",
        msg.id
    );
    let (path, job) = call_of(&m[0]);
    assert_eq!(path, "/api/event-bulk-create-jobs");
    let events =
        &job["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"]["events"]["data"];
    let ids: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["attributes"]["unique_id"].as_str())
        .collect();
    assert_eq!(ids, ["o-1001", "o-1001-0", "o-1001-1"]);
}

#[test]
fn one_call_always_makes_the_same_messages_so_a_second_enqueue_is_the_same_delivery() {
    assert_eq!(
        messages_of(planned("/api/orders", ORDER)),
        messages_of(planned("/api/orders", ORDER))
    );
}

#[test]
fn an_event_without_unique_id_or_time_is_given_the_time_it_was_accepted() {
    let m = messages_of(planned("/api/events", &event("")));
    let (path, body) = call_of(&m[0]);
    assert_eq!(path, "/api/events");
    assert_eq!(body["data"]["attributes"]["time"], "2026-11-26T05:02:19Z");
    // Everything else as sent.
    assert_eq!(
        body["data"]["attributes"]["metric"]["data"]["attributes"]["name"],
        "Viewed"
    );
}

#[test]
fn an_event_with_a_time_travels_byte_for_byte() {
    for attrs in [
        r#""time":"2026-01-02T03:04:05Z","#,
        r#""unique_id":"u-7","time":"2026-01-02T03:04:05Z","#,
    ] {
        let body = event(attrs);
        let m = messages_of(planned("/api/events", &body));
        match read(&m[0]).expect("readable").work {
            Work::Call { body: b, .. } => assert_eq!(b.get(), body),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn an_event_with_a_unique_id_and_no_time_keeps_the_time_it_was_accepted() {
    // Its unique_id keeps a redelivery from counting twice, but Klaviyo stamps an event
    // without a time when it arrives: one delivered after an hour-long outage would
    // carry the hour it was delivered.
    let body = event(r#""unique_id":"u-7","#);
    let m = messages_of(planned("/api/events", &body));
    let (_, queued) = call_of(&m[0]);
    assert_eq!(queued["data"]["attributes"]["time"], "2026-11-26T05:02:19Z");
    assert_eq!(queued["data"]["attributes"]["unique_id"], "u-7");
    // Sent directly (no queue), the same bytes as queued.
    let Work::Call { body: raw, .. } = read(&m[0]).expect("readable").work else {
        panic!("a call")
    };
    assert_eq!(
        stable_direct("/api/events", &body, NOW_MS).as_deref(),
        Some(raw.get())
    );
}

#[test]
fn a_bulk_entrys_backfill_goes_with_each_of_its_parts_and_its_events_keep_their_time() {
    // `backfill` (recorded without triggering flows) is a member of an entry: the plan
    // read entries without it, so such a job travelled whole, its events unstamped, and
    // a redelivery made them again, at the time of delivery.
    let job = bulk(2, 6, 40_000).replacen(
        r#""attributes":{"profile""#,
        r#""attributes":{"backfill":true,"profile""#,
        1,
    );
    let m = messages_of(planned("/api/event-bulk-create-jobs", &job));
    assert!(m.len() > 2, "the job is divided: {} parts", m.len());
    let mut seen = Vec::new();
    for text in &m {
        let (_, part) = call_of(text);
        for entry in part["data"]["attributes"]["events-bulk-create"]["data"]
            .as_array()
            .expect("entries")
        {
            let email = &entry["attributes"]["profile"]["data"]["attributes"]["email"];
            let backfill = &entry["attributes"]["backfill"];
            assert_eq!(
                *backfill,
                if email == "p0@b.co" {
                    serde_json::json!(true)
                } else {
                    serde_json::Value::Null
                },
                "{email}"
            );
            for e in entry["attributes"]["events"]["data"]
                .as_array()
                .expect("events")
            {
                assert_eq!(e["attributes"]["time"], "2026-11-26T05:02:19Z");
            }
        }
        seen.extend(events_of(&part));
    }
    let whole: serde_json::Value = serde_json::from_str(&job).expect("json");
    assert_eq!(seen, events_of(&whole), "every event once, in order");
}

#[test]
fn a_bulk_job_the_plan_cannot_divide_travels_whole_with_its_events_stable() {
    // A member the plan does not know (Klaviyo's API ignores it): the job goes as one
    // message, its events still given the time the worker accepted them.
    let job = bulk(1, 2, 0).replacen(
        r#"{"data":{"type":"event-bulk-create-job","#,
        r#"{"data":{"id":"j-1","type":"event-bulk-create-job","#,
        1,
    );
    let m = messages_of(planned("/api/event-bulk-create-jobs", &job));
    assert_eq!(m.len(), 1);
    let (_, whole) = call_of(&m[0]);
    assert_eq!(whole["data"]["id"], "j-1");
    let events = whole["data"]["attributes"]["events-bulk-create"]["data"][0]["attributes"]
        ["events"]["data"]
        .as_array()
        .expect("events");
    assert_eq!(events.len(), 2);
    for e in events {
        assert_eq!(e["attributes"]["time"], "2026-11-26T05:02:19Z");
    }
}

#[test]
fn a_null_unique_id_does_not_count_as_one() {
    let with_time = stable_event(r#"{"type":"event","attributes":{"unique_id":null}}"#, NOW_S);
    assert_eq!(
        with_time,
        r#"{"type":"event","attributes":{"time":"2026-11-26T05:02:19Z","unique_id":null}}"#
    );
    let empty = stable_event(r#"{"type":"event","attributes":{ }}"#, NOW_S);
    assert_eq!(
        empty,
        r#"{"type":"event","attributes":{"time":"2026-11-26T05:02:19Z" }}"#
    );
}

#[test]
fn a_null_time_is_replaced_never_written_beside() {
    // A second `time` member would be read as the last one: null, and the redelivery a
    // new event to Klaviyo again.
    let e = stable_event(
        r#"{"type":"event","attributes":{"time":null,"properties":{"a":1},"unique_id":null}}"#,
        NOW_S,
    );
    assert_eq!(
        e,
        r#"{"type":"event","attributes":{"time":"2026-11-26T05:02:19Z","properties":{"a":1},"unique_id":null}}"#
    );
    let m = messages_of(planned("/api/events", &event(r#""time":null,"#)));
    let (_, body) = call_of(&m[0]);
    assert_eq!(body["data"]["attributes"]["time"], "2026-11-26T05:02:19Z");
    let Work::Call { body: raw, .. } = read(&m[0]).expect("readable").work else {
        panic!("a call")
    };
    assert_eq!(raw.get().matches("\"time\"").count(), 1, "{}", raw.get());
}

#[test]
fn a_direct_call_gives_its_events_the_time_it_was_accepted_so_a_retry_is_the_same_event() {
    // Without a queue (or for a body it does not take) the worker forwards the call
    // itself, and retries it after a timeout or a 5xx: the same time as a queued one's.
    let one = stable_direct("/api/events", &event(""), NOW_MS).expect("changed");
    let v: serde_json::Value = serde_json::from_str(&one).expect("json");
    assert_eq!(v["data"]["attributes"]["time"], "2026-11-26T05:02:19Z");
    assert_eq!(
        stable_direct(
            "/api/events",
            &event(r#""time":"2026-01-02T03:04:05Z","#),
            NOW_MS
        ),
        None
    );
    // One event of the job has a time: the three others are given the accepted one.
    let job = bulk(2, 2, 0).replace(
        r#""unique_id":"e-1-0","#,
        r#""time":"2026-01-02T03:04:05Z","#,
    );
    let stable = stable_direct("/api/event-bulk-create-jobs", &job, NOW_MS).expect("changed");
    let v: serde_json::Value = serde_json::from_str(&stable).expect("json");
    let entries = v["data"]["attributes"]["events-bulk-create"]["data"]
        .as_array()
        .expect("entries");
    let times: Vec<&serde_json::Value> = entries
        .iter()
        .flat_map(|e| {
            e["attributes"]["events"]["data"]
                .as_array()
                .expect("events")
        })
        .map(|e| &e["attributes"]["time"])
        .collect();
    assert_eq!(times.len(), 4);
    assert_eq!(
        times
            .iter()
            .filter(|t| **t == "2026-11-26T05:02:19Z")
            .count(),
        3,
        "{stable}"
    );
    assert_eq!(
        stable.len(),
        job.len() + 3 * r#""time":"2026-11-26T05:02:19Z","#.len()
    );
    let timed = bulk(1, 2, 0).replace(
        r#""unique_id":"#,
        r#""time":"2026-01-02T03:04:05Z","unique_id":"#,
    );
    assert_eq!(
        stable_direct("/api/event-bulk-create-jobs", &timed, NOW_MS),
        None
    );
    assert_eq!(
        stable_direct("/api/profile-import", &event(""), NOW_MS),
        None
    );
}

/// A bulk job of `profiles` profiles with `per` events each, each event `pad` bytes of
/// properties, with unique ids `e-<profile>-<n>`.
fn bulk(profiles: usize, per: usize, pad: usize) -> String {
    let filler = "x".repeat(pad);
    let entries: Vec<String> = (0..profiles)
        .map(|p| {
            let events: Vec<String> = (0..per)
                .map(|n| {
                    format!(
                        r#"{{"type":"event","attributes":{{"properties":{{"pad":"{filler}"}},"unique_id":"e-{p}-{n}","metric":{{"data":{{"type":"metric","attributes":{{"name":"Viewed"}}}}}}}}}}"#
                    )
                })
                .collect();
            format!(
                r#"{{"type":"event-bulk-create","attributes":{{"profile":{{"data":{{"type":"profile","attributes":{{"email":"p{p}@b.co"}}}}}},"events":{{"data":[{}]}}}}}}"#,
                events.join(",")
            )
        })
        .collect();
    format!(
        r#"{{"data":{{"type":"event-bulk-create-job","attributes":{{"events-bulk-create":{{"data":[{}]}}}}}}}}"#,
        entries.join(",")
    )
}

/// `(profile email, unique_id)` of every event of a job, in order.
fn events_of(job: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in job["data"]["attributes"]["events-bulk-create"]["data"]
        .as_array()
        .expect("entries")
    {
        let email = entry["attributes"]["profile"]["data"]["attributes"]["email"]
            .as_str()
            .expect("email")
            .to_string();
        for e in entry["attributes"]["events"]["data"]
            .as_array()
            .expect("events")
        {
            out.push((
                email.clone(),
                e["attributes"]["unique_id"].as_str().expect("id").into(),
            ));
        }
    }
    out
}

#[test]
fn a_bulk_job_too_large_for_one_message_is_divided_into_jobs_that_each_fit_in_order() {
    let body = bulk(8, 30, 800); // about 200 KB
    assert!(body.len() > MAX_MESSAGE_BYTES);
    let m = messages_of(planned("/api/event-bulk-create-jobs", &body));
    assert!(m.len() >= 2, "{} parts", m.len());
    let whole: serde_json::Value = serde_json::from_str(&body).expect("json");
    let mut got = Vec::new();
    for (n, text) in m.iter().enumerate() {
        assert!(
            text.len() <= MAX_MESSAGE_BYTES,
            "part {n}: {} bytes",
            text.len()
        );
        let msg = read(text).expect("readable");
        assert_eq!((msg.part, msg.parts), (n as u32, m.len() as u32));
        let (_, job) = call_of(text);
        got.extend(events_of(&job));
    }
    assert_eq!(
        got,
        events_of(&whole),
        "every event once, with its profile, in order"
    );
}

#[test]
fn a_bulk_job_that_fits_is_one_message() {
    let body = bulk(2, 3, 10);
    let m = messages_of(planned("/api/event-bulk-create-jobs", &body));
    assert_eq!(m.len(), 1);
    let (_, job) = call_of(&m[0]);
    assert_eq!(
        events_of(&job),
        events_of(&serde_json::from_str(&body).expect("json"))
    );
}

#[test]
fn one_event_too_large_for_a_message_goes_direct() {
    let body = bulk(1, 1, MAX_MESSAGE_BYTES);
    assert!(matches!(
        plan_call("dlv_x", "/api/event-bulk-create-jobs", &body, NOW_MS),
        Plan::Direct
    ));
    let big = format!(
        r#"{{"data":{{"type":"profile","attributes":{{"first_name":"{}"}}}}}}"#,
        "x".repeat(MAX_MESSAGE_BYTES)
    );
    assert!(matches!(
        plan_call("dlv_x", "/api/profile-import", &big, NOW_MS),
        Plan::Direct
    ));
}

type ListWork = (String, Vec<Option<String>>, Vec<(usize, Box<RawValue>)>);

/// A list message made in place of `msg` (a dead letter, or one that carries it on): no
/// secret, the same delivery and part, and its list, ids and imports.
fn list_in_place_of(text: &str, msg: &Message) -> ListWork {
    no_secret(text);
    let out = read(text).expect("a message this consumer reads");
    assert_eq!(
        (out.id.as_str(), out.part, out.parts),
        (msg.id.as_str(), msg.part, msg.parts)
    );
    let Work::List {
        list_id,
        ids,
        imports,
    } = out.work
    else {
        panic!("a list message")
    };
    (list_id, ids, imports)
}

#[test]
fn a_list_messages_refused_members_make_a_message_of_their_own() {
    // Klaviyo refused two members' profile-imports (a phone number it does not take):
    // the others are added, and these two alone go to the dead-letter queue, as a list
    // message that can be sent again by hand once mended.
    let body = r#"{"profiles":[{"id":"01KEPT"},{"email":"a@b.co"},{"phone_number":"+15005550006"},{"email":"c@d.co"}]}"#;
    let m = messages_of(planned("/api/lists/Xy12Ab/profiles", body));
    let msg = read(&m[0]).expect("readable");
    assert_eq!(refused_members(&msg, &[]), None, "nothing left out");
    let letter = refused_members(&msg, &[2, 3]).expect("a message");
    let (list_id, ids, imports) = list_in_place_of(&letter, &msg);
    assert_eq!(list_id, "Xy12Ab");
    assert_eq!(ids, vec![None, None]);
    let bodies: Vec<&str> = imports.iter().map(|(_, b)| b.get()).collect();
    assert_eq!(
        imports.iter().map(|(at, _)| *at).collect::<Vec<_>>(),
        [0, 1]
    );
    assert!(bodies[0].contains("+15005550006") && bodies[1].contains("c@d.co"));
}

#[test]
fn a_list_message_stopped_partway_carries_on_with_the_ids_it_found() {
    // Entry 0 has its id; 1 was imported, 2 refused (left for the next attempt, which
    // refuses it again and dead-letters it), then a 429 before 3.
    let body = r#"{"profiles":[{"id":"01KEPT"},{"email":"a@b.co"},{"phone_number":"+15005550006"},{"email":"c@d.co"}]}"#;
    let m = messages_of(planned("/api/lists/Xy12Ab/profiles", body));
    let msg = read(&m[0]).expect("readable");
    let before = [Some("01KEPT".to_string()), None, None, None];
    assert_eq!(
        list_carried_on(&msg, &before),
        None,
        "nothing found: retried as it is"
    );
    assert_eq!(
        list_carried_on(&msg, &before[..2]),
        None,
        "not this message's ids"
    );
    let found = [Some("01KEPT".into()), Some("01FOUND".into()), None, None];
    let next = list_carried_on(&msg, &found).expect("a message");
    let (list_id, ids, imports) = list_in_place_of(&next, &msg);
    assert_eq!(list_id, "Xy12Ab");
    assert_eq!(ids, found.to_vec());
    assert_eq!(
        imports.iter().map(|(at, _)| *at).collect::<Vec<_>>(),
        [2, 3]
    );
    assert!(imports[0].1.get().contains("+15005550006") && imports[1].1.get().contains("c@d.co"));
    let call = read(
        &messages_of(planned(
            "/api/profile-import",
            r#"{"data":{"type":"profile","attributes":{"email":"a@b.co"}}}"#,
        ))[0],
    )
    .expect("readable");
    assert_eq!(list_carried_on(&call, &found), None, "no list");
}

#[test]
fn list_members_are_divided_into_messages_each_with_its_own_imports() {
    let profiles: Vec<String> = (0..1000)
        .map(|n| {
            if n % 4 == 0 {
                format!(r#"{{"id":"01PROFILE{n:05}"}}"#)
            } else {
                format!(
                    r#"{{"email":"member{n}@{}.{}.example.com"}}"#,
                    "m".repeat(60),
                    "n".repeat(60)
                )
            }
        })
        .collect();
    let body = format!(r#"{{"profiles":[{}]}}"#, profiles.join(","));
    let m = messages_of(planned("/api/lists/Xy12Ab/profiles", &body));
    assert!(m.len() >= 2, "{} parts", m.len());
    let mut ids = Vec::new();
    let mut imported = 0;
    for text in &m {
        assert!(text.len() <= MAX_MESSAGE_BYTES);
        no_secret(text);
        match read(text).expect("readable").work {
            Work::List {
                list_id,
                ids: part,
                imports,
            } => {
                assert_eq!(list_id, "Xy12Ab");
                for (at, body) in &imports {
                    assert_eq!(part[*at], None, "an import fills an empty place");
                    assert!(body.get().contains("profile"));
                }
                imported += imports.len();
                ids.extend(part);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ids.len(), 1000);
    assert_eq!(imported, 750);
    assert_eq!(ids.iter().flatten().count(), 250);
    assert_eq!(ids[0].as_deref(), Some("01PROFILE00000"));
}

#[test]
fn a_small_list_call_is_one_message() {
    let body = r#"{"profiles":[{"id":"01ABC"},{"email":"ann@example.com"}]}"#;
    let m = messages_of(planned("/api/lists/Xy12Ab/profiles", body));
    assert_eq!(m.len(), 1);
    match read(&m[0]).expect("readable").work {
        Work::List { ids, imports, .. } => {
            assert_eq!(ids, [Some("01ABC".to_string()), None]);
            assert_eq!(imports.len(), 1);
            assert_eq!(imports[0].0, 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_webhook_forward_carries_the_body_as_klaviyo_sent_it_and_no_signature() {
    let body =
        r#"{"data":[{"topic":"event:klaviyo.sent_sms"}],"meta":{"klaviyo_webhook_id":"wh_1"}}"#;
    let m = messages_of(Some(plan_forward("dlv_1", body)));
    no_secret(&m[0]);
    assert!(!m[0].contains("signature"));
    match read(&m[0]).expect("readable").work {
        Work::Forward { body: b } => assert_eq!(b.get(), body),
        other => panic!("{other:?}"),
    }
}

/// A Klaviyo system webhook of `items` events, each with about `pad` bytes of payload.
fn webhook_of(items: usize, pad: usize) -> String {
    let data: Vec<serde_json::Value> = (0..items)
        .map(|n| {
            serde_json::json!({
                "external_id": format!("ev-{n}"),
                "payload": { "n": n, "pad": "x".repeat(pad) },
                "topic": "event:klaviyo.sent_sms",
            })
        })
        .collect();
    serde_json::json!({
        "data": data,
        "meta": { "klaviyo_webhook_id": "wh_big", "first_sent_at": "2026-01-01T00:00:00Z" },
    })
    .to_string()
}

/// The forward bodies of a plan's messages, in order.
fn forward_bodies(m: &[String]) -> Vec<serde_json::Value> {
    m.iter()
        .map(|t| match read(t).expect("readable").work {
            Work::Forward { body } => serde_json::from_str(body.get()).expect("json"),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_webhook_too_large_for_a_message_is_divided_by_its_events_each_once_in_order() {
    let body = webhook_of(300, 1_000);
    assert!(body.len() > 300_000, "{}", body.len());
    let plan = plan_forward("dlv_big", &body);
    let Plan::Enqueue(parts) = &plan else {
        panic!("a large webhook must be queued, in parts: {plan:?}");
    };
    assert!(parts.len() >= 3, "{} parts", parts.len());
    let m: Vec<String> = parts.iter().map(|p| p.text.clone()).collect();
    let whole: serde_json::Value = serde_json::from_str(&body).expect("json");
    let mut seen = Vec::new();
    for (at, (text, b)) in m.iter().zip(forward_bodies(&m)).enumerate() {
        assert!(text.len() <= MAX_MESSAGE_BYTES, "part {at}: {}", text.len());
        let msg = read(text).expect("readable");
        assert_eq!(
            (msg.id.as_str(), msg.part, msg.parts),
            ("dlv_big", at as u32, m.len() as u32)
        );
        // Every other member as it was.
        assert_eq!(b["meta"], whole["meta"], "part {at}");
        let obj = b.as_object().expect("object");
        assert_eq!(obj.len(), 2, "part {at}");
        let items = b["data"].as_array().expect("data");
        assert!(!items.is_empty(), "part {at}");
        seen.extend(items.iter().cloned());
    }
    assert_eq!(
        &seen,
        whole["data"].as_array().expect("data"),
        "each once, in order"
    );
    // Each part's reach counts the events it and those before it hold.
    let reach: Vec<Reach> = parts.iter().map(|p| p.upto).collect();
    let mut total = 0;
    for (r, b) in reach.iter().zip(forward_bodies(&m)) {
        total += b["data"].as_array().map_or(0, Vec::len);
        assert_eq!(*r, Reach::Items(total));
    }
    assert_eq!(total, 300);
}

#[test]
fn a_divided_webhook_keeps_the_raw_bytes_of_each_event_and_of_its_other_members() {
    // Spacing and member order as Klaviyo sent them, and a member after `data`.
    let item = format!(
        r#"{{ "external_id" : "e", "payload" : {{"pad":"{}"}} }}"#,
        "y".repeat(50_000)
    );
    let body = format!(
        r#"{{"meta" : {{"klaviyo_webhook_id":"wh_2"}}, "data":[{item},{item},{item}], "extra":[1, 2]}}"#
    );
    let Plan::Enqueue(parts) = plan_forward("dlv_2", &body) else {
        panic!("queued in parts");
    };
    assert!(parts.len() >= 2);
    for p in &parts {
        let Work::Forward { body: b } = read(&p.text).expect("readable").work else {
            panic!("a forward");
        };
        let text = b.get();
        assert!(
            text.starts_with(r#"{"meta":{"klaviyo_webhook_id":"wh_2"},"data":["#),
            "{}",
            &text[..80]
        );
        assert!(text.ends_with(r#"],"extra":[1, 2]}"#));
        assert!(text.contains(&item));
    }
}

#[test]
fn a_webhook_with_one_event_too_large_alone_or_of_another_shape_stays_direct() {
    let huge = webhook_of(1, MAX_MESSAGE_BYTES);
    assert!(matches!(plan_forward("dlv_3", &huge), Plan::Direct));
    // One huge event among small ones: not all of it can be queued, so none is.
    let mut mixed: serde_json::Value = serde_json::from_str(&webhook_of(5, 100)).expect("json");
    mixed["data"][2]["payload"]["pad"] = serde_json::json!("z".repeat(MAX_MESSAGE_BYTES));
    assert!(matches!(
        plan_forward("dlv_3", &mixed.to_string()),
        Plan::Direct
    ));
    // Not a system webhook's shape: data not a list, no meta, a list at the top, data twice.
    let pad = "p".repeat(MAX_MESSAGE_BYTES);
    for other in [
        format!(r#"{{"data":{{"pad":"{pad}"}},"meta":{{}}}}"#),
        format!(r#"{{"data":[{{"a":"{pad}"}},{{"b":1}}]}}"#),
        format!(r#"[{{"a":"{pad}"}},{{"b":1}}]"#),
        format!(r#"{{"data":[{{"a":"{pad}"}},{{"b":1}}],"meta":{{}},"data":[]}}"#),
    ] {
        assert!(
            matches!(plan_forward("dlv_3", &other), Plan::Direct),
            "{}",
            &other[..20]
        );
    }
}

#[test]
fn a_webhook_that_fits_one_message_stays_one_byte_for_byte() {
    let body = webhook_of(20, 1_000);
    let m = messages_of(Some(plan_forward("dlv_4", &body)));
    assert_eq!(m.len(), 1);
    let Plan::Enqueue(parts) = plan_forward("dlv_4", &body) else {
        panic!("queued");
    };
    assert_eq!(parts[0].upto, Reach::Whole);
    match read(&m[0]).expect("readable").work {
        Work::Forward { body: b } => assert_eq!(b.get(), body),
        other => panic!("{other:?}"),
    }
}

#[test]
fn what_is_answered_at_once_is_not_queued() {
    let cfg = config().expect("config");
    let reply = Action::Reply(queue_unavailable(None));
    assert!(plan(&reply, &[7; 32], b"{}", &cfg, NOW_MS).is_none());
    // A refused signed call: its 4xx is the answer, nothing is queued.
    let bad = r#"{"data":{"type":"event","attributes":{}}}"#;
    assert!(planned("/api/events", bad).is_none());
}

#[test]
fn the_delivery_id_is_the_signature_tag_and_the_answer_names_it() {
    let tag = [0xab; 32];
    assert_eq!(delivery_id(&tag), format!("dlv_{}", "ab".repeat(12)));
    assert_ne!(delivery_id(&[1; 32]), delivery_id(&[2; 32]));
    let r = queued(&tag, 3, Some("https://shop.example"));
    assert_eq!(r.status, 202);
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(v["data"]["id"], delivery_id(&tag));
    assert_eq!(v["data"]["attributes"]["status"], "queued");
    assert_eq!(v["data"]["attributes"]["parts"], 3);
    let down = queue_unavailable(None);
    assert_eq!(down.status, 503);
    assert!(down
        .headers
        .iter()
        .any(|(k, v)| *k == "retry-after" && v == "1"));
}

#[test]
fn a_message_of_another_version_or_shape_is_not_read() {
    let m = messages_of(planned("/api/orders", ORDER));
    assert!(read(&m[0]).is_some());
    assert!(read(&m[0].replacen("\"v\":1", "\"v\":2", 1)).is_none());
    assert!(read("{}").is_none());
    assert!(read("not json").is_none());
    assert!(read(r#"{"v":1,"id":"x","part":0,"parts":1,"work":{"mail":{}}}"#).is_none());
}

#[test]
fn only_plain_api_paths_reach_the_key() {
    for ok in [
        "/api/events",
        "/api/lists/Xy12/relationships/profiles",
        "/api/profile-import",
    ] {
        assert!(api_path_ok(ok), "{ok}");
    }
    for bad in [
        "/api//events",
        "/client/events",
        "/api/events?x=1",
        "/api/@evil.example/",
        "/api/../admin",
        "/api/%2e%2e",
        "api/events",
        "",
    ] {
        assert!(!api_path_ok(bad), "{bad}");
    }
}

// ------------------------------------------------------------------ batches and partial sends

/// Checks `runs` against Queues' limits for `lens`: consecutive, covering every message
/// once, each batch within 100 messages and the byte budget.
fn check_runs(lens: &[usize], runs: &[Range<usize>]) {
    let mut next = 0;
    for r in runs {
        assert_eq!(r.start, next, "consecutive");
        assert!(r.end > r.start, "no empty batch");
        assert!(r.len() <= MAX_BATCH_MESSAGES, "{} messages", r.len());
        let bytes: usize = lens[r.clone()].iter().map(|l| l + MESSAGE_OVERHEAD).sum();
        assert!(r.len() == 1 || bytes <= MAX_BATCH_BYTES, "{bytes} bytes");
        next = r.end;
    }
    assert_eq!(next, lens.len(), "every message");
}

#[test]
fn messages_that_fit_one_batch_make_one_batch() {
    assert_eq!(batches(&[]), Vec::<Range<usize>>::new());
    assert_eq!(batches(&[500]), vec![0..1]);
    assert_eq!(batches(&[MAX_MESSAGE_BYTES; 2]), vec![0..2]);
    assert_eq!(batches(&[2_000; 100]), vec![0..100]);
}

#[test]
fn more_than_a_batch_holds_is_the_fewest_batches_in_order() {
    assert_eq!(batches(&[MAX_MESSAGE_BYTES; 5]), vec![0..2, 2..4, 4..5]);
    assert_eq!(batches(&[100; 250]), vec![0..100, 100..200, 200..250]);
    let lens = [100_000, 100_000, 60_000, 10_000, 120_000, 1, 1];
    let runs = batches(&lens);
    check_runs(&lens, &runs);
    assert_eq!(runs, vec![0..2, 2..7]);
    // A message too large for any batch goes alone (the queue refuses it).
    assert_eq!(batches(&[10, 300_000, 10]), vec![0..1, 1..2, 2..3]);
}

#[test]
fn batches_always_respect_the_limits_and_are_fewest() {
    // A cheap deterministic spread of sizes (no RNG crate needed).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..300 {
        let n = 1 + round % 160;
        let lens: Vec<usize> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % (MAX_MESSAGE_BYTES as u64 + 1)) as usize / (1 + round % 50)
            })
            .collect();
        let runs = batches(&lens);
        check_runs(&lens, &runs);
        // Fewest: no batch could also have taken the next message.
        for pair in runs.windows(2) {
            let grown = pair[0].start..pair[0].end + 1;
            let bytes: usize = lens[grown.clone()]
                .iter()
                .map(|l| l + MESSAGE_OVERHEAD)
                .sum();
            assert!(grown.len() > MAX_BATCH_MESSAGES || bytes > MAX_BATCH_BYTES);
        }
    }
}

/// The events of a job, counted per entry.
fn events_per_entry(job: &serde_json::Value) -> Vec<usize> {
    job["data"]["attributes"]["events-bulk-create"]["data"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            e["attributes"]["events"]["data"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .collect()
}

#[test]
fn each_part_of_a_bulk_job_says_how_many_leading_events_and_entries_it_completes() {
    let body = bulk(8, 30, 800); // about 200 KB: several parts
    let parts = parts_of(planned("/api/event-bulk-create-jobs", &body));
    assert!(parts.len() >= 2);
    let mut events = Vec::new();
    for p in &parts {
        events.extend(events_of(&call_of(&p.text).1));
        // Entries whole: those whose 30 events are all in this part or an earlier one.
        let whole = events.len() / 30;
        assert_eq!(
            p.upto,
            Reach::Events {
                entries: whole,
                events: events.len()
            }
        );
    }
    assert_eq!(
        parts.last().map(|p| p.upto),
        Some(Reach::Events {
            entries: 8,
            events: 240
        })
    );
}

#[test]
fn an_entry_without_events_counts_as_whole_once_placed() {
    let body = r#"{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":[
        {"type":"event-bulk-create","attributes":{"profile":{"data":{"type":"profile","attributes":{"email":"a@b.co"}}},"events":{"data":[]}}}]}}}}"#;
    let parts = parts_of(Some(plan_call(
        "dlv_x",
        "/api/event-bulk-create-jobs",
        body,
        NOW_MS,
    )));
    assert_eq!(parts.len(), 1);
    assert_eq!(
        parts[0].upto,
        Reach::Events {
            entries: 1,
            events: 0
        }
    );
}

#[test]
fn list_parts_say_how_many_leading_profiles_they_hold_and_one_message_calls_are_whole() {
    let profiles: Vec<String> = (0..1000)
        .map(|n| format!(r#"{{"email":"member{n}@{}.example.com"}}"#, "m".repeat(100)))
        .collect();
    let body = format!(r#"{{"profiles":[{}]}}"#, profiles.join(","));
    let parts = parts_of(planned("/api/lists/Xy12Ab/profiles", &body));
    assert!(parts.len() >= 2);
    let mut seen = 0;
    for p in &parts {
        match read(&p.text).expect("readable").work {
            Work::List { ids, .. } => seen += ids.len(),
            other => panic!("{other:?}"),
        }
        assert_eq!(p.upto, Reach::Profiles(seen));
    }
    assert_eq!(seen, 1000);
    let one = parts_of(planned("/api/events", &event(r#""unique_id":"u-1","#)));
    assert_eq!(one[0].upto, Reach::Whole);
    assert_eq!(
        parts_of(planned("/api/orders", ORDER))[0].upto,
        Reach::Order { events: 3 }
    );
}

/// A placed order of `lines` lines with long names: large enough to divide.
fn big_order(lines: usize) -> String {
    let items: Vec<String> = (0..lines)
        .map(|n| {
            format!(
                r#"{{"product_id":"p-{n}","name":"{}","quantity":1,"price":1.5,"url":"https://shop.example/p/{}"}}"#,
                "n".repeat(200),
                "u".repeat(200)
            )
        })
        .collect();
    format!(
        r#"{{"order_id":"o-big","value":{},"profile":{{"email":"ann@example.com"}},"items":[{}]}}"#,
        1.5 * lines as f64,
        items.join(",")
    )
}

#[test]
fn an_order_divided_into_parts_is_counted_in_its_events_and_sent_again_whole() {
    let parts = parts_of(planned("/api/orders", &big_order(150)));
    assert!(parts.len() >= 2, "{} parts", parts.len());
    assert!(matches!(parts[0].upto, Reach::Order { events } if events > 0));
    assert_eq!(
        parts.last().map(|p| p.upto),
        Some(Reach::Order { events: 151 })
    );
    let r = not_all_queued(&[9; 32], &parts, 1, None);
    assert_eq!(r.status, 409);
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(v["errors"][0]["code"], "queue_partial");
    assert_eq!(v["errors"][0]["meta"]["resend"], "whole");
}

#[test]
fn nothing_taken_is_queue_unavailable_and_everything_taken_is_queued() {
    let parts = parts_of(planned("/api/event-bulk-create-jobs", &bulk(8, 30, 800)));
    let none = not_all_queued(&[1; 32], &parts, 0, None);
    assert_eq!(none.status, 503);
    assert!(none.body.contains("\"queue_unavailable\""));
    let all = not_all_queued(&[1; 32], &parts, parts.len(), None);
    assert_eq!(all.status, 202);
}

#[test]
fn a_partial_send_names_the_leading_events_queued_and_the_rest_completes_the_job_once() {
    let body = bulk(12, 30, 900); // about 330 KB: several parts, entries split across them
    let whole: serde_json::Value = serde_json::from_str(&body).expect("json");
    let parts = parts_of(planned("/api/event-bulk-create-jobs", &body));
    assert!(parts.len() >= 3, "{} parts", parts.len());
    for sent in 1..parts.len() {
        let r = not_all_queued(&[5; 32], &parts, sent, Some("https://shop.example"));
        // Not a 5xx: a client repeats those as they were.
        assert_eq!(r.status, 409);
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| k == "retry-after" && v == "1"));
        assert!(r
            .headers
            .iter()
            .any(|(k, _)| k == "access-control-allow-origin"));
        no_secret(&r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("json");
        let e = &v["errors"][0];
        assert_eq!(e["status"], "409");
        assert_eq!(e["code"], "queue_partial");
        assert_eq!(e["meta"]["delivery"], delivery_id(&[5; 32]));
        assert_eq!(e["meta"]["parts"], parts.len());
        assert_eq!(e["meta"]["queued_parts"], sent);
        assert_eq!(e["meta"]["resend"], "rest");
        let n = e["meta"]["queued"]["events"].as_u64().expect("events") as usize;
        let entries = e["meta"]["queued"]["entries"].as_u64().expect("entries") as usize;
        assert!(e["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("first {n} events"))));
        // What the caller resends: the entries from `entries` on, the first of them
        // without its events already counted. Queued + rest = the job, each event once.
        let per = events_per_entry(&whole);
        let before: usize = per[..entries].iter().sum();
        let mut rest = whole.clone();
        let list = rest["data"]["attributes"]["events-bulk-create"]["data"]
            .as_array_mut()
            .expect("entries");
        list.drain(..entries);
        if let Some(first) = list.first_mut() {
            let evs = first["attributes"]["events"]["data"]
                .as_array_mut()
                .expect("events");
            evs.drain(..n - before);
        }
        let mut got: Vec<(String, String)> = parts[..sent]
            .iter()
            .flat_map(|p| events_of(&call_of(&p.text).1))
            .collect();
        assert_eq!(got.len(), n, "the count is what was queued");
        got.extend(events_of(&rest));
        assert_eq!(got, events_of(&whole), "after {sent} parts");
    }
}

#[test]
fn a_partial_list_send_names_the_leading_profiles_queued() {
    let profiles: Vec<String> = (0..1000)
        .map(|n| format!(r#"{{"email":"member{n}@{}.example.com"}}"#, "m".repeat(100)))
        .collect();
    let body = format!(r#"{{"profiles":[{}]}}"#, profiles.join(","));
    let parts = parts_of(planned("/api/lists/Xy12Ab/profiles", &body));
    let r = not_all_queued(&[3; 32], &parts, 1, None);
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(v["errors"][0]["code"], "queue_partial");
    let Reach::Profiles(first) = parts[0].upto else {
        panic!("{:?}", parts[0].upto)
    };
    assert_eq!(v["errors"][0]["meta"]["queued"]["profiles"], first);
    assert_eq!(v["errors"][0]["meta"]["resend"], "rest");
}

// ------------------------------------------------------------------ the consumer's verdicts

fn answer(status: u16, retry_after: Option<&str>) -> Upstream {
    Upstream::Answered {
        status,
        retry_after: retry_after.map(str::to_string),
        content_type: None,
        body: String::new(),
    }
}

#[test]
fn a_2xx_is_acknowledged() {
    for s in [200, 201, 202, 204] {
        assert_eq!(after_attempt(&answer(s, None), 1, NOW_MS, 0), Verdict::Ack);
    }
}

#[test]
fn a_4xx_other_than_401_403_408_and_429_is_refused_and_never_retried() {
    for s in [400, 404, 409, 413, 422] {
        assert_eq!(
            after_attempt(&answer(s, None), 1, NOW_MS, 0),
            Verdict::Refused { status: s }
        );
    }
}

#[test]
fn a_refused_key_waits_an_hour_for_the_operator_as_a_missing_one_does() {
    // A key rotated in the wrong order, revoked, or short of a scope: every message
    // queued meanwhile would be dead-lettered. It waits, whatever the attempt.
    for s in [401, 403] {
        for attempts in [1, 5, 80] {
            assert_eq!(
                after_attempt(&answer(s, None), attempts, NOW_MS, u16::MAX),
                Verdict::Retry {
                    delay_s: MAX_DELAY_S
                }
            );
        }
    }
}

#[test]
fn a_redirect_is_refused_not_followed() {
    for s in [301, 302, 307, 308] {
        assert_eq!(
            after_attempt(&answer(s, None), 1, NOW_MS, 0),
            Verdict::Refused { status: s }
        );
    }
}

#[test]
fn server_errors_network_failures_and_timeouts_back_off_doubling_to_the_cap() {
    let waits: Vec<u32> = (1..=14)
        .map(|n| match after_attempt(&Upstream::Failed, n, NOW_MS, 0) {
            Verdict::Retry { delay_s } => delay_s,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        waits,
        [
            1,
            2,
            4,
            8,
            16,
            32,
            64,
            128,
            256,
            512,
            1024,
            2048,
            MAX_DELAY_S,
            MAX_DELAY_S
        ]
    );
    for s in [408, 500, 502, 503, 504] {
        assert_eq!(
            after_attempt(&answer(s, None), 3, NOW_MS, 0),
            Verdict::Retry { delay_s: 4 }
        );
    }
    // Attempts far past what Queues allows do not overflow.
    assert_eq!(
        after_attempt(&Upstream::Failed, u32::MAX, NOW_MS, 0),
        Verdict::Retry {
            delay_s: MAX_DELAY_S
        }
    );
}

#[test]
fn jitter_adds_up_to_a_quarter_of_the_backoff() {
    let at = |jitter| match after_attempt(&answer(503, None), 5, NOW_MS, jitter) {
        Verdict::Retry { delay_s } => delay_s,
        other => panic!("{other:?}"),
    };
    assert_eq!(at(0), 16);
    assert_eq!(at(u16::MAX), 20);
    assert!((16..=20).contains(&at(30_000)));
}

#[test]
fn a_429_waits_its_retry_after_in_seconds_or_as_a_date_whatever_the_attempt() {
    let throttled = |h: Option<&str>, attempts, jitter| {
        after_attempt(&answer(429, h), attempts, NOW_MS, jitter)
    };
    assert_eq!(
        throttled(Some("5"), 1, 0),
        Verdict::Throttled {
            wait_s: 5,
            delay_s: 5
        }
    );
    // A throttle is no failure: no backoff grows with the attempts.
    assert_eq!(throttled(Some("5"), 30, 0), throttled(Some("5"), 1, 0));
    // The spread: up to the wait again, so a held backlog comes back over one more window.
    assert_eq!(
        throttled(Some("5"), 1, u16::MAX),
        Verdict::Throttled {
            wait_s: 5,
            delay_s: 10
        }
    );
    // An HTTP date 90 s after now.
    let date = "Thu, 26 Nov 2026 05:03:49 GMT";
    assert_eq!(
        throttled(Some(date), 1, 0),
        Verdict::Throttled {
            wait_s: 90,
            delay_s: 90
        }
    );
    // Unreadable or absent: 10 s.
    for h in [Some("soon"), None] {
        assert_eq!(
            throttled(h, 2, 0),
            Verdict::Throttled {
                wait_s: 10,
                delay_s: 10
            }
        );
    }
    // Never past what Queues accepts (12 h), nor less than a second.
    assert_eq!(
        throttled(Some("999999"), 1, u16::MAX),
        Verdict::Throttled {
            wait_s: 43_200,
            delay_s: 43_200
        }
    );
    assert_eq!(
        throttled(Some("0"), 1, 0),
        Verdict::Throttled {
            wait_s: 1,
            delay_s: 1
        }
    );
}

#[test]
fn messages_held_behind_a_429_wait_as_long_each_with_its_own_spread() {
    assert_eq!(
        held_behind(8, 0),
        Verdict::Throttled {
            wait_s: 8,
            delay_s: 8
        }
    );
    assert_eq!(
        held_behind(8, u16::MAX / 2),
        Verdict::Throttled {
            wait_s: 8,
            delay_s: 12
        }
    );
    // A wait of a second still spreads the backlog: over 1 and 2 s, half each.
    let delay = |jitter| match held_behind(1, jitter) {
        Verdict::Throttled { delay_s, .. } => delay_s,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (
            delay(0),
            delay(u16::MAX / 2),
            delay(u16::MAX / 2 + 1),
            delay(u16::MAX)
        ),
        (1, 1, 2, 2)
    );
}

#[test]
fn a_message_throttled_for_more_than_a_week_is_dead_lettered_and_its_letter_starts_afresh() {
    let order = messages_of(planned("/api/orders", ORDER));
    let now = NOW_MS / 1000;
    // The first 429 stamps the message: queued again, it remembers since when.
    let Throttle::Again(first) = throttled(&order[0], now) else {
        panic!("queued again")
    };
    let stamped = read(&first).expect("readable");
    assert_eq!(stamped.throttled_since, Some(now));
    assert_eq!(call_of(&first), call_of(&order[0]), "the call unchanged");
    // Later 429s keep the first one's time, up to a week of them.
    assert_eq!(
        throttled(&first, now + MAX_THROTTLED_S),
        Throttle::Again(first.clone())
    );
    assert_eq!(MAX_THROTTLED_S, 7 * 86_400);
    // Past it: dead-lettered (before, it went round for as long as the 429s did).
    assert_eq!(
        throttled(&first, now + MAX_THROTTLED_S + 1),
        Throttle::Expired { since_s: now }
    );
    // Its letter holds the message as first queued: sent again by hand once the fault
    // is fixed, the next 429 would otherwise dead-letter it at once.
    assert_eq!(as_first_queued(&first).as_deref(), Some(order[0].as_str()));
    assert_eq!(as_first_queued(&order[0]), None, "nothing to take out");
    // A list message carried on after a throttle keeps the time too.
    let body = r#"{"profiles":[{"email":"a@b.co"},{"email":"c@d.co"}]}"#;
    let list = messages_of(planned("/api/lists/Xy12Ab/profiles", body));
    let Throttle::Again(list) = throttled(&list[0], now) else {
        panic!("queued again")
    };
    let msg = read(&list).expect("readable");
    let next = list_carried_on(&msg, &[Some("01FOUND".into()), None]).expect("a message");
    assert_eq!(read(&next).expect("readable").throttled_since, Some(now));
}

#[test]
fn a_throttled_message_retried_in_place_backs_off_with_its_attempts() {
    // Not queued again as a new message (no DELIVERY_QUEUE in the consumer's env): each
    // retry is spent, so the wait grows as for a failure, never below the server's.
    assert_eq!(throttled_retry_s(1, 1, 0), 1);
    assert_eq!(throttled_retry_s(1, 13, 0), MAX_DELAY_S);
    assert_eq!(throttled_retry_s(90, 3, 0), 90);
}

#[test]
fn a_server_errors_retry_after_is_waited_at_least_and_never_past_twelve_hours() {
    assert_eq!(
        after_attempt(&answer(503, Some("120")), 2, NOW_MS, 0),
        Verdict::Retry { delay_s: 120 }
    );
    // The backoff wins when it is longer.
    assert_eq!(
        after_attempt(&answer(503, Some("5")), 5, NOW_MS, 0),
        Verdict::Retry { delay_s: 16 }
    );
    // Queues refuses a `delaySeconds` over 12 h (the retry would fail and come back at once).
    assert_eq!(
        after_attempt(&answer(503, Some("999999")), 1, NOW_MS, u16::MAX),
        Verdict::Retry {
            delay_s: MAX_QUEUE_DELAY_S
        }
    );
}

/// The longest a message is retried with `retries` retries: each attempt answered with
/// the longer of a 503 without `Retry-After` (its backoff with the largest jitter) and a
/// refused key's wait (an hour, as a missing setting's): a key incident first, then an
/// outage, takes longer than either alone.
fn worst_schedule_s(retries: u32) -> u64 {
    let answer = |status| Upstream::Answered {
        status,
        retry_after: None,
        content_type: None,
        body: String::new(),
    };
    let wait = |status, attempts| match after_attempt(&answer(status), attempts, NOW_MS, u16::MAX) {
        Verdict::Retry { delay_s } => u64::from(delay_s),
        other => panic!("{other:?}"),
    };
    (1..=retries)
        .map(|attempts| wait(503, attempts).max(wait(401, attempts)))
        .sum()
}

/// The number after `max_retries = ` on the first line of `text` that has it.
fn retries_in(text: &str) -> u32 {
    let at = text.find("max_retries = ").expect("max_retries") + "max_retries = ".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a number")
}

#[test]
fn the_shipped_retry_schedule_ends_inside_the_queues_retention() {
    // Queues deletes a message at the end of its retention, retried or not: one still
    // waiting for its next attempt then is lost, without reaching the dead-letter queue.
    let toml = include_str!("../../../js/edge/wrangler.toml");
    let shipped = toml
        .lines()
        .find(|l| l.starts_with("max_retries"))
        .map(retries_in)
        .expect("max_retries in wrangler.toml");
    let worst = worst_schedule_s(shipped);
    assert!(
        worst < 4 * 86_400,
        "{shipped} retries take up to {worst} s, past the default 4 days"
    );
    // The figure its comment gives, and the Free plan's (retention 24 h).
    assert!(toml.contains(&format!("{:.1} days", worst as f64 / 86_400.0)));
    let free = toml
        .lines()
        .find(|l| l.contains("Free plan (retention 24 h)"))
        .map(retries_in)
        .expect("the Free plan's max_retries");
    let worst_free = worst_schedule_s(free);
    assert!(worst_free < 86_400, "{free} retries: {worst_free} s");
    assert!(toml.contains(&format!("({:.1} h)", worst_free as f64 / 3_600.0)));
}

#[test]
fn a_message_whose_setting_is_gone_waits_for_it() {
    let cfg = config().expect("config");
    let call = Work::Call {
        path: "/api/events".into(),
        body: RawValue::from_string("{}".into()).expect("json"),
    };
    let forward = Work::Forward {
        body: RawValue::from_string("{}".into()).expect("json"),
    };
    assert_eq!(missing_setting(&call, &cfg), None);
    assert_eq!(missing_setting(&forward, &cfg), None);
    let mut no_key = config().expect("config");
    no_key.private_key = None;
    assert_eq!(missing_setting(&call, &no_key), Some("KLAVIYO_PRIVATE_KEY"));
    assert_eq!(missing_setting(&forward, &no_key), None);
    let mut no_url = config().expect("config");
    no_url.webhook_forward_url = None;
    assert_eq!(
        missing_setting(&forward, &no_url),
        Some("WEBHOOK_FORWARD_URL")
    );
    let mut no_secret = config().expect("config");
    no_secret.signing_secret = None;
    assert_eq!(
        missing_setting(&forward, &no_secret),
        Some("EDGE_SIGNING_SECRET")
    );
}
