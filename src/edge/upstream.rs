//! What to do with Klaviyo's answer to a forwarded call: retry, or what to answer the
//! caller. Answers are passed on only as what they claim to be: a body is handed back
//! when it is JSON (by its content type), so an HTML error page from anything between
//! the worker and Klaviyo never reaches the shop's pages as such.

use super::reply::{error, Reply};
use crate::core::retry;

/// What upstream (Klaviyo) did with a forwarded request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    Answered {
        status: u16,
        retry_after: Option<String>,
        content_type: Option<String>,
        body: String,
    },
    /// No answer: connection refused or dropped, timeout.
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    RetryIn(u64),
    Reply(Reply),
}

/// Attempts per request, counting the first.
pub const MAX_ATTEMPTS: u32 = 3;

/// After attempt `attempt` (0-based): retry, or answer the caller. A 429 whose
/// Retry-After (seconds or an HTTP date) is at most 1 s is retried once; a longer one
/// goes back to the caller with its Retry-After. 5xx and network failures are retried
/// with backoff, then 502. A redirect is never followed (the key must not travel).
pub fn after_upstream(attempt: u32, outcome: Upstream, cors: Option<&str>, now_ms: u64) -> Next {
    match outcome {
        Upstream::Answered {
            status: 429,
            retry_after,
            body,
            content_type,
        } => {
            let secs = retry_after
                .as_deref()
                .and_then(|v| retry::retry_after_secs(v, now_ms));
            match secs {
                Some(s) if s <= 1 && attempt == 0 => Next::RetryIn((u64::from(s) * 1000).max(100)),
                _ => {
                    let mut r = if is_json(content_type.as_deref()) {
                        passthrough(429, content_type, body)
                    } else {
                        // Not Klaviyo's JSON:API: our own, with the same meaning.
                        error(
                            429,
                            "throttled",
                            "Request was throttled.",
                            "Klaviyo throttled the request; retry later",
                            None,
                        )
                    };
                    if let Some(ra) = retry_after {
                        r = r.header("retry-after", &ra);
                    }
                    Next::Reply(r.cors(cors))
                }
            }
        }
        Upstream::Answered {
            status: 300..=399, ..
        } => Next::Reply(
            error(
                502,
                "upstream_redirect",
                "Klaviyo did not accept the request.",
                "Klaviyo answered with a redirect, which the worker does not follow",
                None,
            )
            .cors(cors),
        ),
        Upstream::Answered {
            status,
            content_type,
            body,
            ..
        } if status < 500 => Next::Reply(passthrough(status, content_type, body).cors(cors)),
        _ if attempt + 1 < MAX_ATTEMPTS => Next::RetryIn(200 << attempt),
        _ => Next::Reply(
            error(
                502,
                "upstream_unavailable",
                "Klaviyo did not accept the request.",
                "Klaviyo failed or could not be reached after 3 attempts; retry later",
                None,
            )
            .cors(cors),
        ),
    }
}

/// Whether a content type is JSON: `application/json`, `application/vnd.api+json`,
/// or any other `+json` type, parameters and case aside.
fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// Upstream's 2xx or 4xx answer as the caller gets it: status, content type and body
/// when the body is JSON. A 2xx with another body keeps its status and loses the body;
/// a 4xx with another body becomes our own JSON:API 502, and one with none our own
/// JSON:API error of the same status.
fn passthrough(status: u16, content_type: Option<String>, body: String) -> Reply {
    if body.is_empty() {
        return if status < 400 {
            Reply::empty(status)
        } else {
            error(
                status,
                "upstream_error",
                "Klaviyo did not accept the request.",
                "Klaviyo refused the request without saying why",
                None,
            )
        };
    }
    if !is_json(content_type.as_deref()) {
        return if status < 400 {
            Reply::empty(status)
        } else {
            error(
                502,
                "upstream_unexpected",
                "Klaviyo's answer was not understood.",
                "Klaviyo's answer to the request was not JSON",
                None,
            )
        };
    }
    let mut r = Reply::empty(status);
    if let Some(ct) = content_type {
        r = r.header("content-type", &ct);
    }
    r.body = body;
    r
}

#[cfg(test)]
mod tests {
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
}
