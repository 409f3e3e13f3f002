//! The worker's decisions, sans IO: given a request (method, path, headers, the raw
//! body bytes, the time) and the settings, what to answer or what to send upstream;
//! given what upstream answered, whether to retry or what to answer. `worker.rs` only
//! carries these out.
//!
//! Order of checks, so that untrusted input costs as little as possible: the route,
//! the body limit, then who is asking (signature over the exact bytes, or origin), and
//! only then UTF-8 and JSON (duplicate keys refused), then the body's rules.

use super::api_rules::{self, Refusal};
use super::auth::{self, AuthError, ReplayGuard};
use super::bodies::{self, Invalid};
use super::config::{ConfigError, EdgeConfig};
use super::lists::{self, Members};
use super::orders::{self, OrderEvent};
use super::ratelimit::{self, ClientLimits};
use super::reply::{self, error, Reply, JSONAPI};
use crate::core::retry;
use crate::core::text::query_param;

/// One incoming request. Header names are lower-case.
pub struct Incoming<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The query string without `?`.
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    /// The body exactly as received.
    pub body: &'a [u8],
    /// The adapter stopped reading past the body limit.
    pub too_large: bool,
    pub now_ms: u64,
}

/// The headers `decide` may read for a request to `path`: an adapter need hand over no
/// others, and reading a few by name costs less than walking all of a request's headers.
pub fn headers_for(path: &str, cfg: &Result<EdgeConfig, ConfigError>) -> &'static [&'static str] {
    let prefix = cfg.as_ref().map_or("", |c| c.route_prefix.as_str());
    headers_read(path.strip_prefix(prefix).unwrap_or(path))
}

/// The headers the router may read on `path` (after the route prefix).
fn headers_read(path: &str) -> &'static [&'static str] {
    if path == WEBHOOK_ROUTE {
        &[
            "origin",
            "klaviyo-signature",
            "klaviyo-timestamp",
            "klaviyo-webhook-id",
        ]
    } else if path.starts_with("/api/") {
        &[
            "origin",
            "x-klaviyo-edge-signature",
            "cf-connecting-ip",
            "x-forwarded-for",
            "revision",
        ]
    } else {
        &["origin", "revision"]
    }
}

impl Incoming<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        debug_assert!(
            headers_read(self.path).contains(&name),
            "add {name} to headers_read"
        );
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request to make upstream. It never follows a redirect: it may carry the private
/// key or a signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// The allowed origin to echo in CORS headers on the answer.
    pub cors: Option<String>,
    /// Give up on an attempt after this long (then it counts as a network failure).
    /// `None` for the `/client` proxy: its caller holds the deadline (the browser
    /// package aborts after 30 s and retries from its queue, and workerd cancels a
    /// request's subrequests when its client goes away), and a timer of the worker's own
    /// cost that hot path about 27 µs a request in workerd (measured, issue 8).
    pub timeout_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Reply(Reply),
    /// Answer, and also send `notify` (the verified webhook, signed) without making
    /// Klaviyo wait.
    ReplyAndNotify {
        reply: Reply,
        notify: Forward,
    },
    Forward(Forward),
    /// List membership: a profile-import for each member without an id, then one
    /// add-to-list call with every id ([`import_request`], [`add_to_list_request`]).
    AddToList {
        list_id: String,
        members: Members,
        cors: Option<String>,
    },
}

/// What must be checked against state before acting: a signature's first use (replay)
/// and a browser client's rate. The worker checks them in this isolate
/// ([`EdgeState::admit`]) and, where bound, in a KV namespace or a rate-limit binding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gate {
    pub replay_key: Option<String>,
    pub rate_key: Option<String>,
    pub cors: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub gate: Gate,
}

impl From<Action> for Decision {
    fn from(action: Action) -> Decision {
        Decision {
            action,
            gate: Gate::default(),
        }
    }
}

/// The isolate's memory: signatures seen, browser clients' buckets.
pub struct EdgeState {
    pub replay: ReplayGuard,
    pub limits: ClientLimits,
}

impl Default for EdgeState {
    fn default() -> EdgeState {
        EdgeState {
            replay: ReplayGuard::new(50_000),
            limits: ClientLimits::new(super::config::DEFAULT_BROWSER_RATE_PER_MINUTE, 50_000),
        }
    }
}

impl EdgeState {
    /// Checks `gate` in this isolate: `Err` holds the answer when it fails.
    pub fn admit(&mut self, gate: &Gate, cfg: &EdgeConfig, now_ms: u64) -> Result<(), Reply> {
        if let Some(key) = &gate.rate_key {
            if !self.limits.allow(key, cfg.browser_rate_per_minute, now_ms) {
                return Err(rate_limited(gate.cors.as_deref()));
            }
        }
        if let Some(key) = &gate.replay_key {
            if !self.replay.first_use(key, (now_ms / 1000) as i64) {
                return Err(replayed(gate.cors.as_deref()));
            }
        }
        Ok(())
    }
}

/// The answer to a browser client over its rate.
pub fn rate_limited(cors: Option<&str>) -> Reply {
    error(
        429,
        "throttled",
        "Request was throttled.",
        "too many unsigned calls from this client; retry later",
        None,
    )
    .header("retry-after", "60")
    .cors(cors)
}

/// The answer to a signature already used within its window.
pub fn replayed(cors: Option<&str>) -> Reply {
    unauthorized(AuthError::Replayed).cors(cors)
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

/// Our own server-side routes (signed only).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Own {
    Order(OrderEvent),
    List(String),
}

fn own_route(path: &str) -> Option<Own> {
    let order = match path {
        "/api/orders" => Some(OrderEvent::Placed),
        "/api/orders/fulfilled" => Some(OrderEvent::Fulfilled),
        "/api/orders/cancelled" => Some(OrderEvent::Cancelled),
        "/api/orders/refunded" => Some(OrderEvent::Refunded),
        _ => None,
    };
    if let Some(o) = order {
        return Some(Own::Order(o));
    }
    let id = path
        .strip_prefix("/api/lists/")?
        .strip_suffix("/profiles")?;
    Some(Own::List(id.to_string()))
}

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

/// A setting that is present but unusable: a 500 naming the setting, never its value.
pub fn config_error(e: &ConfigError) -> Reply {
    let mut d = String::from(e.setting);
    d.push(' ');
    d.push_str(e.reason);
    error(
        500,
        "bad_setting",
        "The worker is not configured.",
        &d,
        None,
    )
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

/// A refused body: 400 with the JSON pointer of the field ("" is the whole body).
fn invalid(e: Invalid) -> Reply {
    error(
        400,
        "invalid",
        "Invalid input.",
        &e.detail,
        Some(&e.pointer),
    )
}

fn unauthorized(e: AuthError) -> Reply {
    error(401, "unauthorized", "Unauthorized.", e.detail(), None)
}

fn not_utf8() -> Reply {
    error(
        400,
        "malformed",
        "Malformed body.",
        "the body is not valid UTF-8",
        None,
    )
}

fn not_found() -> Reply {
    error(404, "not_found", "Not found.", "no such route", None)
}

/// The body as text: UTF-8 decoded fatally (a BOM stays, and then is not JSON).
fn text(body: &[u8]) -> Result<&str, Reply> {
    std::str::from_utf8(body).map_err(|_| not_utf8())
}

/// Decides what to do with one request.
pub fn decide(req: &Incoming, cfg: &Result<EdgeConfig, ConfigError>) -> Decision {
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => return Action::Reply(config_error(e)).into(),
    };
    // Mounted under a prefix, the worker answers nothing outside it.
    let Some(path) = req.path.strip_prefix(cfg.route_prefix.as_str()) else {
        return Action::Reply(not_found()).into();
    };
    let req = &Incoming { path, ..*req };
    let origin = req.header("origin");
    let allowed = origin.filter(|o| cfg.origin_allowed(o));
    let own = own_route(req.path);
    let known = CLIENT_ROUTES.contains(&req.path)
        || API_ROUTES.contains(&req.path)
        || req.path == WEBHOOK_ROUTE
        || own.is_some();
    let with_cors = |d: Decision| match d.action {
        Action::Reply(r) => Decision {
            action: Action::Reply(r.cors(allowed)),
            gate: d.gate,
        },
        _ => d,
    };
    match (req.method, req.path) {
        ("OPTIONS", _) => Action::Reply(preflight(allowed, known)).into(),
        ("GET" | "HEAD", "/health") => {
            Action::Reply(reply::ok(200, &[("revision", &cfg.revision)])).into()
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
                return Action::Reply(r.cors(allowed)).into();
            }
            with_cors(if req.path == WEBHOOK_ROUTE {
                webhook(req, cfg)
            } else if req.path.starts_with("/client/") {
                client(req, cfg, origin, allowed).into()
            } else {
                api(req, cfg, origin, allowed, own)
            })
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
        )
        .into(),
        _ => Action::Reply(not_found().cors(allowed)).into(),
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
        Some(_) => not_found(),
        None => forbidden_origin(),
    }
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
    let body = match text(req.body) {
        Ok(t) => t,
        Err(r) => return Action::Reply(r),
    };
    if let Err(e) = bodies::check(body) {
        return Action::Reply(invalid(e));
    }
    let mut url = String::from(&cfg.api_base);
    url.push_str(req.path);
    url.push_str("?company_id=");
    url.push_str(public);
    let revision = req.header("revision").unwrap_or(&cfg.revision).to_string();
    Action::Forward(Forward {
        url,
        headers: vec![("content-type", JSONAPI.into()), ("revision", revision)],
        body: body.to_string(),
        cors: allowed.map(str::to_string),
        timeout_ms: None,
    })
}

/// A request to Klaviyo's private API with the key (never following a redirect).
fn private_call(
    cfg: &EdgeConfig,
    key: &str,
    path: &str,
    body: String,
    cors: Option<&str>,
) -> Forward {
    let mut url = String::from(&cfg.api_base);
    url.push_str(path);
    let mut auth = String::from("Klaviyo-API-Key ");
    auth.push_str(key);
    Forward {
        url,
        headers: vec![
            ("content-type", JSONAPI.into()),
            ("accept", JSONAPI.into()),
            ("revision", cfg.revision.clone()),
            ("authorization", auth),
        ],
        body,
        cors: cors.map(str::to_string),
        timeout_ms: Some(cfg.upstream_timeout_ms),
    }
}

/// `/api/*`: server-side calls with the private key, from the signed backend or (for
/// `/api/events` with an allowed metric) from the shop's pages.
fn api(
    req: &Incoming,
    cfg: &EdgeConfig,
    origin: Option<&str>,
    allowed: Option<&str>,
    own: Option<Own>,
) -> Decision {
    let Some(private) = &cfg.private_key else {
        return missing("KLAVIYO_PRIVATE_KEY").into();
    };
    let signature = req.header("x-klaviyo-edge-signature");
    // Who is asking, before anything reads the body.
    let mut gate = Gate {
        cors: allowed.map(str::to_string),
        ..Gate::default()
    };
    let browser = signature.is_none() && allowed.is_some();
    if browser {
        // A page of the shop, trusted only by its Origin (any client can forge it).
        if req.path != "/api/events" {
            return Action::Reply(forbidden_metric()).into();
        }
        gate.rate_key = Some(ratelimit::client_key(
            req.header("cf-connecting-ip"),
            req.header("x-forwarded-for"),
            origin,
        ));
    } else {
        let Some(secret) = &cfg.signing_secret else {
            return missing("EDGE_SIGNING_SECRET").into();
        };
        let now_s = (req.now_ms / 1000) as i64;
        match auth::verify_backend(signature, req.body, secret, now_s) {
            Ok(sig) => gate.replay_key = Some(sig),
            Err(_) if origin.is_some() && signature.is_none() => {
                return Action::Reply(forbidden_origin()).into()
            }
            Err(e) => return Action::Reply(unauthorized(e)).into(),
        }
    }
    let body = match text(req.body) {
        Ok(t) => t,
        Err(r) => return Action::Reply(r).into(),
    };
    let action = match (&own, req.path) {
        (Some(Own::Order(kind)), _) => match orders::order_job(*kind, body, req.now_ms) {
            Ok(job) => Action::Forward(private_call(
                cfg,
                private,
                "/api/event-bulk-create-jobs",
                job,
                allowed,
            )),
            Err(e) => Action::Reply(invalid(e)),
        },
        (Some(Own::List(id)), _) => {
            if !lists::list_id_ok(id) {
                Action::Reply(not_found())
            } else {
                match lists::members(body) {
                    Ok(members) => Action::AddToList {
                        list_id: id.clone(),
                        members,
                        cors: allowed.map(str::to_string),
                    },
                    Err(e) => Action::Reply(invalid(e)),
                }
            }
        }
        (None, path) => {
            let checked = if browser {
                api_rules::browser_event(body, req.now_ms, &cfg.browser_metrics)
            } else {
                match path {
                    "/api/events" => api_rules::create_event(body, req.now_ms),
                    "/api/event-bulk-create-jobs" => {
                        api_rules::bulk_create_events(body, req.now_ms)
                    }
                    "/api/profile-import" => api_rules::profile_import(body),
                    _ => api_rules::bulk_subscribe(body),
                }
                .map_err(Refusal::Invalid)
            };
            match checked {
                Ok(()) => {
                    Action::Forward(private_call(cfg, private, path, body.to_string(), allowed))
                }
                Err(Refusal::Invalid(e)) => Action::Reply(invalid(e)),
                Err(Refusal::Forbidden(e)) => Action::Reply(error(
                    403,
                    "forbidden",
                    "Forbidden.",
                    &e.detail,
                    Some(&e.pointer),
                )),
            }
        }
    };
    // A refused body costs its signature nothing: only what is acted on is remembered.
    if !matches!(action, Action::Reply(_)) {
        Decision { action, gate }
    } else {
        Decision {
            action,
            gate: Gate::default(),
        }
    }
}

fn forbidden_metric() -> Reply {
    error(
        403,
        "forbidden_metric",
        "Forbidden.",
        "browsers may only send the metrics in BROWSER_SERVER_METRICS to /api/events",
        None,
    )
}

/// A profile-import call for one list member (its answer carries the profile id).
pub fn import_request(cfg: &EdgeConfig, body: &str, cors: Option<&str>) -> Option<Forward> {
    let key = cfg.private_key.as_deref()?;
    Some(private_call(
        cfg,
        key,
        "/api/profile-import",
        body.to_string(),
        cors,
    ))
}

/// The add-to-list call once every member has an id.
pub fn add_to_list_request(
    cfg: &EdgeConfig,
    list_id: &str,
    ids: &[String],
    cors: Option<&str>,
) -> Option<Forward> {
    let key = cfg.private_key.as_deref()?;
    let mut path = String::from("/api/lists/");
    path.push_str(list_id);
    path.push_str("/relationships/profiles");
    Some(private_call(
        cfg,
        key,
        &path,
        lists::add_to_list_body(ids),
        cors,
    ))
}

/// After a member's profile-import was answered 2xx: its id, or the 502 to answer
/// when Klaviyo's answer holds none.
pub fn imported_id(answer: &str, cors: Option<&str>) -> Result<String, Reply> {
    lists::profile_id(answer).ok_or_else(|| {
        error(
            502,
            "upstream_unexpected",
            "Klaviyo's answer was not understood.",
            "a profile-import answer carried no profile id",
            None,
        )
        .cors(cors)
    })
}

/// `/webhooks/klaviyo`: Klaviyo's system webhooks, verified as Klaviyo signs them.
fn webhook(req: &Incoming, cfg: &EdgeConfig) -> Decision {
    let Some(secret) = &cfg.webhook_secret else {
        return missing("KLAVIYO_WEBHOOK_SECRET").into();
    };
    let sig = match auth::verify_webhook(
        req.header("klaviyo-signature"),
        req.header("klaviyo-timestamp"),
        req.body,
        secret,
        (req.now_ms / 1000) as i64,
    ) {
        Ok(sig) => sig,
        Err(e) => return Action::Reply(unauthorized(e)).into(),
    };
    let body = match text(req.body) {
        Ok(t) => t,
        Err(r) => return Action::Reply(r).into(),
    };
    let value: serde_json::Value = match bodies::parse(body) {
        Ok(v) => v,
        Err(e) => return Action::Reply(invalid(e)).into(),
    };
    if bodies::str_at(&value, "/meta/klaviyo_webhook_id") != req.header("klaviyo-webhook-id") {
        return Action::Reply(error(
            401,
            "unauthorized",
            "Unauthorized.",
            "meta.klaviyo_webhook_id does not match the Klaviyo-Webhook-Id header",
            None,
        ))
        .into();
    }
    let reply = reply::ok(200, &[]);
    let action = match &cfg.webhook_forward_url {
        None => Action::Reply(reply),
        Some(url) => {
            let Some(signing) = &cfg.signing_secret else {
                return missing("EDGE_SIGNING_SECRET").into();
            };
            // Signed like the backend's own calls, so the receiver can trust it.
            let signature = auth::sign_backend(req.body, signing, (req.now_ms / 1000) as i64);
            Action::ReplyAndNotify {
                reply,
                notify: Forward {
                    url: url.clone(),
                    headers: vec![
                        ("content-type", "application/json".into()),
                        ("x-klaviyo-edge-signature", signature),
                    ],
                    body: body.to_string(),
                    cors: None,
                    timeout_ms: Some(cfg.upstream_timeout_ms),
                },
            }
        }
    };
    Decision {
        action,
        gate: Gate {
            replay_key: Some(sig),
            ..Gate::default()
        },
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
                    let mut r = passthrough(429, content_type, body);
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

#[cfg(all(test, not(target_arch = "wasm32")))]
#[path = "router_fuzz.rs"]
mod fuzz;
