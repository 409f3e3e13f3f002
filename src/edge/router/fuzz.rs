//! Property-based fuzzing of the router (proptest, native): random methods, paths,
//! headers and bodies (deep nesting, huge numbers, invalid UTF-8, duplicate keys, lone
//! surrogates, `0e2147483647`, valid signed bodies mutated, and the shapes of memory
//! attacks: huge arrays, objects of many keys, long strings, 100 KB headers, padded and
//! case-varied origins), through `decide`, the isolate's gate and the upstream policy.
//! Whatever comes in: no panic; every answer is a JSON:API error or a known success, or
//! a forward; the private key is in no answer; the heap a request holds at its peak
//! stays within [`native_bound`] of its size; and every spelling of an allowed origin
//! is the same client.
//!
//! `FUZZ_CASES` sets the number of cases (default 3000); `.ci/test.sh` prints it.

use proptest::prelude::*;

use super::*;
use crate::edge::auth;
use crate::edge::config::Settings;

const PRIVATE: &str = "pk_fuzz_0123456789abcdef_SECRET";
const SIGNING: &str = "edge-signing-secret-for-fuzzing";
const WEBHOOK: &str = "webhook-secret-for-fuzzing";
const NOW_MS: u64 = 1_795_669_339_000;

fn config() -> Result<EdgeConfig, ConfigError> {
    let s: Settings = serde_json::from_value(serde_json::json!({
        "KLAVIYO_PRIVATE_KEY": PRIVATE,
        "KLAVIYO_PUBLIC_KEY": "AbC123",
        "ALLOWED_ORIGINS": "https://shop.example",
        "EDGE_SIGNING_SECRET": SIGNING,
        "KLAVIYO_WEBHOOK_SECRET": WEBHOOK,
        "BROWSER_SERVER_METRICS": "Started Checkout",
        "WEBHOOK_FORWARD_URL": "https://hooks.shop.example/in",
        "ROUTE_PREFIX": "",
    }))
    .expect("settings");
    EdgeConfig::from_settings(&s)
}

pub fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("POST".to_string()),
        1 => Just("GET".to_string()),
        1 => Just("OPTIONS".to_string()),
        1 => Just("PUT".to_string()),
        1 => "[A-Z]{1,7}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/api/events".to_string()),
        Just("/api/event-bulk-create-jobs".to_string()),
        Just("/api/profile-import".to_string()),
        Just("/api/profile-subscription-bulk-create-jobs".to_string()),
        Just("/api/orders".to_string()),
        Just("/api/orders/cancelled".to_string()),
        Just("/api/lists/Y6nRLr/profiles".to_string()),
        "/api/lists/[^/]{0,70}/profiles",
        Just("/client/events".to_string()),
        Just("/webhooks/klaviyo".to_string()),
        Just("/health".to_string()),
        "/[a-z/%.]{0,30}",
    ]
}

/// JSON-ish text aimed at the parser's edges.
fn nasty_json() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (1usize..3000).prop_map(|n| ("[".repeat(n) + &"]".repeat(n)).into_bytes()),
        (1usize..3000).prop_map(|n| (r#"{"a":"#.repeat(n) + "1" + &"}".repeat(n)).into_bytes()),
        Just(br#"{"data":{"attributes":{"value":0e2147483647,"n":1e999999999}}}"#.to_vec()),
        Just(br#"{"a":"\ud800","b":"\udfff\ud800x"}"#.to_vec()),
        Just(br#"{"data":{"type":"event","type":"event"}}"#.to_vec()),
        Just(b"\xEF\xBB\xBF{}".to_vec()),
        Just(b"{\"a\":\"\xff\xfe\"}".to_vec()),
        "[ -~]{0,200}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..300),
    ]
}

/// A valid `/api/events` body, possibly with a duplicate key spliced in.
fn event_body() -> impl Strategy<Value = Vec<u8>> {
    ("[A-Za-z ]{1,20}", any::<bool>(), any::<bool>()).prop_map(|(metric, dup, extra)| {
        let name = if dup {
            format!(r#""name":"Started Checkout","name":"{metric}""#)
        } else {
            format!(r#""name":"{metric}""#)
        };
        let attrs = if extra {
            r#"{"email":"a@b.co","first_name":"Ann"}"#
        } else {
            r#"{"email":"a@b.co"}"#
        };
        format!(
            r#"{{"data":{{"type":"event","attributes":{{"properties":{{}},"metric":{{"data":{{"type":"metric","attributes":{{{name}}}}}}},"profile":{{"data":{{"type":"profile","attributes":{attrs}}}}}}}}}}}"#
        )
        .into_bytes()
    })
}

/// A valid-looking event whose properties are `inner`.
fn event_around(inner: &str, metric: &str) -> Vec<u8> {
    format!(
        r#"{{"data":{{"type":"event","attributes":{{"properties":{{"a":{inner}}},"metric":{{"data":{{"type":"metric","attributes":{{"name":"{metric}"}}}}}},"profile":{{"data":{{"type":"profile","attributes":{{"email":"a@b.co"}}}}}}}}}}}}"#
    )
    .into_bytes()
}

/// The shapes of memory attacks, 5 KB to 400 KB (the bound is a multiple of the size,
/// so small ones show it as well as 5 MB would): what a tree of them would cost is
/// tens of times their size.
fn bulky() -> impl Strategy<Value = Vec<u8>> {
    let metric = prop_oneof![Just("Started Checkout"), Just("Not Allowed")];
    let n = 1_000usize..60_000;
    prop_oneof![
        (n.clone(), metric.clone()).prop_map(|(n, m)| {
            event_around(&format!("[{}0]", "0,".repeat(n)), m)
        }),
        (n.clone(), metric.clone()).prop_map(|(n, m)| {
            let keys: Vec<String> = (0..n / 2).map(|i| format!(r#""{i:x}":0"#)).collect();
            event_around(&format!("{{{}}}", keys.join(",")), m)
        }),
        (n.clone(), metric.clone()).prop_map(|(n, m)| {
            let keys: Vec<String> = (0..n / 4).map(|i| format!(r#""\u0041{i:x}":[]"#)).collect();
            event_around(&format!("{{{}}}", keys.join(",")), m)
        }),
        (n.clone(), metric).prop_map(|(n, m)| {
            event_around(&format!("[{}\"\"]", "\"abcdefgh\",".repeat(n / 4)), m)
        }),
        n.clone().prop_map(|n| {
            let entry = r#"{"type":"event-bulk-create","attributes":{"profile":{"data":{"type":"profile","attributes":{"email":"a@b.co"}}},"events":{"data":[]}}}"#;
            format!(
                r#"{{"data":{{"type":"event-bulk-create-job","attributes":{{"events-bulk-create":{{"data":[{}]}}}}}}}}"#,
                vec![entry; n / 100 + 1].join(",")
            )
            .into_bytes()
        }),
        n.clone().prop_map(|n| {
            format!(
                r#"{{"order_id":"1","value":1,"profile":{{"email":"a@b.co"}},"items":[{{"product_id":"p","name":"n","quantity":1,"price":1}}],"properties":{{"a":[{}0]}}}}"#,
                "0,".repeat(n)
            )
            .into_bytes()
        }),
        n.prop_map(|n| {
            format!(r#"{{"profiles":[{}]}}"#, vec![r#"{"email":"a@b.co"}"#; n / 20 + 1].join(","))
                .into_bytes()
        }),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![4 => nasty_json(), 2 => event_body(), 1 => bulky()]
}

/// An `Origin`: the shop's in another spelling, another site, or 100 KB of junk.
fn origin() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("https://shop.example".to_string())),
        (0usize..40, any::<bool>()).prop_map(|(slashes, upper)| {
            let o = format!("https://shop.example{}", "/".repeat(slashes));
            Some(if upper { o.to_ascii_uppercase() } else { o })
        }),
        Just(Some("https://evil.example".to_string())),
        long_header(),
    ]
}

/// 1 KB to 100 KB of one printable character, or of a short printable pattern.
fn long_header() -> impl Strategy<Value = Option<String>> {
    ("[ -~]{1,8}", 1_000usize..100_000).prop_map(|(unit, len)| {
        let mut s = unit.repeat(len / unit.len() + 1);
        s.truncate(len);
        Some(s)
    })
}

/// Where the caller's address comes from, and what the caller's headers claim.
fn peer() -> impl Strategy<Value = (u8, Option<String>, Option<String>)> {
    let addr = prop_oneof![
        Just(None),
        Just(Some("203.0.113.7".to_string())),
        Just(Some("2001:db8:1:2::9".to_string())),
        "[ -~]{0,64}".prop_map(Some),
        long_header(),
    ];
    (0u8..3, addr.clone(), addr)
}

/// The most heap a request of `size` bytes (body and headers) to `path` may hold at
/// its peak, natively. The worker's bound in wasm is 4 times the body; pointers and
/// `String`s are twice as wide natively, so 8 times here. Then 256 KB that does not
/// follow the size: the decision and its answer, and a capped list of small elements
/// (held whole until its rules run: a list member is 96 bytes natively, `{}` 3 bytes of
/// text). Order lines are larger, 200 bytes natively whatever they hold, and 999 of
/// them hold 300 KB at the peak of their storage's last doubling (1,024 beside the
/// 512 they grew from): a fixed part of their own.
fn native_bound(path: &str, size: usize) -> usize {
    let order_lines = if path.starts_with("/api/orders") {
        320 * 1024
    } else {
        0
    };
    8 * size + 256 * 1024 + order_lines
}

/// How the request is signed: not at all, right, or wrong (any header text).
#[derive(Clone, Debug)]
enum Signed {
    No,
    Right { ts_offset: i64 },
    Garbage(String),
    ExtremeTime(i64),
}

fn signed() -> impl Strategy<Value = Signed> {
    prop_oneof![
        Just(Signed::No),
        (-400i64..400).prop_map(|ts_offset| Signed::Right { ts_offset }),
        ".{0,80}".prop_map(Signed::Garbage),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), any::<i64>()].prop_map(Signed::ExtremeTime),
    ]
}

fn is_jsonapi_error(r: &Reply) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.body) else {
        return false;
    };
    let Some(errors) = v["errors"].as_array() else {
        return false;
    };
    !errors.is_empty()
        && errors.iter().all(|e| {
            ["code", "title", "detail", "status"]
                .iter()
                .all(|k| e[k].is_string())
                && e["status"].as_str() == Some(r.status.to_string().as_str())
        })
}

fn known_success(r: &Reply) -> bool {
    (r.status == 204 && r.body.is_empty())
        || (r.status == 200 && r.body.starts_with(r#"{"ok":true"#))
}

fn leaks(r: &Reply) -> bool {
    r.body.contains(PRIVATE)
        || r.body.contains(SIGNING)
        || r.body.contains(WEBHOOK)
        || r.headers
            .iter()
            .any(|(_, v)| v.contains(PRIVATE) || v.contains(SIGNING))
}

fn check_reply(r: &Reply) -> Result<(), TestCaseError> {
    prop_assert!(!leaks(r), "a secret in an answer: {r:?}");
    if r.status >= 400 {
        prop_assert!(is_jsonapi_error(r), "not a JSON:API error: {r:?}");
    } else {
        prop_assert!(known_success(r), "an unexpected success: {r:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fuzz_the_router(
        method in method(),
        path in path(),
        body in body(),
        signed in signed(),
        origin in origin(),
        peer in peer(),
        webhook_ts in prop_oneof![Just(None), any::<i64>().prop_map(|t| Some(t.to_string())), Just(Some("1795669339".to_string()))],
        status in prop_oneof![Just(0u16), 100u16..600],
        retry_after in prop_oneof![Just(None), ".{0,40}".prop_map(Some), Just(Some("Sun, 06 Nov 1994 08:49:37 GMT".to_string()))],
    ) {
        let cfg = config();
        let now_s = (NOW_MS / 1000) as i64;
        let mut headers: Vec<(String, String)> = Vec::new();
        if let Some(o) = &origin {
            headers.push(("origin".into(), o.clone()));
        }
        let (peer_kind, given, claimed) = &peer;
        if let Some(c) = claimed {
            headers.push(("cf-connecting-ip".into(), c.clone()));
            headers.push(("x-forwarded-for".into(), c.clone()));
        }
        let peer = match peer_kind {
            0 => ratelimit::Peer::Cloudflare,
            1 => ratelimit::Peer::Given(given.as_deref()),
            _ => ratelimit::Peer::Given(None),
        };
        match &signed {
            Signed::No => {}
            Signed::Right { ts_offset } => headers.push((
                "x-klaviyo-edge-signature".into(),
                auth::sign_backend(auth::Signed { method: &method, path: path.split('?').next().unwrap_or(""), body: &body }, SIGNING, now_s + ts_offset),
            )),
            Signed::Garbage(g) => headers.push(("x-klaviyo-edge-signature".into(), g.clone())),
            Signed::ExtremeTime(t) => headers.push((
                "x-klaviyo-edge-signature".into(),
                format!("t={t},v1={}", "0".repeat(64)),
            )),
        }
        if let Some(ts) = &webhook_ts {
            headers.push(("klaviyo-timestamp".into(), ts.clone()));
            headers.push(("klaviyo-signature".into(), "00".repeat(32)));
            headers.push(("klaviyo-webhook-id".into(), "wh-1".into()));
        }
        let (p, q) = path.split_once('?').unwrap_or((&path, ""));
        let req = Incoming {
            method: &method,
            path: p,
            query: if p.starts_with("/client/") { "company_id=AbC123" } else { q },
            headers: &headers,
            peer,
            body: &body,
            too_large: false,
            bot_score: None,
            now_ms: NOW_MS,
        };
        let (d, peak) = crate::test_heap::peak_during(|| decide(&req, &cfg));
        let size = body.len() + headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        prop_assert!(peak <= native_bound(p, size), "{peak} bytes at the peak for a request of {size}");
        // Every spelling of the shop's origin is one client.
        if let (Some(key), Some(o)) = (&d.gate.rate_key, &origin) {
            let canonical = Incoming { headers: &[("origin".into(), "https://shop.example".into())], ..req };
            let mut same = headers.clone();
            same.retain(|(k, _)| k != "origin");
            same.push(("origin".into(), "https://shop.example".into()));
            let d2 = decide(&Incoming { headers: &same, ..canonical }, &cfg);
            prop_assert_eq!(d2.gate.rate_key.as_ref(), Some(key), "{}", o.len());
        }
        let mut state = EdgeState::default();
        if let Ok(cfg) = &cfg {
            if let Err(r) = state.admit(&d.gate, cfg, NOW_MS) {
                check_reply(&r)?;
            }
        }
        let cors = match &d.action {
            Action::Reply(r) => {
                check_reply(r)?;
                None
            }
            Action::ReplyAndNotify { reply, notify } => {
                check_reply(reply)?;
                prop_assert!(!String::from_utf8_lossy(notify.body.bytes(&body)).contains(PRIVATE));
                None
            }
            Action::Forward(f) => {
                prop_assert!(f.url.starts_with("https://a.klaviyo.com/"));
                f.cors.clone()
            }
            Action::AddToList { cors, .. } => cors.clone(),
            Action::DeadLetters(_) => None,
        };
        // Whatever upstream answers, the caller's answer is well-formed and leaks nothing.
        let outcome = if status == 0 {
            Upstream::Failed
        } else {
            Upstream::Answered { status, retry_after, content_type: Some(JSONAPI.into()), body: r#"{"errors":[{"status":"500","code":"x","title":"x","detail":"x"}]}"#.into() }
        };
        match after_upstream(2, outcome, cors.as_deref(), NOW_MS) {
            Next::Reply(r) => prop_assert!(!leaks(&r)),
            Next::RetryIn(ms) => prop_assert!(ms <= 1_000),
        }
    }
}

/// The bound at every growth of a kept list: a list's storage doubles as it grows, so
/// the element counts just past a power of two hold the most per byte of body. The
/// fuzz meets these shapes only now and then; here each route that keeps a list is
/// sent its smallest elements at each such count.
#[test]
fn kept_lists_stay_within_the_heap_bound_at_every_size() {
    let cfg = config();
    let now_s = (NOW_MS / 1000) as i64;
    // (route, the body around a list, the list's smallest element)
    let shapes: [(&str, &str, &str); 6] = [
        (
            "/api/event-bulk-create-jobs",
            r#"{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":[LIST]}}}}"#,
            r#"{"type":"event-bulk-create","attributes":{"profile":{"data":{"type":"profile","attributes":{}}},"events":{"data":[]}}}"#,
        ),
        (
            "/api/event-bulk-create-jobs",
            r#"{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":[LIST]}}}}"#,
            r#"{"type":"event-bulk-create","attributes":{"profile":{"data":{"type":"profile","attributes":{}}},"events":{"data":[{"type":"event","attributes":{"properties":{},"metric":{"data":{"type":"metric","attributes":{"name":"x"}}}}}]}}}"#,
        ),
        (
            "/api/event-bulk-create-jobs",
            r#"{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":[{"type":"event-bulk-create","attributes":{"profile":{"data":{"type":"profile","attributes":{}}},"events":{"data":[LIST]}}}]}}}}"#,
            r#"{"type":"event","attributes":{"properties":{},"metric":{"data":{"type":"metric","attributes":{"name":"x"}}}}}"#,
        ),
        (
            "/api/profile-subscription-bulk-create-jobs",
            r#"{"data":{"type":"profile-subscription-bulk-create-job","attributes":{"profiles":{"data":[LIST]}}}}"#,
            r#"{"type":"profile","attributes":{"subscriptions":{}}}"#,
        ),
        ("/api/lists/L1/profiles", r#"{"profiles":[LIST]}"#, "{}"),
        ("/api/orders", r#"{"order_id":"1","items":[LIST]}"#, "{}"),
    ];
    for (path, around, element) in shapes {
        let mut worst = 0.0f64;
        for n in [
            1, 2, 3, 5, 9, 17, 33, 65, 129, 257, 513, 519, 590, 769, 999, 1000, 1001, 1025,
        ] {
            let body = around
                .replace("LIST", &vec![element; n].join(","))
                .into_bytes();
            let signature = auth::sign_backend(
                auth::Signed {
                    method: "POST",
                    path,
                    body: &body,
                },
                SIGNING,
                now_s,
            );
            let headers = vec![("x-klaviyo-edge-signature".to_string(), signature)];
            let req = Incoming {
                method: "POST",
                path,
                query: "",
                headers: &headers,
                peer: ratelimit::Peer::Cloudflare,
                body: &body,
                too_large: false,
                bot_score: None,
                now_ms: NOW_MS,
            };
            let (d, peak) = crate::test_heap::peak_during(|| decide(&req, &cfg));
            assert!(
                !matches!(d.action, Action::Reply(ref r) if r.status == 401),
                "not signed: {path}"
            );
            let size = body.len()
                + headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>();
            worst = worst.max(peak as f64 / native_bound(path, size) as f64);
            assert!(
                peak <= native_bound(path, size),
                "{peak} bytes at the peak for {n} elements on {path}, {size} bytes"
            );
        }
        println!(
            "{path}, elements of {} bytes: the peak heap is at most {:.0} % of the bound",
            element.len(),
            worst * 100.0
        );
    }
}
