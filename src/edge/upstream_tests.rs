use super::*;

fn answer(status: u16, content_type: Option<&str>, body: &str) -> Reply {
    let outcome = Upstream::Answered {
        status,
        retry_after: Some("30".into()),
        content_type: content_type.map(str::to_string),
        body: body.into(),
    };
    match after_upstream(1, outcome, None, 0) {
        Next::Reply(r) => r,
        Next::RetryIn(ms) => panic!("retried in {ms}"),
    }
}

fn is_jsonapi_error(r: &Reply) -> bool {
    serde_json::from_str::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|v| v["errors"][0]["status"].as_str().map(str::to_string))
        == Some(r.status.to_string())
}

#[test]
fn json_answers_are_passed_on_as_they_are() {
    for ct in [
        "application/vnd.api+json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/problem+json",
    ] {
        let r = answer(400, Some(ct), r#"{"errors":[]}"#);
        assert_eq!(
            (r.status, r.body.as_str()),
            (400, r#"{"errors":[]}"#),
            "{ct}"
        );
        assert!(r.headers.contains(&("content-type".into(), ct.into())));
    }
    let ok = answer(202, None, "");
    assert_eq!((ok.status, ok.body.as_str()), (202, ""));
}

#[test]
fn an_error_that_is_not_json_becomes_our_own_502() {
    for ct in [
        Some("text/html"),
        Some("text/plain"),
        None,
        Some("application/jsonx"),
    ] {
        let r = answer(403, ct, "<html><script>alert(1)</script></html>");
        assert_eq!(r.status, 502, "{ct:?}");
        assert!(is_jsonapi_error(&r), "{r:?}");
        assert!(!r.body.contains("script"));
    }
    let empty = answer(404, None, "");
    assert_eq!(empty.status, 404);
    assert!(is_jsonapi_error(&empty));
}

#[test]
fn a_success_that_is_not_json_keeps_its_status_and_loses_its_body() {
    let r = answer(200, Some("text/html"), "<html>hi</html>");
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert!(r.headers.iter().all(|(k, _)| k != "content-type"));
}

#[test]
fn a_throttle_that_is_not_json_stays_a_throttle_with_its_retry_after() {
    let r = answer(429, Some("text/html"), "<html>slow down</html>");
    assert_eq!(r.status, 429);
    assert!(is_jsonapi_error(&r));
    assert!(r.headers.contains(&("retry-after".into(), "30".into())));
}
