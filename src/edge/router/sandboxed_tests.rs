//! `Origin: null`, what a sandboxed iframe sends (Shopify's custom pixels): refused
//! unless `ALLOW_NULL_ORIGIN`, and then taken on `/client` and its preflight alone,
//! answered `null` without credentials, with no visitor cookie read or mark of one, and
//! rate-gated in buckets of its own.

use super::*;

fn allowing() -> Result<EdgeConfig, ConfigError> {
    with("ALLOW_NULL_ORIGIN", "true".into())
}

/// A call from a sandboxed frame to `path`.
fn framed(path: &'static str, body: &str) -> Req {
    from(NULL_ORIGIN, path, body)
}

fn reply_of(a: Action) -> Reply {
    match a {
        Action::Reply(r) => r,
        other => panic!("expected an answer, got {other:?}"),
    }
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A refusal that a sandboxed frame cannot read, with no CORS header at all.
fn assert_refused(a: Action, what: &str) {
    let r = reply_of(a);
    assert!(r.status == 403, "{what}: {}", r.status);
    assert!(no_cors(&r), "{what}: {:?}", r.headers);
}

#[test]
fn null_is_refused_unless_the_shop_allows_sandboxed_frames() {
    for cfg in [config(), with("ALLOW_NULL_ORIGIN", "false".into())] {
        let call = framed("/client/events", &event_body("Viewed Product"));
        assert_refused(call.run_with(&cfg).action, "POST");
        assert_refused(call.method("OPTIONS").run_with(&cfg).action, "OPTIONS");
    }
}

#[test]
fn with_the_setting_every_client_route_and_its_preflight_take_null() {
    let cfg = allowing();
    for route in CLIENT_ROUTES {
        let pre = reply_of(framed(route, "").method("OPTIONS").run_with(&cfg).action);
        assert_eq!(pre.status, 204, "{route}");
        assert_eq!(header(&pre, "access-control-allow-origin"), Some("null"));
        assert_eq!(
            header(&pre, "access-control-allow-methods"),
            Some("POST, OPTIONS")
        );
        assert_eq!(header(&pre, "vary"), Some("Origin"));
        assert_eq!(header(&pre, "access-control-allow-credentials"), None);
        let f = forward(framed(route, "{}").run_with(&cfg).action);
        assert_eq!(f.cors.as_deref(), Some("null"), "{route}");
        assert!(f.url.ends_with(&format!("{route}?company_id=AbC123")));
    }
}

#[test]
fn never_the_cookie_routes_nor_the_browser_path_nor_any_other_route() {
    let cfg = allowing();
    for method in ["GET", "POST", "DELETE", "OPTIONS"] {
        let id = post("/id", r#"{"anonymous_id":"a-1"}"#)
            .method(method)
            .header("origin", NULL_ORIGIN)
            .header("cookie", &visitor_cookie("anon-kept", Some("kx"), SIGNING));
        assert_refused(id.run_with(&cfg).action, method);
    }
    // The unsigned browser path: it runs with the private key.
    let event = post("/api/events", &event_body("Started Checkout")).header("origin", NULL_ORIGIN);
    assert_refused(event.run_with(&cfg).action, "/api/events");
    let paths = API_ROUTES
        .iter()
        .chain(&["/api/orders", "/api/lists/Xy12Ab/profiles", WEBHOOK_ROUTE])
        .chain(&["/health", "/client/unknown", "/id"]);
    for path in paths {
        let pre = post(path, "")
            .method("OPTIONS")
            .header("origin", NULL_ORIGIN);
        assert_refused(pre.run_with(&cfg).action, path);
    }
    // `null` as browsers send it, and nothing like it.
    for other in ["Null", "NULL", "null/", " null", "null, null"] {
        let call = post("/client/events", "{}")
            .query("company_id=AbC123")
            .header("origin", other);
        assert_refused(call.run_with(&cfg).action, other);
    }
}

#[test]
fn answers_to_null_allow_no_credentials_and_keep_vary_and_the_exposed_headers() {
    let refused = reply_of(
        framed("/client/events", "{oops")
            .run_with(&allowing())
            .action,
    );
    assert_eq!(refused.status, 400);
    assert_eq!(
        header(&refused, "access-control-allow-origin"),
        Some("null")
    );
    assert_eq!(
        header(&refused, "access-control-expose-headers"),
        Some(reply::EXPOSED)
    );
    assert_eq!(header(&refused, "vary"), Some("Origin"));
    assert_eq!(header(&refused, "access-control-allow-credentials"), None);
}

#[test]
fn the_visitor_cookie_is_not_read_for_a_sandboxed_frame_and_the_visitor_is_forwarded() {
    let cfg = allowing();
    let anonymous = event_with(r#""name":"Viewed Product""#, r#"{"anonymous_id":"fresh"}"#);
    let cookie = visitor_cookie("anon-kept", Some("kx-kept"), SIGNING);
    let sent = |origin: &str| {
        from(origin, "/client/events", &anonymous)
            .header("cf-connecting-ip", "203.0.113.7")
            .header("cookie", &cookie)
            .run_with(&cfg)
            .action
    };
    // The shop's page gets the cookie's visitor; a sandboxed frame keeps its own.
    assert_eq!(sent_profile(sent(SHOP))["anonymous_id"], "anon-kept");
    let f = forward(sent(NULL_ORIGIN));
    assert!(f.headers.contains(&("user-agent", BROWSER_UA.to_string())));
    assert!(f.headers.iter().all(|(k, _)| *k != "cookie"));
    let p = sent_profile(Action::Forward(f));
    assert_eq!(p["anonymous_id"], "fresh");
    assert_eq!(p["_kx"], serde_json::Value::Null);
    assert_eq!(p["location"]["ip"], "203.0.113.7", "FORWARD_VISITOR_IP");
}

#[test]
fn an_answer_to_a_sandboxed_frame_does_not_say_the_worker_keeps_the_visitor_cookie() {
    let cfg = allowing().expect("config");
    let answer = first_party_mark(Reply::empty(202), "/client/events", &cfg, Some("null"));
    assert_eq!(header(&answer, reply::FIRST_PARTY), None);
    // A crawler's call, answered from the head, neither.
    let googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    let bot = post("/client/events", "{}")
        .query("company_id=AbC123")
        .header("origin", NULL_ORIGIN)
        .header("user-agent", googlebot);
    let bot = reply_of(bot.run_with(&Ok(cfg)).action);
    assert_eq!((bot.status, header(&bot, reply::FIRST_PARTY)), (202, None));
    assert_eq!(header(&bot, "access-control-allow-origin"), Some("null"));
}

#[test]
fn a_sandboxed_frame_is_rate_gated_in_buckets_of_its_own() {
    let cfg = allowing().expect("config");
    let call = |origin: &str, ip: &str| {
        from(origin, "/client/events", &event_body("Viewed Product")).header("cf-connecting-ip", ip)
    };
    let frame = call(NULL_ORIGIN, "203.0.113.7");
    // Keyed from the head, before the body is read.
    let Admission::ReadBody(route) = admit(&head_of(&frame, None), &Ok(cfg.clone())) else {
        panic!("a sandboxed frame's call reads its body once admitted");
    };
    let key = route.rate_key.expect("a rate key");
    assert_eq!(key.text(&cfg.allowed_origins), "203.0.113.7 null");
    let mut state = EdgeState::default();
    let mut gate = |req: &Req| state.admit(&req.run_with(&Ok(cfg.clone())).gate, &cfg, NOW_MS);
    let passed = (0..10).filter(|_| gate(&frame).is_ok()).count();
    assert_eq!(passed, 2, "20 a minute: a tenth of it at once");
    let over = gate(&frame).expect_err("over its rate");
    assert_eq!(over.status, 429);
    assert_eq!(header(&over, "access-control-allow-origin"), Some("null"));
    // Another network's frame has its own bucket; the shop's pages are not gated.
    assert!(gate(&call(NULL_ORIGIN, "198.51.100.1")).is_ok());
    assert!((0..10).all(|_| gate(&call(SHOP, "203.0.113.7")).is_ok()));
}
