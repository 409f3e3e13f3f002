//! Every route decision and the upstream policy, natively, with a fixed clock; and each
//! safeguard of the worker shown holding (a duplicate metric name, redirects, timestamps,
//! signed bytes, who is asking, replays, Retry-After dates, the browser path).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::*;
use crate::edge::config::Settings;

const NOW_MS: u64 = 1_795_669_339_000;
const NOW_S: i64 = 1_795_669_339;
const PRIVATE: &str = "pk_TEST_9f8e7d6c5b4a39281706";
const SIGNING: &str = "edge-signing-5e4d3c2b1a";
const WEBHOOK: &str = "whsec-1a2b3c4d5e6f7a8b";
const SHOP: &str = "https://shop.example";

fn settings() -> serde_json::Value {
    serde_json::json!({
        "KLAVIYO_PRIVATE_KEY": PRIVATE,
        "KLAVIYO_PUBLIC_KEY": "AbC123",
        "ALLOWED_ORIGINS": SHOP,
        "KLAVIYO_API_BASE": "http://127.0.0.1:8787",
        "EDGE_SIGNING_SECRET": SIGNING,
        "BROWSER_SERVER_METRICS": "Started Checkout",
        "KLAVIYO_WEBHOOK_SECRET": WEBHOOK,
        "BROWSER_RATE_PER_MINUTE": 20,
    })
}

fn config_from(v: serde_json::Value) -> Result<EdgeConfig, ConfigError> {
    let s: Settings = serde_json::from_value(v).expect("settings");
    EdgeConfig::from_settings(&s)
}

fn config() -> Result<EdgeConfig, ConfigError> {
    config_from(settings())
}

fn with(key: &str, value: serde_json::Value) -> Result<EdgeConfig, ConfigError> {
    let mut s = settings();
    s[key] = value;
    config_from(s)
}

fn without(key: &str) -> Result<EdgeConfig, ConfigError> {
    let mut s = settings();
    if let Some(o) = s.as_object_mut() {
        o.remove(key);
    }
    config_from(s)
}

struct Req {
    method: &'static str,
    path: &'static str,
    query: String,
    headers: Vec<(String, String)>,
    peer: Peer<'static>,
    body: Vec<u8>,
    too_large: bool,
    bot_score: Option<u8>,
}

fn post(path: &'static str, body: &str) -> Req {
    post_bytes(path, body.as_bytes())
}

fn post_bytes(path: &'static str, body: &[u8]) -> Req {
    Req {
        method: "POST",
        path,
        query: String::new(),
        headers: Vec::new(),
        peer: Peer::Cloudflare,
        body: body.to_vec(),
        too_large: false,
        bot_score: None,
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
    fn method(mut self, m: &'static str) -> Req {
        self.method = m;
        self
    }
    fn signed(self) -> Req {
        self.signed_at(NOW_S)
    }
    fn signed_at(self, t: i64) -> Req {
        let route = self.path;
        self.signed_for(route, t)
    }
    /// Signed for `route` (the path below the route prefix).
    fn signed_for(self, route: &str, t: i64) -> Req {
        let what = auth::Signed {
            method: self.method,
            path: route,
            body: &self.body,
        };
        let sig = auth::sign_backend(what, SIGNING, t);
        self.header("x-klaviyo-edge-signature", &sig)
    }
    fn bot_score(mut self, score: u8) -> Req {
        self.bot_score = Some(score);
        self
    }
    fn peer(mut self, peer: Peer<'static>) -> Req {
        self.peer = peer;
        self
    }
    fn run_with(&self, cfg: &Result<EdgeConfig, ConfigError>) -> Decision {
        let inc = Incoming {
            method: self.method,
            path: self.path,
            query: &self.query,
            headers: &self.headers,
            peer: self.peer,
            body: &self.body,
            too_large: self.too_large,
            bot_score: self.bot_score,
            now_ms: NOW_MS,
        };
        let d = decide(&inc, cfg);
        assert_no_secret(&d.action);
        d
    }
    fn run(&self) -> Action {
        self.run_with(&config()).action
    }
}

/// No answer ever carries a secret back to the caller.
fn assert_no_secret(a: &Action) {
    let reply = match a {
        Action::Reply(r) | Action::ReplyAndNotify { reply: r, .. } => r,
        _ => return,
    };
    let text = format!("{:?} {}", reply.headers, reply.body);
    for s in [PRIVATE, SIGNING, WEBHOOK] {
        assert!(!text.contains(s), "secret leaked in {text}");
    }
}

fn status(a: &Action) -> u16 {
    match a {
        Action::Reply(r) | Action::ReplyAndNotify { reply: r, .. } => r.status,
        _ => 0,
    }
}

fn detail(a: &Action) -> String {
    match a {
        Action::Reply(r) => r.body.clone(),
        _ => String::new(),
    }
}

/// An answer with no CORS header at all: one the calling page cannot read.
fn no_cors(r: &Reply) -> bool {
    r.headers
        .iter()
        .all(|(k, _)| !k.starts_with("access-control"))
}

fn forward(a: Action) -> Forward {
    match a {
        Action::Forward(f) => f,
        other => panic!("expected a forward, got {other:?}"),
    }
}

fn event_body(metric: &str) -> String {
    event_with(&format!(r#""name":"{metric}""#), r#"{"email":"a@b.co"}"#)
}

fn event_with(name_members: &str, profile: &str) -> String {
    format!(
        r#"{{"data":{{"type":"event","attributes":{{"properties":{{}},"metric":{{"data":{{"type":"metric","attributes":{{{name_members}}}}}}},"profile":{{"data":{{"type":"profile","attributes":{profile}}}}}}}}}}}"#
    )
}

fn webhook_sig(body: &[u8], ts: &str, secret: &str) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(body);
    m.update(ts.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

fn webhook_req(body: &str, ts: &str, header_id: &str, secret: &str) -> Req {
    post("/webhooks/klaviyo", body)
        .header(
            "klaviyo-signature",
            &webhook_sig(body.as_bytes(), ts, secret),
        )
        .header("klaviyo-timestamp", ts)
        .header("klaviyo-webhook-id", header_id)
}

const WEBHOOK_BODY: &str =
    r#"{"data":[{"topic":"event:klaviyo.sent_sms"}],"meta":{"klaviyo_webhook_id":"wh_1"}}"#;

#[test]
fn preflight_answers_allowed_origins_only() {
    let ok = post("/client/events", "")
        .method("OPTIONS")
        .header("origin", SHOP)
        .run();
    let Action::Reply(reply) = &ok else { panic!() };
    assert_eq!(reply.status, 204);
    assert!(reply
        .headers
        .contains(&("access-control-allow-origin".into(), SHOP.into())));
    let bad = post("/client/events", "")
        .method("OPTIONS")
        .header("origin", "https://evil.example")
        .run();
    assert_eq!(status(&bad), 403);
    let Action::Reply(reply) = bad else { panic!() };
    assert!(no_cors(&reply));
}

#[test]
fn client_requests_are_proxied_with_the_revision_and_the_visitors_user_agent_and_nothing_else() {
    const SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1";
    let f = forward(
        post("/client/events", &event_body("Viewed Product"))
            .query("company_id=AbC123")
            .header("origin", SHOP)
            .header("revision", "2026-07-15")
            .header("user-agent", SAFARI)
            .header("cookie", "session=abc")
            .header("authorization", "Bearer x")
            .header("accept-language", "de-CH")
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
            ("revision", "2026-07-15".to_string()),
            ("user-agent", SAFARI.to_string())
        ]
    );
    assert_eq!(f.cors.as_deref(), Some(SHOP));
    // A caller that names no browser is forwarded without one (not the worker's).
    let bare = forward(
        post("/client/events", &event_body("Viewed Product"))
            .query("company_id=AbC123")
            .run(),
    );
    assert!(bare.headers.iter().all(|(k, _)| *k != "user-agent"));
}

#[test]
fn only_calls_with_the_private_key_carry_the_workers_own_timeout() {
    // The /client proxy leaves the deadline to its caller (see Forward::timeout_ms).
    let client = forward(
        post("/client/events", &event_body("Viewed Product"))
            .query("company_id=AbC123")
            .header("origin", SHOP)
            .run(),
    );
    assert_eq!(client.timeout_ms, None);
    let cfg = with("UPSTREAM_TIMEOUT_MS", serde_json::json!("1234"));
    let api = forward(
        post("/api/events", &event_body("Placed Order"))
            .signed()
            .run_with(&cfg)
            .action,
    );
    assert_eq!(api.timeout_ms, Some(1234));
}

#[test]
fn client_requests_for_another_company_or_origin_or_with_bad_json_are_refused() {
    assert_eq!(
        status(
            &post("/client/events", "{}")
                .query("company_id=XyZ789")
                .run()
        ),
        403
    );
    let bad_origin = post("/client/events", "{}")
        .query("company_id=AbC123")
        .header("origin", "https://evil.example")
        .run();
    assert_eq!(status(&bad_origin), 403);
    assert_eq!(
        status(
            &post("/client/events", "{not json")
                .query("company_id=AbC123")
                .run()
        ),
        400
    );
    let dup = post(
        "/client/events",
        r#"{"data":{"type":"event","type":"profile"}}"#,
    )
    .query("company_id=AbC123");
    assert_eq!(
        status(&dup.run()),
        400,
        "duplicate keys are refused on every route"
    );
}

#[test]
fn signed_api_requests_carry_the_private_key_upstream_and_are_gated_for_replay() {
    let d = post("/api/events", &event_body("Placed Order"))
        .signed()
        .run_with(&config());
    assert!(d.gate.replay_key.is_some());
    assert_eq!(d.gate.rate_key, None);
    let f = forward(d.action);
    assert_eq!(f.url, "http://127.0.0.1:8787/api/events");
    assert!(f
        .headers
        .contains(&("authorization", format!("Klaviyo-API-Key {PRIVATE}"))));
    assert!(f.headers.contains(&("revision", "2026-07-15".into())));
    assert_eq!(
        f.body,
        Payload::AsReceived,
        "exactly the validated bytes go on (to the queue's plan, which makes them stable)"
    );
    // Sent by the worker itself: the event (no time) with the time the worker accepted
    // it, so that a retry after a timeout or a 5xx is the same event.
    let direct = |body: &str| {
        let d = post("/api/events", body).signed().run_with(&config());
        match super::direct(
            d.action,
            body.as_bytes(),
            &config().expect("config"),
            NOW_MS,
        ) {
            Action::Forward(f) => f.body,
            other => panic!("a forward: {other:?}"),
        }
    };
    let body = event_body("Placed Order");
    let stamped = r#""attributes":{"time":"2026-11-26T05:02:19Z","#;
    assert_eq!(
        direct(&body),
        Payload::Text(body.replacen(r#""attributes":{"#, stamped, 1))
    );
    let named = body.replacen(
        r#""attributes":{"#,
        r#""attributes":{"unique_id":"o-1","#,
        1,
    );
    assert_eq!(
        direct(&named),
        Payload::Text(named.replacen(r#""attributes":{"#, stamped, 1)),
        "with a unique_id and no time: given the time too"
    );
    let timed = body.replacen(
        r#""attributes":{"#,
        r#""attributes":{"time":"2026-01-02T03:04:05Z","#,
        1,
    );
    assert_eq!(
        direct(&timed),
        Payload::AsReceived,
        "with a time, as received"
    );
}

#[test]
fn unsigned_stale_or_tampered_api_requests_are_unauthorized() {
    assert_eq!(
        status(&post("/api/events", &event_body("Placed Order")).run()),
        401
    );
    let mut tampered = post("/api/events", &event_body("Placed Order")).signed();
    tampered.body = event_body("Placed 0rder").into_bytes();
    assert_eq!(status(&tampered.run()), 401);
    let stale = post("/api/events", &event_body("M")).signed_at(NOW_S - 301);
    assert_eq!(status(&stale.run()), 401);
    assert!(detail(&stale.run()).contains("5-minute") || detail(&stale.run()).contains("window"));
}

// ---- hole 1: duplicate keys ------------------------------------------------------------

#[test]
fn a_duplicate_metric_name_cannot_pass_the_browser_allow_list() {
    // Read first, "Started Checkout" is allowed; Klaviyo reads the last, "Placed Order".
    let body = event_with(
        r#""name":"Started Checkout","name":"Placed Order""#,
        r#"{"email":"a@b.co"}"#,
    );
    let a = post("/api/events", &body).header("origin", SHOP).run();
    assert_eq!(status(&a), 400, "{}", detail(&a));
    assert!(
        detail(&a).contains("/data/attributes/metric/data/attributes/name"),
        "{}",
        detail(&a)
    );
    assert_eq!(
        status(&post("/api/events", &body).signed().run()),
        400,
        "signed bodies too"
    );
}

// ---- hole 2: redirects and plain http ----------------------------------------------------

#[test]
fn a_redirect_from_upstream_is_never_followed_nor_retried() {
    for s in [301, 302, 303, 307, 308] {
        match after_upstream(0, answered(s, None), None, NOW_MS) {
            Next::Reply(r) => {
                assert_eq!(r.status, 502);
                assert!(r.body.contains("redirect"));
            }
            other => panic!("{s}: {other:?}"),
        }
    }
}

#[test]
fn the_private_key_only_goes_to_an_https_api_base() {
    let d = post("/api/events", &event_body("M"))
        .signed()
        .run_with(&with("KLAVIYO_API_BASE", "http://a.klaviyo.com".into()));
    assert_eq!(status(&d.action), 500);
    assert!(detail(&d.action).contains("KLAVIYO_API_BASE"));
    let f = forward(
        post("/api/events", &event_body("M"))
            .signed()
            .run_with(&with("KLAVIYO_API_BASE", "https://a.klaviyo.com".into()))
            .action,
    );
    assert!(f.url.starts_with("https://a.klaviyo.com/"));
}

// ---- hole 3: timestamps ---------------------------------------------------------------

#[test]
fn extreme_signed_timestamps_are_stale_not_wrapped_to_fresh() {
    for t in [i64::MIN, i64::MIN + 1, i64::MAX, NOW_S + 301, NOW_S - 301] {
        let r = post("/api/events", &event_body("M")).signed_at(t).run();
        assert_eq!(status(&r), 401, "t = {t}");
    }
    let wh = webhook_req(WEBHOOK_BODY, &i64::MIN.to_string(), "wh_1", WEBHOOK).run();
    assert_eq!(status(&wh), 401);
}

// ---- hole 4: raw bytes ----------------------------------------------------------------

#[test]
fn the_signature_covers_the_exact_bytes_and_bad_utf8_is_a_400() {
    // A BOM stays a BOM: the signature over those bytes verifies, then JSON refuses it.
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(event_body("M").as_bytes());
    let a = post_bytes("/api/events", &bom).signed().run();
    assert_eq!(status(&a), 400, "{}", detail(&a));
    // Bytes that are not UTF-8, signed: authenticated, then refused as such.
    let latin1 = b"{\"data\":\"caf\xe9\"}";
    let a = post_bytes("/api/events", latin1).signed().run();
    assert_eq!(status(&a), 400);
    assert!(detail(&a).contains("UTF-8"));
    // The same bytes unsigned: refused before anything reads them.
    assert_eq!(status(&post_bytes("/api/events", latin1).run()), 401);
}

// ---- hole 5: authenticate before parsing -------------------------------------------------

#[test]
fn who_is_asking_is_checked_before_the_body_is_parsed() {
    // A wrong signature on malformed JSON is a 401 (the old order answered 400).
    let wrong =
        post("/api/events", "{oops").header("x-klaviyo-edge-signature", "t=1795669339,v1=00");
    assert_eq!(status(&wrong.run()), 401);
    // Unsigned and from nowhere: 401, whatever the body.
    let big = "[".repeat(100_000);
    assert_eq!(status(&post("/api/events", &big).run()), 401);
    // A forged webhook is refused before its body is read.
    let forged = webhook_req("{oops", "1795669339", "wh_1", "not-the-secret").run();
    assert_eq!(status(&forged), 401);
}

// ---- hole 6: replay ---------------------------------------------------------------------

#[test]
fn a_replayed_signature_is_refused_within_the_window() {
    let cfg = config().unwrap();
    let mut state = EdgeState::default();
    let req = post("/api/events", &event_body("Placed Order")).signed();
    let first = req.run_with(&Ok(cfg.clone()));
    assert!(state.admit(&first.gate, &cfg, NOW_MS).is_ok());
    let again = req.run_with(&Ok(cfg.clone()));
    let refused = state.admit(&again.gate, &cfg, NOW_MS + 1_000).unwrap_err();
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("already"), "{}", refused.body);
    // Webhooks too.
    let wh = webhook_req(WEBHOOK_BODY, "1795669339", "wh_1", WEBHOOK);
    let d = wh.run_with(&Ok(cfg.clone()));
    assert!(state.admit(&d.gate, &cfg, NOW_MS).is_ok());
    assert!(state
        .admit(&wh.run_with(&Ok(cfg.clone())).gate, &cfg, NOW_MS)
        .is_err());
    // A refused body remembers nothing: its signature is not spent.
    let bad = post("/api/events", &event_body(""))
        .signed()
        .run_with(&Ok(cfg));
    assert_eq!(bad.gate, Gate::default());
}

#[test]
fn the_webhook_forward_is_signed_like_the_backends_calls() {
    let cfg = with("WEBHOOK_FORWARD_URL", "http://127.0.0.1:9999/hook".into());
    match webhook_req(WEBHOOK_BODY, "1795669339", "wh_1", WEBHOOK)
        .run_with(&cfg)
        .action
    {
        Action::ReplyAndNotify { reply, notify } => {
            assert_eq!(reply.status, 200);
            assert_eq!(notify.url, "http://127.0.0.1:9999/hook");
            assert_eq!(notify.body, Payload::AsReceived);
            let (_, sig) = notify
                .headers
                .iter()
                .find(|(k, _)| *k == "x-klaviyo-edge-signature")
                .expect("signed");
            assert!(
                auth::verify_forward(Some(sig), WEBHOOK_BODY.as_bytes(), SIGNING, NOW_S).is_ok()
            );
        }
        other => panic!("{other:?}"),
    }
}

// ---- hole 7: Retry-After as a date -----------------------------------------------------

#[test]
fn retry_after_as_an_http_date_is_honoured() {
    // 2026-11-26T05:02:20Z is one second after NOW: retried once.
    let soon = "Thu, 26 Nov 2026 05:02:20 GMT";
    assert_eq!(
        after_upstream(0, answered(429, Some(soon)), None, NOW_MS),
        Next::RetryIn(1000)
    );
    let later = "Thu, 26 Nov 2026 05:03:19 GMT";
    match after_upstream(0, answered(429, Some(later)), Some(SHOP), NOW_MS) {
        Next::Reply(r) => {
            assert_eq!(r.status, 429);
            assert!(r.headers.contains(&("retry-after".into(), later.into())));
        }
        other => panic!("{other:?}"),
    }
}

// ---- hole 8: the unsigned browser path --------------------------------------------------

#[test]
fn browsers_may_send_listed_metrics_with_identifiers_only() {
    let d = post("/api/events", &event_body("Started Checkout"))
        .header("origin", SHOP)
        .header("cf-connecting-ip", "203.0.113.7")
        .run_with(&config());
    let cfg = config().unwrap();
    assert_eq!(
        d.gate
            .rate_key
            .map(|k| k.text(&cfg.allowed_origins))
            .as_deref(),
        Some("203.0.113.7 https://shop.example")
    );
    assert_eq!(d.gate.replay_key, None);
    let f = forward(d.action);
    assert!(f.headers.iter().any(|(k, _)| *k == "authorization"));
    assert_eq!(f.cors.as_deref(), Some(SHOP));
    let other = post("/api/events", &event_body("Placed Order"))
        .header("origin", SHOP)
        .run();
    assert_eq!(status(&other), 403);
    let attrs = event_with(
        r#""name":"Started Checkout""#,
        r#"{"email":"a@b.co","first_name":"Eve"}"#,
    );
    assert_eq!(
        status(&post("/api/events", &attrs).header("origin", SHOP).run()),
        403,
        "only identifiers"
    );
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
fn a_page_names_the_shopper_by_one_identifier_alone_never_joins_two() {
    // With the private key Klaviyo joins an event's identifiers into one profile: from a
    // forged Origin, a victim's email beside the caller's phone would take over the texts.
    let send = |profile: &str| {
        let body = event_with(r#""name":"Started Checkout""#, profile);
        post("/api/events", &body).header("origin", SHOP).run()
    };
    for (profile, second) in [
        (
            r#"{"email":"victim@b.co","phone_number":"+15005550006"}"#,
            "phone_number",
        ),
        (
            r#"{"email":"victim@b.co","external_id":"caller"}"#,
            "external_id",
        ),
        (
            r#"{"phone_number":"+15005550006","_kx":"kx-of-someone"}"#,
            "_kx",
        ),
    ] {
        let a = send(profile);
        assert_eq!(status(&a), 403, "{profile}");
        let text = detail(&a);
        assert!(
            text.contains(&format!(
                "/data/attributes/profile/data/attributes/{second}"
            )),
            "{text}"
        );
    }
    // An anonymous id joins too, across two calls: the victim's email beside it, then
    // the caller's phone number.
    let a = send(r#"{"email":"victim@b.co","anonymous_id":"z"}"#);
    assert_eq!(status(&a), 403);
    assert!(detail(&a).contains("/data/attributes/profile/data/attributes/anonymous_id"));
    // One of them, or one with a null beside it: forwarded.
    for profile in [
        r#"{"email":"ann@b.co"}"#,
        r#"{"phone_number":"+15005550006","email":null}"#,
        r#"{"_kx":"kx-1"}"#,
        r#"{"anonymous_id":"a-1"}"#,
    ] {
        forward(send(profile));
    }
}

#[test]
fn a_browser_client_is_rate_limited() {
    let cfg = config().unwrap();
    let mut state = EdgeState::default();
    let req = post("/api/events", &event_body("Started Checkout"))
        .header("origin", SHOP)
        .header("cf-connecting-ip", "203.0.113.7");
    let allowed = (0..50)
        .filter(|_| {
            state
                .admit(&req.run_with(&Ok(cfg.clone())).gate, &cfg, NOW_MS)
                .is_ok()
        })
        .count();
    assert_eq!(allowed, 2, "20 a minute: a tenth of it at once");
    let other = post("/api/events", &event_body("Started Checkout"))
        .header("origin", SHOP)
        .header("cf-connecting-ip", "198.51.100.1");
    assert!(state
        .admit(&other.run_with(&Ok(cfg.clone())).gate, &cfg, NOW_MS)
        .is_ok());
    let denied = state
        .admit(&req.run_with(&Ok(cfg.clone())).gate, &cfg, NOW_MS)
        .unwrap_err();
    assert_eq!(denied.status, 429);
    assert!(denied
        .headers
        .contains(&("retry-after".into(), "60".into())));
}

// ---- bodies, settings, routes --------------------------------------------------------------

#[test]
fn invalid_api_bodies_are_refused_with_a_pointer() {
    let a = post("/api/events", &event_body("")).signed().run();
    assert_eq!(status(&a), 400);
    assert!(detail(&a).contains("/data/attributes/metric/data/attributes/name"));
    assert_eq!(status(&post("/api/events", "{oops").signed().run()), 400);
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
    // A historical consent given after the worker's clock: Klaviyo refuses it (a job
    // queued with it would be dead-lettered), so the worker does at once.
    let later = sub
        .replace(
            r#""attributes":{"profiles""#,
            r#""attributes":{"historical_import":true,"profiles""#,
        )
        .replace(
            r#""consent":"SUBSCRIBED""#,
            r#""consent":"SUBSCRIBED","consented_at":"2099-01-01T00:00:00Z""#,
        );
    let a = post("/api/profile-subscription-bulk-create-jobs", &later)
        .signed()
        .run();
    assert_eq!(status(&a), 400);
    assert!(detail(&a).contains("consented_at"), "{}", detail(&a));
    let bad_bulk = r#"{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":[]}}}}"#;
    assert_eq!(
        status(&post("/api/event-bulk-create-jobs", bad_bulk).signed().run()),
        400
    );
}

#[test]
fn orders_become_one_bulk_job_and_need_a_signature() {
    let order = r#"{"order_id":"1001","value":29.98,"profile":{"email":"a@b.co"},"items":[{"product_id":"p1","name":"Pooh","quantity":2,"price":14.99}]}"#;
    let f = forward(post("/api/orders", order).signed().run());
    assert_eq!(f.url, "http://127.0.0.1:8787/api/event-bulk-create-jobs");
    let job = |p: &Payload| String::from_utf8_lossy(p.bytes(b"")).into_owned();
    assert!(job(&f.body).contains("Placed Order") && job(&f.body).contains("Ordered Product"));
    let cancelled = forward(post("/api/orders/cancelled", order).signed().run());
    assert!(job(&cancelled.body).contains("Cancelled Order"));
    assert_eq!(status(&post("/api/orders", order).run()), 401);
    assert_eq!(
        status(&post("/api/orders", order).header("origin", SHOP).run()),
        403
    );
    assert_eq!(status(&post("/api/orders", "{}").signed().run()), 400);
}

#[test]
fn list_membership_plans_imports_then_one_add() {
    let body = r#"{"profiles":[{"id":"01HABCDEF"},{"email":"a@b.co"}]}"#;
    match post("/api/lists/Y6nRLr/profiles", body).signed().run() {
        Action::AddToList {
            list_id, members, ..
        } => {
            assert_eq!(list_id, "Y6nRLr");
            assert_eq!(members.ids.len(), 2);
            assert_eq!(members.imports.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    let cfg = config().unwrap();
    let add = add_to_list_request(&cfg, "Y6nRLr", &["01HABCDEF".into()], None).unwrap();
    assert_eq!(
        add.url,
        "http://127.0.0.1:8787/api/lists/Y6nRLr/relationships/profiles"
    );
    assert!(add
        .headers
        .iter()
        .any(|(k, v)| *k == "authorization" && v.ends_with(PRIVATE)));
    assert_eq!(
        status(&post("/api/lists/bad..id/profiles", body).signed().run()),
        404
    );
    assert_eq!(status(&post("/api/lists/Y6nRLr/profiles", body).run()), 401);
    let no_id = imported_id(r#"{"data":{"type":"profile"}}"#, None).unwrap_err();
    assert_eq!(no_id.status, 502);
}

#[test]
fn a_missing_setting_is_a_500_that_names_it() {
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
        let a = req.run_with(&without(name)).action;
        assert_eq!(status(&a), 500, "{name}");
        assert!(detail(&a).contains(name), "{}", detail(&a));
    }
    let bad = with("KLAVIYO_PUBLIC_KEY", "not-a-key-but-a-secret".into());
    let a = post("/client/events", "{}").run_with(&bad).action;
    assert_eq!(status(&a), 500);
    assert!(!detail(&a).contains("not-a-key-but-a-secret"));
}

#[test]
fn webhooks_are_verified_then_parsed_then_matched() {
    let now = "1795669339";
    assert_eq!(
        status(&webhook_req(WEBHOOK_BODY, now, "wh_1", WEBHOOK).run()),
        200
    );
    let other_id = webhook_req(WEBHOOK_BODY, now, "wh_2", WEBHOOK).run();
    assert_eq!(status(&other_id), 401);
    assert!(detail(&other_id).contains("klaviyo_webhook_id"));
    assert_eq!(
        status(&webhook_req(WEBHOOK_BODY, "1795669000", "wh_1", WEBHOOK).run()),
        401
    );
    assert_eq!(
        status(&webhook_req(WEBHOOK_BODY, now, "wh_1", "wrong").run()),
        401
    );
    let mut tampered = webhook_req(WEBHOOK_BODY, now, "wh_1", WEBHOOK);
    tampered.body = WEBHOOK_BODY.replace("sent_sms", "clicked_sms").into_bytes();
    assert_eq!(status(&tampered.run()), 401);
    assert_eq!(
        status(&webhook_req("not json", now, "wh_1", WEBHOOK).run()),
        400
    );
    let dup = r#"{"meta":{"klaviyo_webhook_id":"wh_1","klaviyo_webhook_id":"wh_2"}}"#;
    assert_eq!(status(&webhook_req(dup, now, "wh_2", WEBHOOK).run()), 400);
}

#[test]
fn a_route_prefix_is_stripped_and_nothing_else_routes() {
    let cfg = with("ROUTE_PREFIX", "/klaviyo/".into());
    assert_eq!(
        status(
            &post("/klaviyo/health", "")
                .method("GET")
                .run_with(&cfg)
                .action
        ),
        200
    );
    let f = forward(
        post("/klaviyo/client/events", &event_body("M"))
            .query("company_id=AbC123")
            .run_with(&cfg)
            .action,
    );
    assert_eq!(
        f.url,
        "http://127.0.0.1:8787/client/events?company_id=AbC123"
    );
    assert_eq!(
        status(
            &post("/client/events", &event_body("M"))
                .query("company_id=AbC123")
                .run_with(&cfg)
                .action
        ),
        404
    );
    assert_eq!(
        status(&post("/health", "").method("GET").run_with(&cfg).action),
        404
    );
    // A signature names the route below the prefix, wherever the worker is mounted.
    let body = event_body("Placed Order");
    let for_route = post("/klaviyo/api/events", &body).signed_for("/api/events", NOW_S);
    assert!(matches!(
        for_route.run_with(&cfg).action,
        Action::Forward(_)
    ));
    let for_url = post("/klaviyo/api/events", &body).signed_for("/klaviyo/api/events", NOW_S);
    assert_eq!(status(&for_url.run_with(&cfg).action), 401);
}

#[test]
fn size_routes_and_methods() {
    let mut big = post("/client/events", "{}").query("company_id=AbC123");
    big.too_large = true;
    assert_eq!(status(&big.run()), 413);
    assert_eq!(status(&post("/nope", "{}").run()), 404);
    assert_eq!(status(&post("/api/events", "").method("GET").run()), 405);
    assert_eq!(status(&post("/health", "").method("GET").run()), 200);
}

#[test]
fn a_wrong_method_is_answered_with_the_methods_the_route_takes() {
    let api = post("/api/events", "").method("GET").run();
    assert_eq!(status(&api), 405);
    assert!(
        detail(&api).contains("this route takes POST"),
        "{}",
        detail(&api)
    );
    let health = post("/health", "").run();
    assert_eq!(status(&health), 405);
    assert!(
        detail(&health).contains("this route takes GET and HEAD"),
        "{}",
        detail(&health)
    );
    let allow = |a: &Action| match a {
        Action::Reply(r) => r
            .headers
            .iter()
            .find(|(k, _)| k == "allow")
            .map(|(_, v)| v.clone()),
        _ => None,
    };
    assert_eq!(allow(&api).as_deref(), Some("POST"));
    assert_eq!(allow(&health).as_deref(), Some("GET, HEAD"));
    let id = post("/id", "").method("PUT").run();
    assert_eq!(status(&id), 405);
    assert_eq!(allow(&id).as_deref(), Some("GET, POST, DELETE"));
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
    match after_upstream(0, answered(429, Some("5")), Some(SHOP), NOW_MS) {
        Next::Reply(r) => {
            assert_eq!(r.status, 429);
            assert!(r.headers.contains(&("retry-after".into(), "5".into())));
            assert!(r.headers.contains(&(
                "access-control-expose-headers".into(),
                reply::EXPOSED.into()
            )));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        after_upstream(0, answered(429, Some("1")), None, NOW_MS),
        Next::RetryIn(1000)
    );
    assert!(
        matches!(after_upstream(1, answered(429, Some("1")), None, NOW_MS), Next::Reply(r) if r.status == 429)
    );
}

#[test]
fn upstream_failures_retry_with_backoff_then_502() {
    assert_eq!(
        after_upstream(0, answered(503, None), None, NOW_MS),
        Next::RetryIn(200)
    );
    assert_eq!(
        after_upstream(1, Upstream::Failed, None, NOW_MS),
        Next::RetryIn(400)
    );
    assert!(
        matches!(after_upstream(2, answered(500, None), None, NOW_MS), Next::Reply(r) if r.status == 502)
    );
    assert!(
        matches!(after_upstream(0, answered(202, None), None, NOW_MS), Next::Reply(r) if r.status == 202)
    );
    assert!(
        matches!(after_upstream(0, answered(400, None), None, NOW_MS), Next::Reply(r) if r.status == 400)
    );
}

// ---- the edge under attack: cheap refusals, one client per client, bound signatures ----

fn head_of<'a>(req: &'a Req, declared: Option<u64>) -> Head<'a> {
    Head {
        method: req.method,
        path: req.path,
        query: &req.query,
        headers: &req.headers,
        peer: req.peer,
        declared_length: declared,
        bot_score: req.bot_score,
        now_ms: NOW_MS,
    }
}

#[test]
fn refusals_that_need_no_body_are_made_from_the_head() {
    let cfg = config();
    let refused = |req: Req, declared: Option<u64>| match admit(&head_of(&req, declared), &cfg) {
        Admission::Reply(r) => r.status,
        Admission::ReadBody(route) => panic!("read the body of {} for {route:?}", req.path),
    };
    assert_eq!(
        refused(post("/api/events", ""), None),
        401,
        "unsigned, no origin"
    );
    assert_eq!(
        refused(
            post("/api/events", "").header("origin", "https://evil.example"),
            None
        ),
        403
    );
    assert_eq!(
        refused(post("/api/profile-import", "").header("origin", SHOP), None),
        403,
        "pages send events only"
    );
    assert_eq!(
        refused(post("/client/events", "").query("company_id=XyZ789"), None),
        403
    );
    assert_eq!(
        refused(post("/api/events", "").signed(), Some(6 * 1024 * 1024)),
        413
    );
    assert_eq!(
        refused(
            post("/webhooks/klaviyo", "")
                .header("klaviyo-signature", "00")
                .header("klaviyo-timestamp", "1795669339"),
            None
        ),
        401,
        "a webhook without its id"
    );
}

#[test]
fn a_page_over_its_rate_is_refused_before_its_body_is_read() {
    let cfg = config().unwrap();
    let req = post("/api/events", "")
        .header("origin", SHOP)
        .header("cf-connecting-ip", "203.0.113.7");
    let Admission::ReadBody(route) = admit(&head_of(&req, None), &Ok(cfg.clone())) else {
        panic!("a page's call reads its body once admitted");
    };
    let key = route.rate_key.expect("a rate key from the head alone");
    let mut state = EdgeState::default();
    let gate = Gate {
        rate_key: Some(key),
        ..Gate::default()
    };
    let allowed = (0..10)
        .filter(|_| state.admit(&gate, &cfg, NOW_MS).is_ok())
        .count();
    assert_eq!(allowed, 2, "20 a minute: a tenth of it at once");
}

#[test]
fn a_metric_pages_may_not_send_is_refused_before_the_events_rules_run() {
    // Broken everywhere else (an email that is not one, a time in 1970), and its metric
    // is not a page's: the metric is named, the rest is never checked.
    let body = event_with(r#""name":"Placed Order""#, r#"{"email":"not an email"}"#).replace(
        r#""properties":{}"#,
        r#""properties":{},"time":"1970-01-01T00:00:00Z""#,
    );
    let d = post("/api/events", &body).header("origin", SHOP).run();
    assert_eq!(status(&d), 403);
    assert!(
        detail(&d).contains("BROWSER_SERVER_METRICS"),
        "{}",
        detail(&d)
    );
}

#[test]
fn every_spelling_of_an_allowed_origin_is_one_client() {
    let cfg = config().unwrap();
    let key = |origin: &str| {
        let d = post("/api/events", &event_body("Started Checkout"))
            .header("origin", origin)
            .header("cf-connecting-ip", "203.0.113.7")
            .run_with(&Ok(cfg.clone()));
        assert_eq!(
            forward(d.action).cors.as_deref(),
            Some(SHOP),
            "CORS echoes the configured origin"
        );
        d.gate.rate_key.expect("a page's call has a rate key")
    };
    let canonical = key(SHOP);
    for spelling in [
        "https://shop.example/",
        "https://shop.example//",
        "https://shop.example///////",
        "HTTPS://SHOP.EXAMPLE",
        "https://Shop.Example/",
    ] {
        assert_eq!(key(spelling), canonical, "{spelling}");
    }
    let mut state = EdgeState::default();
    let gate = Gate {
        rate_key: Some(canonical),
        ..Gate::default()
    };
    let allowed = (0..30)
        .filter(|_| state.admit(&gate, &cfg, NOW_MS).is_ok())
        .count();
    assert_eq!(allowed, 2);
}

#[test]
fn outside_cloudflare_the_callers_own_address_headers_make_no_new_client() {
    let cfg = config().unwrap();
    let key_with = |cfg: &EdgeConfig, peer: Peer<'static>, claimed: &str| {
        post("/api/events", &event_body("Started Checkout"))
            .header("origin", SHOP)
            .header("cf-connecting-ip", claimed)
            .header("x-forwarded-for", &format!("198.51.100.1, {claimed}"))
            .peer(peer)
            .run_with(&Ok(cfg.clone()))
            .gate
            .rate_key
    };
    let rotated = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "2001:db8::1"];
    let portable: Vec<_> = rotated
        .iter()
        .map(|c| key_with(&cfg, Peer::Given(None), c))
        .collect();
    assert!(portable.iter().all(|k| *k == portable[0]), "one bucket");
    assert_eq!(portable[0].map(|k| k.net), Some(None), "no address known");
    // The host's own view makes clients.
    let given = [
        key_with(&cfg, Peer::Given(Some("203.0.113.1")), "192.0.2.1"),
        key_with(&cfg, Peer::Given(Some("203.0.113.2")), "192.0.2.1"),
    ];
    assert_ne!(given[0], given[1]);
    // So does a proxy the shop trusts: its last hop.
    let trusting = with("TRUST_FORWARDED_FOR", "true".into()).unwrap();
    let trusted: Vec<_> = rotated
        .iter()
        .map(|c| key_with(&trusting, Peer::Given(None), c))
        .collect();
    assert_ne!(trusted[0], trusted[1]);
    // On Cloudflare its own header is the address.
    assert_ne!(
        key_with(&cfg, Peer::Cloudflare, "192.0.2.1"),
        key_with(&cfg, Peer::Cloudflare, "192.0.2.2")
    );
    // An IPv6 client is its /64.
    assert_eq!(
        key_with(&cfg, Peer::Cloudflare, "2001:db8:1:2::1"),
        key_with(&cfg, Peer::Cloudflare, "2001:db8:1:2:ffff::9")
    );
}

#[test]
fn a_signature_moved_to_another_route_is_unauthorized() {
    let order = r#"{"order_id":"1001","value":29.98,"profile":{"email":"a@b.co"},"items":[{"product_id":"p1","name":"Pooh","quantity":2,"price":14.99}]}"#;
    let placed = post("/api/orders", order).signed();
    assert!(matches!(placed.run(), Action::Forward(_)));
    for path in [
        "/api/orders/refunded",
        "/api/orders/cancelled",
        "/api/orders/fulfilled",
    ] {
        let mut moved = post(path, order);
        moved.headers = placed.headers.clone();
        let d = moved.run();
        assert_eq!(status(&d), 401, "{path}");
        assert!(detail(&d).contains("does not match"), "{}", detail(&d));
    }
    let mut other_method = placed;
    other_method.method = "PUT";
    assert_eq!(status(&other_method.run()), 405);
}

#[test]
fn a_webhook_without_its_id_is_unauthorized() {
    let now = "1795669339";
    let no_id_body = r#"{"data":[{"topic":"event:klaviyo.sent_sms"}],"meta":{}}"#;
    let mut no_header = webhook_req(WEBHOOK_BODY, now, "wh_1", WEBHOOK);
    no_header.headers.retain(|(k, _)| k != "klaviyo-webhook-id");
    let mut neither = webhook_req(no_id_body, now, "x", WEBHOOK);
    neither.headers.retain(|(k, _)| k != "klaviyo-webhook-id");
    for req in [
        no_header,
        neither,
        webhook_req(no_id_body, now, "wh_1", WEBHOOK),
        webhook_req(r#"{"meta":"wh_1"}"#, now, "wh_1", WEBHOOK),
        webhook_req(WEBHOOK_BODY, now, " ", WEBHOOK),
    ] {
        assert_eq!(status(&req.run()), 401, "{:?}", req.headers);
    }
    assert_eq!(
        status(&webhook_req(WEBHOOK_BODY, now, "wh_1", WEBHOOK).run()),
        200
    );
}

#[test]
fn the_webhook_forwards_signature_is_refused_on_every_backend_route() {
    let cfg = with("WEBHOOK_FORWARD_URL", "http://127.0.0.1:9999/hook".into());
    let Action::ReplyAndNotify { notify, .. } =
        webhook_req(WEBHOOK_BODY, "1795669339", "wh_1", WEBHOOK)
            .run_with(&cfg)
            .action
    else {
        panic!("a verified webhook is forwarded");
    };
    let (_, sig) = notify
        .headers
        .iter()
        .find(|(k, _)| *k == "x-klaviyo-edge-signature")
        .expect("signed")
        .clone();
    for path in [
        "/api/events",
        "/api/event-bulk-create-jobs",
        "/api/profile-import",
        "/api/profile-subscription-bulk-create-jobs",
        "/api/orders",
        "/api/lists/Y6nRLr/profiles",
    ] {
        let d = post(path, WEBHOOK_BODY)
            .header("x-klaviyo-edge-signature", &sig)
            .run_with(&cfg);
        assert_eq!(status(&d.action), 401, "{path}");
    }
}

// ---- the visitor through the first-party proxy: its address, its cookie, bots ----

const BROWSER_UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15";

/// A browser's call to `path` from a page of `origin`.
fn from(origin: &str, path: &'static str, body: &str) -> Req {
    post(path, body)
        .query("company_id=AbC123")
        .header("origin", origin)
        .header("user-agent", BROWSER_UA)
}

fn page_event() -> Req {
    from(SHOP, "/client/events", &event_body("Viewed Product"))
}

fn sent_profile(a: Action) -> serde_json::Value {
    let f = forward(a);
    let body = match f.body {
        Payload::Text(t) => t,
        Payload::AsReceived => panic!("sent as received"),
    };
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v["data"]["attributes"]["profile"]["data"]["attributes"].clone()
}

#[test]
fn a_page_call_carries_the_visitor_address_from_the_runtime_not_from_its_headers() {
    let via_cf = page_event().header("cf-connecting-ip", "203.0.113.7").run();
    assert_eq!(sent_profile(via_cf)["location"]["ip"], "203.0.113.7");
    // Elsewhere, what the host passed; a forged x-forwarded-for counts for nothing.
    let given = page_event()
        .header("x-forwarded-for", "198.51.100.66")
        .peer(Peer::Given(Some("192.0.2.50")))
        .run();
    assert_eq!(sent_profile(given)["location"]["ip"], "192.0.2.50");
    let forged = page_event()
        .header("x-forwarded-for", "198.51.100.66")
        .peer(Peer::Given(None))
        .run();
    assert_eq!(forward(forged).body, Payload::AsReceived);
    // Trusted (the shop's own proxy), its last hop.
    let trusted = page_event()
        .header("x-forwarded-for", "198.51.100.66, 192.0.2.9")
        .peer(Peer::Given(None))
        .run_with(&with("TRUST_FORWARDED_FOR", "true".into()));
    assert_eq!(sent_profile(trusted.action)["location"]["ip"], "192.0.2.9");
}

#[test]
fn forward_visitor_ip_off_sends_the_body_as_received() {
    let d = page_event()
        .header("cf-connecting-ip", "203.0.113.7")
        .run_with(&with("FORWARD_VISITOR_IP", "false".into()));
    assert_eq!(forward(d.action).body, Payload::AsReceived);
}

fn visitor_cookie(anon: &str, kx: Option<&str>, secret: &str) -> String {
    let id = visitor_id::VisitorId::new(anon, kx).expect("id");
    format!("{}={}", visitor_id::COOKIE, id.value(secret))
}

#[test]
fn the_cookies_visitor_is_restored_on_a_page_call_and_a_forged_one_ignored() {
    let ok = page_event()
        .header(
            "cookie",
            &visitor_cookie("anon-kept", Some("kx-kept"), SIGNING),
        )
        .run();
    let p = sent_profile(ok);
    // The body names someone (an email): the cookie's _kx, perhaps another person's
    // email click, is not added beside it.
    assert_eq!(
        (p["anonymous_id"].as_str(), p["_kx"].as_str()),
        (Some("anon-kept"), None)
    );
    let anonymous = post(
        "/client/events",
        &event_with(r#""name":"Viewed Product""#, r#"{"anonymous_id":"fresh"}"#),
    )
    .query("company_id=AbC123")
    .header("origin", SHOP)
    .header("user-agent", BROWSER_UA)
    .header(
        "cookie",
        &visitor_cookie("anon-kept", Some("kx-kept"), SIGNING),
    )
    .run();
    let p = sent_profile(anonymous);
    assert_eq!(
        (p["anonymous_id"].as_str(), p["_kx"].as_str()),
        (Some("anon-kept"), Some("kx-kept"))
    );
    for forged in [
        visitor_cookie("anon-kept", Some("kx-kept"), "not-the-worker's"),
        format!(
            "{}=v1|anon-kept|kx-kept|{}",
            visitor_id::COOKIE,
            "00".repeat(32)
        ),
    ] {
        let d = page_event().header("cookie", &forged).run();
        assert_eq!(forward(d).body, Payload::AsReceived, "{forged}");
    }
}

#[test]
fn a_page_that_knows_its_visitor_keeps_it_whatever_the_cookie_names() {
    // After a logout whose POST /id failed, the cookie still names the visitor before.
    let cookie = visitor_cookie("anon-logged-out", Some("kx-logged-out"), SIGNING);
    let own = page_event()
        .query("company_id=AbC123&visitor=page")
        .header("cookie", &cookie)
        .run();
    let f = forward(own);
    assert_eq!(f.body, Payload::AsReceived, "the page's own ids, as sent");
    assert!(!f.url.contains("visitor"), "not passed on: {}", f.url);
    // Any other value is no such word: the cookie's visitor is restored as before.
    let other = page_event()
        .query("company_id=AbC123&visitor=cookie")
        .header("cookie", &cookie)
        .run();
    assert_eq!(
        sent_profile(other)["anonymous_id"].as_str(),
        Some("anon-logged-out")
    );
}

#[test]
fn id_sets_reads_and_clears_the_cookie_for_the_shops_pages_only() {
    let post_id = |body: &str| post("/id", body).header("origin", SHOP);
    let set = match post_id(r#"{"anonymous_id":"a-1","_kx":"k-1"}"#).run() {
        Action::Reply(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(set.status, 204);
    let line = set
        .headers
        .iter()
        .find(|(k, _)| k == "set-cookie")
        .expect("set-cookie")
        .1
        .clone();
    assert!(line.contains("HttpOnly; Secure; SameSite=Lax") && line.contains("Max-Age=34560000"));
    assert!(set
        .headers
        .iter()
        .any(|(k, v)| k == "access-control-allow-credentials" && v == "true"));
    let cookie = line.split(';').next().expect("pair").to_string();
    // Read back: the page's own origin sends no Origin on GET.
    let got = post("/id", "")
        .method("GET")
        .header("cookie", &cookie)
        .run();
    assert_eq!(status(&got), 200);
    let body = match got {
        Action::Reply(r) => r.body,
        _ => String::new(),
    };
    assert_eq!(body, r#"{"_kx":"k-1","anonymous_id":"a-1"}"#);
    let none = post("/id", "")
        .method("GET")
        .header("cookie", "kw_visitor=v1|a-1|k-1|00")
        .run();
    assert_eq!(detail(&none), "{}");
    // Cleared.
    match post("/id", "")
        .method("DELETE")
        .header("origin", SHOP)
        .run()
    {
        Action::Reply(r) => {
            assert_eq!(r.status, 204);
            assert!(r
                .headers
                .iter()
                .any(|(k, v)| k == "set-cookie" && v.contains("Max-Age=0")));
        }
        other => panic!("{other:?}"),
    }
    // Another origin's page: 403, and no cookie.
    for method in ["GET", "POST", "DELETE"] {
        let r = post("/id", r#"{"anonymous_id":"evil"}"#)
            .method(method)
            .header("origin", "https://evil.example")
            .run();
        assert_eq!(status(&r), 403, "{method}");
    }
    // Set and clear need the shop's Origin.
    assert_eq!(status(&post("/id", r#"{"anonymous_id":"a"}"#).run()), 403);
    assert_eq!(status(&post("/id", "").method("DELETE").run()), 403);
    // A body it cannot keep names the member.
    assert!(detail(&post_id(r#"{"anonymous_id":"a;b"}"#).run()).contains("/anonymous_id"));
    // Without the signing secret there is no key to sign the cookie with.
    let d = post("/id", "")
        .method("GET")
        .run_with(&without("EDGE_SIGNING_SECRET"));
    assert_eq!(status(&d.action), 500);
    assert!(detail(&d.action).contains("EDGE_SIGNING_SECRET"));
    // The preflight of a page on another allowed origin.
    let pre = post("/id", "")
        .method("OPTIONS")
        .header("origin", SHOP)
        .run();
    match pre {
        Action::Reply(r) => {
            assert_eq!(r.status, 204);
            assert!(r
                .headers
                .iter()
                .any(|(k, v)| k == "access-control-allow-methods" && v.contains("DELETE")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_crawlers_call_is_answered_and_not_sent_on() {
    let googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    let d = post("/client/events", &event_body("Viewed Product"))
        .query("company_id=AbC123")
        .header("origin", SHOP)
        .header("user-agent", googlebot)
        .run();
    match d {
        Action::Reply(r) => {
            assert_eq!(r.status, 202);
            assert!(r
                .headers
                .iter()
                .any(|(k, v)| k == "x-klaviyo-edge-bot" && v == "user-agent"));
            assert!(r
                .headers
                .iter()
                .any(|(k, _)| k == "access-control-allow-origin"));
            // The worker's mark, as on a forwarded answer: without it a page whose
            // storage was wiped whole took the worker for a plain proxy and forgot the
            // ids it made up while it asked the visitor cookie.
            assert!(r
                .headers
                .contains(&(reply::FIRST_PARTY.into(), "id".into())));
        }
        other => panic!("a bot's call was sent on: {other:?}"),
    }
    // Decided from the head: the body is never read.
    let head_only = post("/client/events", "")
        .query("company_id=AbC123")
        .header("user-agent", googlebot);
    assert!(matches!(
        admit(&head_of(&head_only, Some(500)), &config()),
        Admission::Reply(_)
    ));
    // A low bot score, whatever the user agent.
    let scored = page_event()
        .bot_score(5)
        .run_with(&with("BOT_SCORE_MIN", "30".into()));
    assert_eq!(status(&scored.action), 202);
    // Without BOT_SCORE_MIN, scores are not used.
    assert!(matches!(
        page_event().bot_score(5).run(),
        Action::Forward(_)
    ));
    // A browser's call goes on; with FILTER_BOTS=false a crawler's does too.
    assert!(matches!(page_event().run(), Action::Forward(_)));
    let unfiltered = post("/client/events", &event_body("Viewed Product"))
        .query("company_id=AbC123")
        .header("user-agent", googlebot)
        .run_with(&with("FILTER_BOTS", "false".into()));
    assert!(matches!(unfiltered.action, Action::Forward(_)));
}

#[test]
fn a_forwarded_client_answer_says_the_worker_keeps_the_visitor_cookie() {
    let cfg = config().expect("config");
    let marked = first_party_mark(Reply::empty(202), "/client/events", &cfg, Some(SHOP));
    assert!(marked
        .headers
        .contains(&(reply::FIRST_PARTY.into(), "id".into())));
    // Not on other routes, nor without a key to sign the cookie with.
    assert!(
        first_party_mark(Reply::empty(202), "/api/events", &cfg, Some(SHOP))
            .headers
            .is_empty()
    );
    let unsigned = without("EDGE_SIGNING_SECRET").expect("config");
    assert!(
        first_party_mark(Reply::empty(202), "/client/events", &unsigned, Some(SHOP))
            .headers
            .is_empty()
    );
    // A page of another allowed origin may read it.
    assert!(reply::EXPOSED.contains(reply::FIRST_PARTY));
}

#[path = "sandboxed_tests.rs"]
mod sandboxed;

#[path = "dead_letter_tests.rs"]
mod dead_letter;
