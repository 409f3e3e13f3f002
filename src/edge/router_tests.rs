//! Every route decision and the upstream policy, natively, with a fixed clock.

use super::*;
use crate::edge::crypto::{hex, hmac_sha256};

const NOW_MS: u64 = 1_795_669_339_000;
const PRIVATE: &str = "pk_TEST_9f8e7d6c5b4a39281706";
const SIGNING: &str = "edge-signing-5e4d3c2b1a";
const WEBHOOK: &str = "whsec-1a2b3c4d5e6f7a8b";
const SHOP: &str = "https://shop.example";

fn settings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("KLAVIYO_PRIVATE_KEY", PRIVATE),
        ("KLAVIYO_PUBLIC_KEY", "AbC123"),
        ("ALLOWED_ORIGINS", "https://shop.example"),
        ("KLAVIYO_API_BASE", "http://127.0.0.1:8787"),
        ("EDGE_SIGNING_SECRET", SIGNING),
        ("BROWSER_SERVER_METRICS", "Started Checkout"),
        ("KLAVIYO_WEBHOOK_SECRET", WEBHOOK),
    ]
}

fn config_from(pairs: &[(&str, &str)]) -> Result<EdgeConfig, ConfigError> {
    EdgeConfig::from_env(|k| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
}

fn config() -> Result<EdgeConfig, ConfigError> {
    config_from(&settings())
}

struct Req {
    method: &'static str,
    path: &'static str,
    query: String,
    headers: Vec<(String, String)>,
    body: String,
    too_large: bool,
}

fn post(path: &'static str, body: &str) -> Req {
    Req {
        method: "POST",
        path,
        query: String::new(),
        headers: Vec::new(),
        body: body.to_string(),
        too_large: false,
    }
}

impl Req {
    fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    fn query(mut self, q: &str) -> Req {
        self.query = q.to_string();
        self
    }
    fn signed(self) -> Req {
        let sig = auth::sign_backend(&self.body, SIGNING, (NOW_MS / 1000) as i64);
        self.header("x-klaviyo-edge-signature", &sig)
    }
    fn run_with(&self, cfg: Result<EdgeConfig, ConfigError>) -> Action {
        let inc = Incoming {
            method: self.method,
            path: self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
            too_large: self.too_large,
            now_ms: NOW_MS,
        };
        let action = decide(&inc, cfg);
        assert_no_secret(&action);
        action
    }
    fn run(&self) -> Action {
        self.run_with(config())
    }
}

/// No decision ever carries a secret back to the caller.
fn assert_no_secret(a: &Action) {
    let reply = match a {
        Action::Reply(r) | Action::ReplyAndNotify { reply: r, .. } => r,
        Action::Forward(_) => return,
    };
    let text = reply.to_json().to_text();
    for s in [PRIVATE, SIGNING, WEBHOOK] {
        assert!(!text.contains(s), "secret leaked in {text}");
    }
}

fn status(a: &Action) -> u16 {
    match a {
        Action::Reply(r) | Action::ReplyAndNotify { reply: r, .. } => r.status,
        Action::Forward(_) => 0,
    }
}

fn detail(a: &Action) -> String {
    match a {
        Action::Reply(r) => r.body.clone(),
        _ => String::new(),
    }
}

fn forward(a: Action) -> Forward {
    match a {
        Action::Forward(f) => f,
        other => panic!("expected a forward, got {other:?}"),
    }
}

fn event_body(metric: &str) -> String {
    format!(
        r#"{{"data":{{"type":"event","attributes":{{"properties":{{}},"metric":{{"data":{{"type":"metric","attributes":{{"name":"{metric}"}}}}}},"profile":{{"data":{{"type":"profile","attributes":{{"email":"a@b.co"}}}}}}}}}}}}"#
    )
}

#[test]
fn preflight_answers_allowed_origins_only() {
    let mut r = post("/client/events", "");
    r.method = "OPTIONS";
    let ok = r.header("origin", SHOP).run();
    let Action::Reply(reply) = &ok else { panic!() };
    assert_eq!(reply.status, 204);
    assert!(reply
        .headers
        .contains(&("access-control-allow-origin".into(), SHOP.into())));
    assert!(reply
        .headers
        .iter()
        .any(|(k, v)| k == "access-control-allow-headers" && v.contains("revision")));
    let mut r = post("/client/events", "");
    r.method = "OPTIONS";
    let bad = r.header("origin", "https://evil.example").run();
    assert_eq!(status(&bad), 403);
    let Action::Reply(reply) = bad else { panic!() };
    assert!(reply
        .headers
        .iter()
        .all(|(k, _)| !k.starts_with("access-control")));
}

#[test]
fn client_requests_are_proxied_with_the_revision_and_nothing_else() {
    let f = forward(
        post("/client/events", &event_body("Viewed Product"))
            .query("company_id=AbC123")
            .header("origin", SHOP)
            .header("revision", "2026-07-15")
            .header("cookie", "session=abc")
            .header("authorization", "Bearer x")
            .run(),
    );
    assert_eq!(
        f.url,
        "http://127.0.0.1:8787/client/events?company_id=AbC123"
    );
    assert_eq!(
        f.headers,
        vec![
            ("content-type", "application/vnd.api+json".to_string()),
            ("revision", "2026-07-15".to_string())
        ]
    );
    assert_eq!(f.cors.as_deref(), Some(SHOP));
}

#[test]
fn client_requests_for_another_company_or_origin_are_forbidden() {
    let other = post("/client/events", "{}")
        .query("company_id=XyZ789")
        .run();
    assert_eq!(status(&other), 403);
    let bad_origin = post("/client/events", "{}")
        .query("company_id=AbC123")
        .header("origin", "https://evil.example")
        .run();
    assert_eq!(status(&bad_origin), 403);
    let malformed = post("/client/events", "{not json")
        .query("company_id=AbC123")
        .run();
    assert_eq!(status(&malformed), 400);
}

#[test]
fn signed_api_requests_carry_the_private_key_upstream() {
    let f = forward(
        post("/api/events", &event_body("Placed Order"))
            .signed()
            .run(),
    );
    assert_eq!(f.url, "http://127.0.0.1:8787/api/events");
    assert!(f
        .headers
        .contains(&("authorization", format!("Klaviyo-API-Key {PRIVATE}"))));
    assert!(f.headers.contains(&("revision", "2026-07-15".into())));
}

#[test]
fn unsigned_stale_or_tampered_api_requests_are_unauthorized() {
    assert_eq!(
        status(&post("/api/events", &event_body("Placed Order")).run()),
        401
    );
    let mut tampered = post("/api/events", &event_body("Placed Order")).signed();
    tampered.body = event_body("Placed 0rder");
    assert_eq!(status(&tampered.run()), 401);
    let old = auth::sign_backend(&event_body("M"), SIGNING, (NOW_MS / 1000) as i64 - 301);
    let stale = post("/api/events", &event_body("M")).header("x-klaviyo-edge-signature", &old);
    assert_eq!(status(&stale.run()), 401);
    assert!(detail(&stale.run()).contains("5-minute"));
}

#[test]
fn browsers_may_send_listed_metrics_to_api_events_only() {
    let f = forward(
        post("/api/events", &event_body("Started Checkout"))
            .header("origin", SHOP)
            .run(),
    );
    assert!(f.headers.iter().any(|(k, _)| *k == "authorization"));
    assert_eq!(f.cors.as_deref(), Some(SHOP));
    let other = post("/api/events", &event_body("Placed Order"))
        .header("origin", SHOP)
        .run();
    assert_eq!(status(&other), 403);
    let import = post(
        "/api/profile-import",
        r#"{"data":{"type":"profile","attributes":{"email":"a@b.co"}}}"#,
    )
    .header("origin", SHOP)
    .run();
    assert_eq!(status(&import), 403);
    let evil = post("/api/events", &event_body("Started Checkout"))
        .header("origin", "https://evil.example")
        .run();
    assert_eq!(status(&evil), 403);
}

#[test]
fn invalid_api_bodies_are_refused_with_a_pointer() {
    let a = post("/api/events", &event_body("")).signed().run();
    assert_eq!(status(&a), 400);
    assert!(detail(&a).contains("/data/attributes/metric/data/attributes/name"));
    let m = post("/api/events", "{oops").signed().run();
    assert_eq!(status(&m), 400);
}

#[test]
fn every_api_route_validates_its_own_body() {
    let import = r#"{"data":{"type":"profile","attributes":{"external_id":"c-1"}}}"#;
    forward(post("/api/profile-import", import).signed().run());
    let sub = r#"{"data":{"type":"profile-subscription-bulk-create-job","attributes":{"profiles":{"data":[{"type":"profile","attributes":{"email":"a@b.co","subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED"}}}}}]}}}}"#;
    forward(
        post("/api/profile-subscription-bulk-create-jobs", sub)
            .signed()
            .run(),
    );
    let bad_bulk = r#"{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":[]}}}}"#;
    assert_eq!(
        status(&post("/api/event-bulk-create-jobs", bad_bulk).signed().run()),
        400
    );
}

#[test]
fn a_missing_setting_is_a_500_that_names_it() {
    let without = |name: &str| -> Vec<(&'static str, &'static str)> {
        settings().into_iter().filter(|(k, _)| *k != name).collect()
    };
    let cases = [
        (
            "KLAVIYO_PRIVATE_KEY",
            post("/api/events", &event_body("M")).signed(),
        ),
        (
            "EDGE_SIGNING_SECRET",
            post("/api/events", &event_body("M")).header("x-klaviyo-edge-signature", "t=1,v1=00"),
        ),
        (
            "KLAVIYO_PUBLIC_KEY",
            post("/client/events", "{}").query("company_id=AbC123"),
        ),
        ("KLAVIYO_WEBHOOK_SECRET", post("/webhooks/klaviyo", "{}")),
    ];
    for (name, req) in cases {
        let a = req.run_with(config_from(&without(name)));
        assert_eq!(status(&a), 500, "{name}");
        assert!(detail(&a).contains(name), "{}", detail(&a));
    }
    let bad = config_from(&[("KLAVIYO_PUBLIC_KEY", "not-a-key-but-a-secret")]);
    let a = post("/client/events", "{}").run_with(bad);
    assert_eq!(status(&a), 500);
    assert!(!detail(&a).contains("not-a-key-but-a-secret"));
}

fn webhook_req(body: &str, ts: &str, header_id: &str, secret: &str) -> Req {
    let sig = hex(&hmac_sha256(
        secret.as_bytes(),
        &[body.as_bytes(), ts.as_bytes()],
    ));
    post("/webhooks/klaviyo", body)
        .header("klaviyo-signature", &sig)
        .header("klaviyo-timestamp", ts)
        .header("klaviyo-webhook-id", header_id)
}

#[test]
fn webhooks_are_verified_and_forwarded() {
    let body =
        r#"{"data":[{"topic":"event:klaviyo.sent_sms"}],"meta":{"klaviyo_webhook_id":"wh_1"}}"#;
    let now = "1795669339";
    assert_eq!(status(&webhook_req(body, now, "wh_1", WEBHOOK).run()), 200);
    assert_eq!(status(&webhook_req(body, now, "wh_2", WEBHOOK).run()), 401);
    assert_eq!(
        status(&webhook_req(body, "1795669000", "wh_1", WEBHOOK).run()),
        401
    );
    assert_eq!(status(&webhook_req(body, now, "wh_1", "wrong").run()), 401);
    let mut tampered = webhook_req(body, now, "wh_1", WEBHOOK);
    tampered.body = body.replace("sent_sms", "clicked_sms");
    assert_eq!(status(&tampered.run()), 401);
    assert_eq!(
        status(&webhook_req("not json", now, "wh_1", WEBHOOK).run()),
        400
    );
    let mut with_forward = settings();
    with_forward.push(("WEBHOOK_FORWARD_URL", "http://127.0.0.1:9999/hook"));
    match webhook_req(body, now, "wh_1", WEBHOOK).run_with(config_from(&with_forward)) {
        Action::ReplyAndNotify {
            reply,
            url,
            body: fwd,
        } => {
            assert_eq!(reply.status, 200);
            assert_eq!(url, "http://127.0.0.1:9999/hook");
            assert_eq!(fwd, body);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_route_prefix_is_stripped() {
    let mut with_prefix = settings();
    with_prefix.push(("ROUTE_PREFIX", "/klaviyo/"));
    let mut r = post("/klaviyo/health", "");
    r.method = "GET";
    assert_eq!(status(&r.run_with(config_from(&with_prefix))), 200);
    let f = forward(
        post("/klaviyo/client/events", &event_body("M"))
            .query("company_id=AbC123")
            .run_with(config_from(&with_prefix)),
    );
    assert_eq!(
        f.url,
        "http://127.0.0.1:8787/client/events?company_id=AbC123"
    );
}

#[test]
fn size_routes_and_methods() {
    let mut big = post("/client/events", "{}").query("company_id=AbC123");
    big.too_large = true;
    assert_eq!(status(&big.run()), 413);
    assert_eq!(status(&post("/nope", "{}").run()), 404);
    let mut get = post("/api/events", "");
    get.method = "GET";
    assert_eq!(status(&get.run()), 405);
    let mut health = post("/health", "");
    health.method = "GET";
    assert_eq!(status(&health.run()), 200);
}

fn answered(status: u16, retry_after: Option<&str>) -> Upstream {
    Upstream::Answered {
        status,
        retry_after: retry_after.map(str::to_string),
        content_type: Some("application/vnd.api+json".into()),
        body: String::new(),
    }
}

#[test]
fn upstream_429_is_passed_back_or_retried_once_when_short() {
    match after_upstream(0, answered(429, Some("5")), Some(SHOP)) {
        Next::Reply(r) => {
            assert_eq!(r.status, 429);
            assert!(r.headers.contains(&("retry-after".into(), "5".into())));
            assert!(r
                .headers
                .contains(&("access-control-expose-headers".into(), "retry-after".into())));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        after_upstream(0, answered(429, Some("1")), None),
        Next::RetryIn(1000)
    );
    assert!(
        matches!(after_upstream(1, answered(429, Some("1")), None), Next::Reply(r) if r.status == 429)
    );
}

#[test]
fn upstream_failures_retry_with_backoff_then_502() {
    assert_eq!(
        after_upstream(0, answered(503, None), None),
        Next::RetryIn(200)
    );
    assert_eq!(
        after_upstream(1, Upstream::Failed, None),
        Next::RetryIn(400)
    );
    assert!(
        matches!(after_upstream(2, answered(500, None), None), Next::Reply(r) if r.status == 502)
    );
    assert!(
        matches!(after_upstream(0, answered(202, None), None), Next::Reply(r) if r.status == 202)
    );
    assert!(
        matches!(after_upstream(0, answered(400, None), None), Next::Reply(r) if r.status == 400)
    );
}
