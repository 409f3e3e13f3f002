//! The signed calls on the kept dead letters: the backend's alone, checked like every
//! signed call, never queued themselves.

use super::*;
use crate::edge::config;
use crate::edge::dead_letters::Ask;
use crate::edge::delivery;

const ID: &str = "1764133339123-0f1e2d3c";

#[test]
fn signed_calls_on_the_dead_letters_are_carried_out_once_each() {
    let cases = [
        (
            "/api/dead-letters",
            "{}".to_string(),
            Ask::List { cursor: None },
        ),
        (
            "/api/dead-letters/read",
            format!(r#"{{"id":"{ID}"}}"#),
            Ask::Read { id: ID.into() },
        ),
        (
            "/api/dead-letters/resend",
            format!(r#"{{"ids":["{ID}"]}}"#),
            Ask::Resend {
                ids: vec![ID.into()],
            },
        ),
        (
            "/api/dead-letters/delete",
            format!(r#"{{"ids":["{ID}"]}}"#),
            Ask::Delete {
                ids: vec![ID.into()],
            },
        ),
    ];
    for (path, body, ask) in cases {
        let d = post(path, &body).signed().run_with(&config());
        assert_eq!(d.action, Action::DeadLetters(ask), "{path}");
        assert!(d.gate.replay_key.is_some(), "{path}: one use per signature");
        // Answered by the worker, never put on the delivery queue.
        let cfg = config().expect("config");
        assert_eq!(
            delivery::plan(&d.action, &[7; 32], body.as_bytes(), &cfg, NOW_MS).map(|_| ()),
            None,
            "{path}"
        );
    }
}

#[test]
fn only_the_backend_may_touch_the_dead_letters() {
    let body = format!(r#"{{"ids":["{ID}"]}}"#);
    let path = "/api/dead-letters/resend";
    assert_eq!(status(&post(path, &body).run()), 401, "unsigned");
    // A page of the shop: no signature, an allowed Origin.
    let page = post(path, &body).header("origin", "https://shop.example");
    assert_eq!(status(&page.run()), 403);
    // A signature made for another of these routes does not open this one.
    let moved = post(path, &body).signed_for("/api/dead-letters/delete", NOW_S);
    assert_eq!(status(&moved.run()), 401);
    assert_eq!(
        status(&post("/api/dead-letters", "{}").method("GET").run()),
        405
    );
    let bad = post(path, r#"{"ids":["x"]}"#).signed();
    let a = bad.run();
    assert_eq!(status(&a), 400);
    let Action::Reply(r) = a else {
        panic!("a refusal")
    };
    assert!(r.body.contains(r#""pointer":"/ids/0""#), "{}", r.body);
}

#[test]
fn the_dead_letter_queue_name_is_trimmed_and_defaults_to_the_shipped_queue() {
    // The consumer reads it from env itself (dead-letters.test.mjs: whatever the other
    // settings say).
    assert_eq!(config::dead_letter_queue(Some(" shop-dead ")), "shop-dead");
    assert_eq!(
        config::dead_letter_queue(Some("  ")),
        "klaviyo-deliveries-dead"
    );
    assert_eq!(
        config::dead_letter_queue(None),
        "klaviyo-deliveries-dead",
        "the name js/edge/wrangler.toml gives it"
    );
    assert!(include_str!("../../../js/edge/wrangler.toml")
        .contains(r#"queue = "klaviyo-deliveries-dead""#));
}
