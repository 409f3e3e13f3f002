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
#[path = "upstream_tests.rs"]
mod tests;
