use serde_json::{json, Value};

use super::*;
use crate::edge::delivery::{self, plan_call, Plan};
use crate::edge::reply::Reply;

/// A delivery message as the fetch path queues it: an event for `/api/events`.
fn message() -> String {
    let body = r#"{"data":{"type":"event","attributes":{"unique_id":"u-1","properties":{},"metric":{"data":{"type":"metric","attributes":{"name":"Placed Order"}}},"profile":{"data":{"type":"profile","attributes":{"external_id":"c-1"}}}}}}"#;
    match plan_call(
        "dlv_0123456789abcdef01234567",
        "/api/events",
        body,
        1_764_133_339_000,
    ) {
        Plan::Enqueue(parts) => parts[0].text.clone(),
        Plan::Direct => panic!("one message"),
    }
}

/// A letter as the consumer writes it.
fn letter_of(status: u16, message: &str) -> String {
    format!(r#"{{"status":{status},"message":{message}}}"#)
}

fn json_of(r: &Reply) -> Value {
    serde_json::from_str(&r.body).expect("a JSON answer")
}

#[test]
fn the_four_routes_are_known_and_nothing_else() {
    assert_eq!(route("/api/dead-letters"), Some(Op::List));
    assert_eq!(route("/api/dead-letters/read"), Some(Op::Read));
    assert_eq!(route("/api/dead-letters/resend"), Some(Op::Resend));
    assert_eq!(route("/api/dead-letters/delete"), Some(Op::Delete));
    for other in [
        "/api/dead-letters/",
        "/api/dead-letters/other",
        "/api/dead-letter",
    ] {
        assert_eq!(route(other), None, "{other}");
    }
}

#[test]
fn a_kept_letter_is_keyed_by_its_time_and_message_and_listed_with_why_it_died() {
    let msg = message();
    let k = kept(
        &letter_of(400, &msg),
        "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        1_764_133_339_123,
        "r",
    );
    assert_eq!(k.id, "1764133339123-0f1e2d3c4b5a69788796a5b4c3d2e1f0");
    assert_eq!(
        key(&k.id),
        "letter:1764133339123-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    );
    assert_eq!(id_of(&key(&k.id)), k.id);
    assert_eq!(
        k.metadata,
        json!({
            "reason": "refused",
            "status": 400,
            "delivery": "dlv_0123456789abcdef01234567",
            "part": "1/1",
            "route": "/api/events",
            "queued_at": "2025-11-26T05:02:19Z",
        })
    );
    assert!(
        k.metadata.to_string().len() < 1024,
        "KV takes 1,024 bytes of metadata"
    );
    // The key is an id the calls take.
    assert_eq!(
        ask(Op::Read, &json!({ "id": k.id }).to_string()),
        Ok(Ask::Read { id: k.id.clone() })
    );
    // Delivered again by Queues: the same key, kept once.
    assert_eq!(
        kept(
            &letter_of(400, &msg),
            "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            1_764_133_339_123,
            "r"
        )
        .id,
        k.id
    );
}

#[test]
fn why_a_message_died_throttled_out_of_retries_or_unreadable() {
    let msg = message();
    let reason = |body: &str| {
        let k = kept(body, "id", 0, "r");
        (k.metadata["reason"].clone(), k.metadata["status"].clone())
    };
    assert_eq!(
        reason(&letter_of(429, &msg)),
        (json!("throttled"), json!(429))
    );
    // Queues moved it here: the message itself.
    assert_eq!(reason(&msg), (json!("retries"), Value::Null));
    let k = kept(&msg, "id", 0, "r");
    assert_eq!(k.metadata["route"], json!("/api/events"));
    // The consumer could not read it: kept as a string, status 0.
    assert_eq!(
        reason(&letter_of(0, r#""not a message""#)),
        (json!("unreadable"), json!(0))
    );
    assert_eq!(
        reason("not json at all"),
        (json!("unreadable"), Value::Null)
    );
    assert_eq!(kept("x", "id", 0, "r").metadata["delivery"], Value::Null);
}

#[test]
fn a_message_id_of_other_characters_still_makes_an_id_the_calls_take() {
    for (id, fallback) in [("a/b c?d", "r"), ("../../x", "r"), ("q:1", "r")] {
        let k = kept("{}", id, 1_000_000_000_000, fallback);
        assert!(k.id.starts_with("1000000000000-h"), "{}", k.id);
        assert_eq!(k.id.len(), 14 + 33, "h and 32 hex digits");
        assert!(ask(Op::Read, &json!({ "id": k.id }).to_string()).is_ok());
        // Delivered again: the same id.
        assert_eq!(kept("{}", id, 1_000_000_000_000, "other").id, k.id);
    }
    for (id, fallback, expect) in [
        ("0f1e2d3c", "r", "1000000000000-0f1e2d3c"),
        // A host that gives no id: the random one the adapter draws.
        ("", "9f3a", "1000000000000-9f3a"),
        ("", "", "1000000000000-_"),
    ] {
        assert_eq!(kept("{}", id, 1_000_000_000_000, fallback).id, expect);
    }
    let long = "f".repeat(300);
    let k = kept("{}", &long, 5, "r");
    assert!(k.id.starts_with("0000000000005-h"));
    assert!(ask(Op::Read, &json!({ "id": k.id }).to_string()).is_ok());
    assert!(key(&k.id).len() <= 512, "KV takes keys of 512 bytes");
    assert_eq!(
        kept("{}", &"f".repeat(128), 5, "r").id.len(),
        14 + 128,
        "128 fit"
    );
}

#[test]
fn two_message_ids_that_differ_only_in_characters_an_id_cannot_hold_stay_two_letters() {
    // One millisecond, two messages: one key would keep the second over the first.
    let ids: Vec<String> = ["q:1", "q.1", "q1", &"a".repeat(129), &"a".repeat(130)]
        .iter()
        .map(|id| kept("{}", id, 7, "r").id)
        .collect();
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
}

#[test]
fn a_letters_listing_fits_kv_metadata_whatever_its_message_holds() {
    // A foreign message: a long path of characters JSON escapes in six bytes each, or
    // of characters four or two bytes long in UTF-8.
    let msg = message();
    for path in [
        "\\u0001".repeat(250),
        "\u{1F600}".repeat(100),
        "\u{e9}".repeat(300),
    ] {
        let odd = msg.replacen(r#""path":"/api/events""#, &format!(r#""path":"{path}""#), 1);
        assert_ne!(odd, msg, "the path was replaced");
        let k = kept(&letter_of(400, &odd), "id", 0, "r");
        let len = k.metadata.to_string().len();
        assert!(len <= 1024, "{len} bytes");
        assert_eq!(
            k.metadata["reason"],
            json!("refused"),
            "still listed with why"
        );
    }
}

#[test]
fn a_letter_is_told_from_a_message_to_deliver() {
    let msg = message();
    assert!(is_letter(&letter_of(400, &msg)));
    assert!(is_letter(&letter_of(0, r#""garbled""#)));
    assert!(!is_letter(&msg));
    assert!(!is_letter("garbled"));
}

#[test]
fn bytes_no_text_holds_are_kept_whole_as_hex_and_listed_unreadable() {
    let bytes = [0xff, 0x00, 0x7b, 0xc3];
    let letter = bytes_letter(&bytes);
    assert_eq!(letter, r#"{"status":0,"message":{"bytes_hex":"ff007bc3"}}"#);
    assert!(is_letter(&letter), "a letter: never delivered");
    let k = kept(&letter, "id", 0, "r");
    assert_eq!(
        (k.metadata["reason"].clone(), k.metadata["status"].clone()),
        (json!("unreadable"), json!(0))
    );
    assert_eq!(resendable(&letter), None, "only deleting it is left");
}

#[test]
fn a_letter_the_store_did_not_take_waits_longer_each_time_and_outlasts_the_queue() {
    assert_eq!(
        keep_retry_s(1),
        60,
        "a brief failure hides a letter briefly"
    );
    assert_eq!(keep_retry_s(2), 120);
    assert_eq!(keep_retry_s(11), 43_200);
    assert_eq!(keep_retry_s(100), 43_200, "the longest delay Queues takes");
    // wrangler.toml's max_retries for the dead-letter queue's consumer.
    let toml = include_str!("../../../js/edge/wrangler.toml");
    let block = toml
        .split("[[queues.consumers]]")
        .skip(1)
        .find(|b| {
            b.lines()
                .any(|l| l == r#"queue = "klaviyo-deliveries-dead""#)
        })
        .expect("a consumer of the dead-letter queue in wrangler.toml");
    let retries: u32 = block
        .lines()
        .find_map(|l| l.strip_prefix("max_retries = "))
        .and_then(|n| n.trim().parse().ok())
        .expect("its max_retries");
    let waited: u64 = (1..=retries).map(|n| u64::from(keep_retry_s(n))).sum();
    assert!(
        waited > 14 * 86_400,
        "{retries} retries wait {waited} s: no longer than the queue keeps a message"
    );
}

#[test]
fn what_a_letter_sends_again_is_its_message_as_first_queued() {
    let msg = message();
    let again = |m: &str| Again {
        message: m.to_string(),
        delivery: "dlv_0123456789abcdef01234567".into(),
    };
    assert_eq!(resendable(&letter_of(400, &msg)), Some(again(&msg)));
    assert_eq!(
        resendable(&msg),
        Some(again(&msg)),
        "out of retries: itself"
    );
    // A message throttled for a week came here with the time of its first 429: sent
    // again, 429s hold it afresh.
    let throttled = msg.replacen('{', r#"{"throttled_since":1764000000,"#, 1);
    assert!(delivery::read(&throttled).is_some_and(|m| m.throttled_since.is_some()));
    for letter in [letter_of(429, &throttled), throttled.clone()] {
        let sent = resendable(&letter).expect("resendable");
        let read = delivery::read(&sent.message).expect("a message");
        assert_eq!(read.throttled_since, None);
        assert_eq!(sent.delivery, "dlv_0123456789abcdef01234567");
    }
    assert_eq!(resendable(&letter_of(0, r#""garbled""#)), None);
    assert_eq!(resendable("garbled"), None);
}

#[test]
fn each_call_checks_its_body_and_names_the_field() {
    let id = "1764133339123-abc";
    assert_eq!(ask(Op::List, "{}"), Ok(Ask::List { cursor: None }));
    assert_eq!(
        ask(Op::List, r#"{"cursor":"AAAA"}"#),
        Ok(Ask::List {
            cursor: Some("AAAA".into())
        })
    );
    let other = "1764133339124-abc";
    assert_eq!(
        ask(Op::Resend, &json!({ "ids": [id, other] }).to_string()),
        Ok(Ask::Resend {
            ids: vec![id.into(), other.into()]
        })
    );
    // Named twice, a letter whose delete KV does not show yet would be sent twice.
    let e = ask(Op::Resend, &json!({ "ids": [id, other, id] }).to_string()).unwrap_err();
    assert_eq!(
        (e.pointer.as_str(), e.detail.as_str()),
        ("/ids/2", "is named twice")
    );
    assert_eq!(
        ask(Op::Delete, &json!({ "ids": [id] }).to_string()),
        Ok(Ask::Delete {
            ids: vec![id.into()]
        })
    );
    let refused = |op: Op, body: &str| ask(op, body).map(|_| ()).unwrap_err();
    let e = refused(Op::List, r#"{"cursor":""}"#);
    assert_eq!(e.pointer, "/cursor");
    let e = refused(Op::List, &json!({ "cursor": "c".repeat(4097) }).to_string());
    assert_eq!(e.pointer, "/cursor");
    let e = refused(Op::List, r#"{"limit":5}"#);
    assert_eq!(
        (e.pointer.as_str(), e.detail.as_str()),
        ("/limit", "is not a member of this body (cursor)")
    );
    let e = refused(Op::Read, "{}");
    assert_eq!(
        (e.pointer.as_str(), e.detail.as_str()),
        ("/id", "is required")
    );
    for bad in [
        "",
        "123-abc",
        "17641333391234-abc",
        "1764133339123-",
        "1764133339123-a/b",
        "x764133339123-abc",
    ] {
        let e = refused(Op::Read, &json!({ "id": bad }).to_string());
        assert_eq!(e.pointer, "/id", "{bad:?}");
    }
    let e = refused(Op::Resend, r#"{"ids":[]}"#);
    assert_eq!(e.pointer, "/ids");
    let many: Vec<String> = (0..101).map(|n| format!("{:013}-a", n)).collect();
    let e = refused(Op::Delete, &json!({ "ids": many }).to_string());
    assert_eq!(
        (e.pointer.as_str(), e.detail.as_str()),
        ("/ids", "must hold 1 to 100 ids")
    );
    assert!(ask(Op::Delete, &json!({ "ids": many[..100] }).to_string()).is_ok());
    let e = refused(
        Op::Resend,
        &json!({ "ids": [id, other, "nope"] }).to_string(),
    );
    assert_eq!(e.pointer, "/ids/2");
    let e = refused(Op::Resend, r#"{"ids":["1764133339123-a"],"ids":[]}"#);
    assert_eq!(e.detail, "is a duplicate key");
    let e = refused(Op::Resend, "not json");
    assert_eq!(e.pointer, "");
}

#[test]
fn the_answers_are_json_api() {
    let page = listing(
        &[
            (
                "1-a".into(),
                Some(r#"{"reason":"refused","status":400}"#.into()),
            ),
            ("2-b".into(), None),
            ("3-c".into(), Some("[1]".into())),
        ],
        Some("next"),
    );
    assert_eq!(page.status, 200);
    assert_eq!(
        json_of(&page),
        json!({
            "data": [
                { "type": "dead-letter", "id": "1-a", "attributes": { "reason": "refused", "status": 400 } },
                { "type": "dead-letter", "id": "2-b", "attributes": {} },
                { "type": "dead-letter", "id": "3-c", "attributes": {} },
            ],
            "meta": { "next_cursor": "next" },
        })
    );
    assert_eq!(
        json_of(&listing(&[], None))["meta"]["next_cursor"],
        Value::Null
    );
    let one = letter(
        "1-a",
        Some(r#"{"reason":"refused"}"#),
        r#"{"status":400,"message":{"v":1}}"#,
    );
    assert_eq!(
        json_of(&one)["data"]["attributes"],
        json!({ "reason": "refused", "letter": { "status": 400, "message": { "v": 1 } } })
    );
    assert_eq!(
        json_of(&letter("1-a", None, "text"))["data"]["attributes"]["letter"],
        json!("text")
    );
    let results = outcomes(&[
        (
            "1-a".into(),
            Outcome::Queued {
                delivery: "dlv_1".into(),
            },
        ),
        ("2-b".into(), Outcome::NotFound),
        ("3-c".into(), Outcome::NotResendable),
        ("4-d".into(), Outcome::QueueUnavailable),
        ("5-e".into(), Outcome::Deleted),
        ("6-f".into(), Outcome::StoreUnavailable),
        (
            "7-g".into(),
            Outcome::QueuedStillKept {
                delivery: "dlv_2".into(),
            },
        ),
    ]);
    let got: Vec<Value> = json_of(&results)["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d["attributes"].clone())
        .collect();
    assert_eq!(
        got,
        vec![
            json!({ "result": "queued", "delivery": "dlv_1" }),
            json!({ "result": "not_found" }),
            json!({ "result": "not_resendable" }),
            json!({ "result": "queue_unavailable" }),
            json!({ "result": "deleted" }),
            json!({ "result": "store_unavailable" }),
            json!({ "result": "queued_still_kept", "delivery": "dlv_2" }),
        ]
    );
    let missing = not_found();
    assert_eq!(missing.status, 404);
    assert_eq!(
        json_of(&missing)["errors"][0]["source"]["pointer"],
        json!("/id")
    );
}
