//! The worker's decisions, sans IO, in two steps:
//!
//! 1. [`admit`], from the request's head alone (method, path, headers, the declared
//!    length, the caller's address as the runtime knows it): the route, the size, who
//!    is asking (an allowed origin, or a signature header to check), and the key of the
//!    rate gate. Most refusals end here, before a byte of the body is read.
//! 2. [`decide_body`], once the body is read (never past `MAX_BODY_BYTES`): the
//!    signature over the exact bytes, then UTF-8, JSON (duplicate keys refused, nothing
//!    built as a tree) and the body's rules; what to answer or send upstream, and the
//!    replay key to check.
//!
//! The routes but `/client` are `#[inline(never)]`: a fresh isolate compiles, and V8
//! tiers up, only the code of the route it serves, not one function holding them all.
//!
//! Given what upstream answered, [`after_upstream`] says whether to retry or what to
//! answer. `worker/` only carries these out, checking the gate between the steps:
//! the rate before the body is read, replays before anything is sent.

use super::api_rules::{self, Refusal};
use super::auth::{self, AuthError, ReplayGuard, Signed};
use super::bodies::{self, Invalid};
use super::bots;
use super::config::{ConfigError, EdgeConfig};
use super::dead_letters::{self, Ask};
use super::lists::{self, Members};
use super::orders::{self, OrderEvent};
use super::ratelimit::{self, ClientKey, ClientLimits, Peer};
use super::reply::{self, error, Reply, JSONAPI};
use super::visitor::{self, Additions};
use super::visitor_id;
use crate::core::text::query_param;

pub use super::upstream::{after_upstream, Next, Upstream, MAX_ATTEMPTS};

/// A request as far as its head: what the worker knows before it reads the body.
/// Header names are lower-case.
#[derive(Clone, Copy)]
pub struct Head<'a> {
    pub method: &'a str,
    /// The URL's path as received (the route prefix included).
    pub path: &'a str,
    /// The query string without `?`.
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    /// Where the caller's address comes from.
    pub peer: Peer<'a>,
    /// The `content-length` the caller declared, if any.
    pub declared_length: Option<u64>,
    /// Cloudflare's bot score of the request (`request.cf.botManagement.score`, 1 to
    /// 99), where the runtime gives one.
    pub bot_score: Option<u8>,
    pub now_ms: u64,
}

/// The body as the worker read it.
#[derive(Clone, Copy)]
pub struct Body<'a> {
    /// The body exactly as received.
    pub bytes: &'a [u8],
    /// The adapter stopped reading past the body limit.
    pub too_large: bool,
}

/// One whole request, for callers that have its body at hand: both steps at once
/// ([`decide`]), as tests and fuzzing drive the router.
pub struct Incoming<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub peer: Peer<'a>,
    pub body: &'a [u8],
    pub too_large: bool,
    pub bot_score: Option<u8>,
    pub now_ms: u64,
}

/// The headers the router may read for a request to `path`: an adapter need hand over
/// no others, and reading a few by name costs less than walking all of a request's
/// headers.
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
    } else if path.starts_with("/client/") {
        &[
            "origin",
            "revision",
            "user-agent",
            "cookie",
            "cf-connecting-ip",
            "x-forwarded-for",
        ]
    } else if path == visitor_id::ROUTE {
        &["origin", "cookie"]
    } else {
        &["origin", "revision"]
    }
}

impl Head<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a forward sends upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// The request's own body, byte for byte as received (the adapter holds it).
    AsReceived,
    /// A body the worker made (an order's job, a list call).
    Text(String),
}

impl Payload {
    /// The bytes this payload sends, given the request's own.
    pub fn bytes<'a>(&'a self, received: &'a [u8]) -> &'a [u8] {
        match self {
            Payload::AsReceived => received,
            Payload::Text(t) => t.as_bytes(),
        }
    }
}

/// A request to make upstream. It never follows a redirect: it may carry the private
/// key or a signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Payload,
    /// The allowed origin to echo in CORS headers on the answer.
    pub cors: Option<String>,
    /// Give up on an attempt after this long (then it counts as a network failure).
    /// `None` for the `/client` proxy: its caller holds the deadline (the browser
    /// package aborts after 30 s and retries from its queue, and workerd cancels a
    /// request's subrequests when its client goes away), and a timer of the worker's own
    /// costs that hot path about 27 µs a request in workerd (measured).
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
    /// A signed call on the kept dead letters (`DEAD_LETTER_STORE`).
    DeadLetters(Ask),
}

/// What must be checked against state: a browser client's rate (before the body is
/// read) and a signature's first use (before anything is sent). The worker checks them
/// in this isolate ([`EdgeState::admit`]) and, where bound, in a KV namespace or a
/// rate-limit binding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gate {
    /// The 32-byte tag of a signature acted on.
    pub replay_key: Option<[u8; 32]>,
    pub rate_key: Option<ClientKey>,
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

/// The isolate's memory: signatures seen, browser clients' buckets. Both are bounded
/// in entries and, their keys being fixed-size, in bytes.
pub struct EdgeState {
    pub replay: ReplayGuard,
    pub limits: ClientLimits,
}

/// Signatures an isolate remembers within the window.
pub const MAX_REPLAY_ENTRIES: usize = 50_000;

impl Default for EdgeState {
    fn default() -> EdgeState {
        EdgeState {
            replay: ReplayGuard::new(MAX_REPLAY_ENTRIES),
            limits: ClientLimits::new(
                super::config::DEFAULT_BROWSER_RATE_PER_MINUTE,
                ClientLimits::MAX_CLIENTS,
            ),
        }
    }
}

impl EdgeState {
    /// Checks `gate` in this isolate: `Err` holds the answer when it fails.
    pub fn admit(&mut self, gate: &Gate, cfg: &EdgeConfig, now_ms: u64) -> Result<(), Reply> {
        if let Some(key) = gate.rate_key {
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
    DeadLetters(dead_letters::Op),
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
    if let Some(op) = dead_letters::route(path) {
        return Some(Own::DeadLetters(op));
    }
    let id = path
        .strip_prefix("/api/lists/")?
        .strip_suffix("/profiles")?;
    Some(Own::List(id.to_string()))
}

/// What to do before the body is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Answer now; the body is never read.
    Reply(Reply),
    /// Check the rate gate when the route has a key, read the body (up to the limit),
    /// then [`decide_body`].
    ReadBody(Route),
}

/// A known route, and what [`admit`] learned about the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    kind: RouteKind,
    /// The shop's origin the caller named, as configured: CORS headers echo it.
    pub cors: Option<String>,
    /// The rate gate's key, for the unsigned browser path.
    pub rate_key: Option<ClientKey>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum RouteKind {
    /// `/client/*`: the first-party proxy (public key only).
    Client,
    /// `/api/*` from a page of the shop, unsigned: `/api/events` only.
    BrowserEvent,
    /// `/api/*` from the backend: the signature is checked over the body.
    Signed { own: Option<Own> },
    /// `/webhooks/klaviyo`.
    Webhook,
    /// `POST /id`: the first-party visitor cookie.
    VisitorId,
}

/// Step 1: what can be decided from the head alone.
pub fn admit(head: &Head, cfg: &Result<EdgeConfig, ConfigError>) -> Admission {
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => return Admission::Reply(config_error(e)),
    };
    // Mounted under a prefix, the worker answers nothing outside it.
    let Some(path) = head.path.strip_prefix(cfg.route_prefix.as_str()) else {
        return Admission::Reply(not_found());
    };
    let origin = head.header("origin");
    let allowed = origin
        .and_then(|o| cfg.allowed_origin(o))
        .or_else(|| allowed_null_origin(cfg, origin, path));
    let own = own_route(path);
    let known = CLIENT_ROUTES.contains(&path)
        || API_ROUTES.contains(&path)
        || path == WEBHOOK_ROUTE
        || own.is_some();
    let reply = |r: Reply| Admission::Reply(r.cors(allowed));
    if path == visitor_id::ROUTE {
        return match visitor_id::admit(head.method, head.header("cookie"), cfg, origin, allowed) {
            Ok(()) => Admission::ReadBody(Route {
                kind: RouteKind::VisitorId,
                cors: allowed.map(str::to_string),
                rate_key: None,
            }),
            Err(r) => Admission::Reply(r),
        };
    }
    match (head.method, path) {
        ("OPTIONS", _) => Admission::Reply(preflight(allowed, known)),
        ("GET" | "HEAD", "/health") => {
            Admission::Reply(reply::ok(200, &[("revision", &cfg.revision)]))
        }
        ("POST", _) if known => {
            if head
                .declared_length
                .is_some_and(|n| n > cfg.max_body_bytes as u64)
            {
                return reply(too_large());
            }
            let kind = if path == WEBHOOK_ROUTE {
                webhook_head(head, cfg)
            } else if path.starts_with("/client/") {
                client_head(head, cfg, origin, allowed)
            } else {
                api_head(path, head, cfg, origin, allowed, own)
            };
            match kind {
                Err(r) => reply(r),
                Ok(kind) => {
                    // A sandboxed frame may be anybody's page: gated as the browser path is.
                    let rate_key = (kind == RouteKind::BrowserEvent
                        || allowed == Some(NULL_ORIGIN))
                    .then(|| browser_client(head, cfg, allowed))
                    .flatten();
                    Admission::ReadBody(Route {
                        kind,
                        cors: allowed.map(str::to_string),
                        rate_key,
                    })
                }
            }
        }
        _ if known => reply(reply::method_not_allowed("POST", "POST")),
        _ if path == "/health" => reply(reply::method_not_allowed("GET and HEAD", "GET, HEAD")),
        _ => reply(not_found()),
    }
}

/// The `Origin` of a sandboxed frame, and the CORS answer to it.
pub const NULL_ORIGIN: &str = "null";

/// `null` where the shop lets sandboxed frames (`Origin: null`) use `/client`
/// (`ALLOW_NULL_ORIGIN`): those routes alone, which read nothing of the visitor's. Any
/// page anywhere can be one, so never `/id` (the visitor's ids) nor `/api`.
fn allowed_null_origin(cfg: &EdgeConfig, origin: Option<&str>, path: &str) -> Option<&'static str> {
    (cfg.allow_null_origin && origin == Some(NULL_ORIGIN) && CLIENT_ROUTES.contains(&path))
        .then_some(NULL_ORIGIN)
}

/// A page's client: its network as the runtime knows it, and the configured origin
/// (or a sandboxed frame's bucket).
fn browser_client(head: &Head, cfg: &EdgeConfig, allowed: Option<&str>) -> Option<ClientKey> {
    let origin = match allowed {
        Some(NULL_ORIGIN) => ClientKey::OPAQUE,
        _ => cfg
            .allowed_origins
            .iter()
            .position(|o| Some(o.as_str()) == allowed)
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))?,
    };
    Some(ClientKey {
        net: ratelimit::client_net(
            head.peer,
            head.header("cf-connecting-ip"),
            head.header("x-forwarded-for"),
            cfg.trust_forwarded_for,
        ),
        origin,
    })
}

/// Step 2: what to do with the body of a request [`admit`] let through. The gate holds
/// the replay key of a signature acted on (a refused body spends none); the rate was
/// checked before the body was read.
pub fn decide_body(head: &Head, route: &Route, body: Body, cfg: &EdgeConfig) -> Decision {
    let cors = route.cors.as_deref();
    if body.too_large {
        return Action::Reply(too_large().cors(cors)).into();
    }
    let d = match &route.kind {
        RouteKind::Client => client(head, cfg, body.bytes, cors).into(),
        RouteKind::BrowserEvent => browser_event(head, cfg, body.bytes, cors).into(),
        RouteKind::Signed { own } => signed(head, cfg, body.bytes, cors, own.as_ref()),
        RouteKind::Webhook => webhook(head, cfg, body.bytes),
        RouteKind::VisitorId => Action::Reply(visitor_id::post(body.bytes, cfg, cors)).into(),
    };
    let action = match d.action {
        Action::Reply(r) => Action::Reply(r.cors(cors)),
        other => other,
    };
    Decision {
        action,
        gate: Gate {
            cors: route.cors.clone(),
            ..d.gate
        },
    }
}

/// Both steps for a whole request: the rate key (checked before the body by the
/// worker) joins the gate.
pub fn decide(req: &Incoming, cfg: &Result<EdgeConfig, ConfigError>) -> Decision {
    let head = Head {
        method: req.method,
        path: req.path,
        query: req.query,
        headers: req.headers,
        peer: req.peer,
        declared_length: None,
        bot_score: req.bot_score,
        now_ms: req.now_ms,
    };
    let route = match admit(&head, cfg) {
        Admission::Reply(r) => return Action::Reply(r).into(),
        Admission::ReadBody(route) => route,
    };
    let Ok(c) = cfg else {
        // admit() answers a configuration error itself.
        return Action::Reply(not_found()).into();
    };
    let body = Body {
        bytes: req.body,
        too_large: req.too_large,
    };
    let mut d = decide_body(&head, &route, body, c);
    d.gate.rate_key = route.rate_key;
    d.gate.cors = route.cors;
    d
}

mod api;
mod client;
mod refusals;
mod webhook;

pub(crate) use super::reply::{forbidden_origin, missing};
pub use refusals::{config_error, rate_limited, replayed};
use refusals::{invalid, not_found, text, too_large, unauthorized, verified_text};

pub use api::{add_to_list_request, direct, import_request, imported_id, private_call};
use api::{api_head, browser_event, signed};
pub use client::first_party_mark;
use client::{client, client_head, preflight};
use webhook::{webhook, webhook_head};

#[cfg(test)]
mod tests;

#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) mod fuzz;
