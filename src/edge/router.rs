//! The worker's decisions, sans IO: given a request (method, path, headers, raw body,
//! the time) and the settings, what to answer or what to send upstream; and, given
//! what upstream answered, whether to retry or what to answer. The JS adapter
//! (`js/edge/handler.mjs`) only carries these out.

use super::api_rules::{self, Invalid};
use super::auth::{self, AuthError};
use super::config::{ConfigError, EdgeConfig};
use super::reply::{self, error, Reply};
use crate::core::json::{self, Json};
use crate::core::text;
use crate::core::text::query_param;

/// One incoming request. Header names are lower-case.
pub struct Incoming<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The query string without `?`.
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a str,
    /// The adapter stopped reading past the body limit.
    pub too_large: bool,
    pub now_ms: u64,
}

impl Incoming<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request to make upstream with the caller's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// The allowed origin to echo in CORS headers on the answer.
    pub cors: Option<String>,
    /// Give up on an attempt after this long (then it counts as a network failure).
    pub timeout_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Reply(Reply),
    /// Answer, and also POST the raw webhook body to `url` (without making Klaviyo wait).
    ReplyAndNotify {
        reply: Reply,
        url: String,
        body: String,
    },
    Forward(Forward),
}

const CLIENT_ROUTES: &[&str] = &[
    "/client/events",
    "/client/profiles",
    "/client/subscriptions",
    "/client/event-bulk-create",
    "/client/back-in-stock-subscriptions",
];
const API_ROUTES: &[&str] = &[
    "/api/events",
    "/api/event-bulk-create-jobs",
    "/api/profile-import",
    "/api/profile-subscription-bulk-create-jobs",
];
const WEBHOOK_ROUTE: &str = "/webhooks/klaviyo";

fn missing(setting: &str) -> Action {
    let mut d = String::from(setting);
    d.push_str(" is not set");
    Action::Reply(error(
        500,
        "missing_setting",
        "The worker is not configured.",
        &d,
        None,
    ))
}

fn config_error(e: ConfigError) -> Action {
    let mut d = String::from(e.setting);
    d.push(' ');
    d.push_str(e.reason);
    Action::Reply(error(
        500,
        "bad_setting",
        "The worker is not configured.",
        &d,
        None,
    ))
}

fn forbidden_origin() -> Reply {
    error(
        403,
        "forbidden_origin",
        "Forbidden.",
        "this origin is not in ALLOWED_ORIGINS",
        None,
    )
}

fn invalid(e: Invalid) -> Reply {
    error(
        400,
        "invalid",
        "Invalid input.",
        &e.detail,
        Some(&e.pointer),
    )
}

/// Decides what to do with one request.
pub fn decide(req: &Incoming, cfg: Result<EdgeConfig, ConfigError>) -> Action {
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => return config_error(e),
    };
    let path = req
        .path
        .strip_prefix(cfg.route_prefix.as_str())
        .unwrap_or(req.path);
    let req = &Incoming { path, ..*req };
    let origin = req.header("origin");
    let allowed = origin.filter(|o| cfg.origin_allowed(o));
    let known = CLIENT_ROUTES.contains(&req.path)
        || API_ROUTES.contains(&req.path)
        || req.path == WEBHOOK_ROUTE;
    match (req.method, req.path) {
        ("OPTIONS", _) => Action::Reply(preflight(allowed, known)),
        ("GET" | "HEAD", "/health") => {
            let body = reply::ok_flag().with("revision", Json::str(&cfg.revision));
            Action::Reply(reply::ok_json(200, body))
        }
        ("POST", _) if known => {
            if req.too_large {
                let r = error(
                    413,
                    "too_large",
                    "Request body too large.",
                    "the body is larger than MAX_BODY_BYTES",
                    None,
                );
                return Action::Reply(r.cors(allowed));
            }
            let action = if req.path == WEBHOOK_ROUTE {
                webhook(req, &cfg)
            } else if req.path.starts_with("/client/") {
                client(req, &cfg, origin, allowed)
            } else {
                api(req, &cfg, origin, allowed)
            };
            match action {
                Action::Reply(r) => Action::Reply(r.cors(allowed)),
                other => other,
            }
        }
        _ if known || req.path == "/health" => Action::Reply(
            error(
                405,
                "method_not_allowed",
                "Method not allowed.",
                "this route takes POST",
                None,
            )
            .cors(allowed),
        ),
        _ => Action::Reply(
            error(404, "not_found", "Not found.", "no such route", None).cors(allowed),
        ),
    }
}

fn preflight(allowed: Option<&str>, known: bool) -> Reply {
    match allowed {
        Some(o) if known => Reply::empty(204)
            .header("access-control-allow-origin", o)
            .header("access-control-allow-methods", "POST, OPTIONS")
            .header("access-control-allow-headers", "content-type, revision")
            .header("access-control-max-age", "600")
            .header("vary", "Origin"),
        Some(_) => error(404, "not_found", "Not found.", "no such route", None),
        None => forbidden_origin(),
    }
}

fn parse(req: &Incoming) -> Result<Json, Reply> {
    json::parse(req.body).map_err(|_| {
        error(
            400,
            "malformed",
            "Malformed JSON.",
            "the body is not valid JSON",
            None,
        )
    })
}

/// `/client/*`: the first-party proxy for the browser package (public key only).
fn client(req: &Incoming, cfg: &EdgeConfig, origin: Option<&str>, allowed: Option<&str>) -> Action {
    let Some(public) = &cfg.public_key else {
        return missing("KLAVIYO_PUBLIC_KEY");
    };
    if origin.is_some() && allowed.is_none() {
        return Action::Reply(forbidden_origin());
    }
    if query_param(req.query, "company_id").as_deref() != Some(public.as_str()) {
        return Action::Reply(error(
            403,
            "wrong_company",
            "Forbidden.",
            "company_id is not this shop's public key",
            None,
        ));
    }
    if let Err(r) = parse(req) {
        return Action::Reply(r);
    }
    let mut url = String::from(&cfg.api_base);
    url.push_str(req.path);
    url.push_str("?company_id=");
    url.push_str(public);
    let revision = req.header("revision").unwrap_or(&cfg.revision).to_string();
    Action::Forward(Forward {
        url,
        headers: vec![
            ("content-type", reply::JSONAPI.into()),
            ("revision", revision),
        ],
        body: req.body.to_string(),
        cors: allowed.map(str::to_string),
        timeout_ms: cfg.upstream_timeout_ms,
    })
}

/// `/api/*`: server-side calls with the private key, from the signed backend or (for
/// `/api/events` with an allowed metric) from the shop's pages.
fn api(req: &Incoming, cfg: &EdgeConfig, origin: Option<&str>, allowed: Option<&str>) -> Action {
    let Some(private) = &cfg.private_key else {
        return missing("KLAVIYO_PRIVATE_KEY");
    };
    let now_s = (req.now_ms / 1000) as i64;
    let signature = req.header("x-klaviyo-edge-signature");
    let body = match parse(req) {
        Ok(b) => b,
        Err(r) if signature.is_some() || allowed.is_some() => return Action::Reply(r),
        Err(_) => return Action::Reply(unauthorized(AuthError::Missing)),
    };
    if signature.is_some() || allowed.is_none() {
        let Some(secret) = &cfg.signing_secret else {
            return missing("EDGE_SIGNING_SECRET");
        };
        if let Err(e) = auth::verify_backend(signature, req.body, secret, now_s) {
            if origin.is_some() && signature.is_none() {
                return Action::Reply(forbidden_origin());
            }
            return Action::Reply(unauthorized(e));
        }
    } else {
        // A page of the shop: only /api/events, only listed metrics.
        let metric = body
            .get("data")
            .and_then(|d| d.get("attributes"))
            .and_then(|a| a.get("metric"))
            .and_then(|m| m.get("data"))
            .and_then(|d| d.get("attributes"))
            .and_then(|a| a.get("name"))
            .and_then(Json::as_str);
        let listed = metric.is_some_and(|m| cfg.browser_metrics.iter().any(|b| b == m));
        if req.path != "/api/events" || !listed {
            return Action::Reply(error(
                403,
                "forbidden_metric",
                "Forbidden.",
                "browsers may only send the metrics in BROWSER_SERVER_METRICS to /api/events",
                None,
            ));
        }
    }
    let checked = match req.path {
        "/api/events" => api_rules::create_event(&body, req.now_ms),
        "/api/event-bulk-create-jobs" => api_rules::bulk_create_events(&body, req.now_ms),
        "/api/profile-import" => api_rules::profile_import(&body),
        _ => api_rules::bulk_subscribe(&body),
    };
    if let Err(e) = checked {
        return Action::Reply(invalid(e));
    }
    let mut url = String::from(&cfg.api_base);
    url.push_str(req.path);
    let mut key = String::from("Klaviyo-API-Key ");
    key.push_str(private);
    Action::Forward(Forward {
        url,
        headers: vec![
            ("content-type", reply::JSONAPI.into()),
            ("accept", reply::JSONAPI.into()),
            ("revision", cfg.revision.clone()),
            ("authorization", key),
        ],
        body: req.body.to_string(),
        cors: allowed.map(str::to_string),
        timeout_ms: cfg.upstream_timeout_ms,
    })
}

fn unauthorized(e: AuthError) -> Reply {
    error(401, "unauthorized", "Unauthorized.", e.detail(), None)
}

/// `/webhooks/klaviyo`: Klaviyo's system webhooks, verified as Klaviyo signs them.
fn webhook(req: &Incoming, cfg: &EdgeConfig) -> Action {
    let Some(secret) = &cfg.webhook_secret else {
        return missing("KLAVIYO_WEBHOOK_SECRET");
    };
    let body = json::parse(req.body).ok();
    let body_id = body
        .as_ref()
        .and_then(|b| b.get("meta"))
        .and_then(|m| m.get("klaviyo_webhook_id"))
        .and_then(Json::as_str);
    let checked = auth::verify_webhook(
        req.header("klaviyo-signature"),
        req.header("klaviyo-timestamp"),
        req.header("klaviyo-webhook-id"),
        body_id,
        req.body,
        secret,
        (req.now_ms / 1000) as i64,
    );
    match checked {
        // Signed and fresh, but not JSON: Klaviyo did not send this body as it is.
        Err(AuthError::WebhookIdMismatch) if body.is_none() => {
            return Action::Reply(error(
                400,
                "malformed",
                "Malformed JSON.",
                "the body is not valid JSON",
                None,
            ));
        }
        Err(e) => return Action::Reply(unauthorized(e)),
        Ok(()) => {}
    }
    let reply = reply::ok_json(200, reply::ok_flag());
    match &cfg.webhook_forward_url {
        Some(url) => Action::ReplyAndNotify {
            reply,
            url: url.clone(),
            body: req.body.to_string(),
        },
        None => Action::Reply(reply),
    }
}

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
/// Retry-After is at most 1 s is retried once; a longer one goes back to the caller
/// with its Retry-After. 5xx and network failures are retried with backoff, then 502.
pub fn after_upstream(attempt: u32, outcome: Upstream, cors: Option<&str>) -> Next {
    match outcome {
        Upstream::Answered {
            status: 429,
            retry_after,
            body,
            content_type,
        } => {
            let secs = retry_after
                .as_deref()
                .and_then(|v| text::parse_u64(v.trim()));
            match secs {
                Some(s) if s <= 1 && attempt == 0 => Next::RetryIn((s * 1000).max(100)),
                _ => {
                    let mut r = passthrough(429, content_type, body);
                    if let Some(ra) = retry_after {
                        r = r.header("retry-after", &ra);
                    }
                    Next::Reply(r.cors(cors))
                }
            }
        }
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

/// Upstream's answer as the caller gets it: status, content type and body.
fn passthrough(status: u16, content_type: Option<String>, body: String) -> Reply {
    let mut r = Reply::empty(status);
    if let Some(ct) = content_type {
        r = r.header("content-type", &ct);
    }
    r.body = body;
    r
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
