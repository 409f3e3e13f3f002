//! The worker's I/O, for any fetch-handler runtime (workerd, Node, Deno, Bun): an async
//! `handle(request, env, ctx, options)` that reads the request and `env`, asks `router`
//! what to do, and does it: the head first, then (rate gate passed) the body, read
//! into wasm memory once. Upstream calls use gloo-net (the global `fetch`) and never
//! follow a redirect. Nothing here decides, logs, or puts a setting's value in an
//! answer.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use js_sys::{Object, Promise, Reflect, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use web_sys::{Request, Response};

use super::config::{ConfigError, EdgeConfig, Settings};
use super::delivery::{self, Plan};
use super::executor::{self, settled};
use super::fixed::{fixed_slot, FIXED_SLOTS};
use super::ratelimit::{ClientKey, Peer};
use super::reply::{self, error, Reply};
use super::router::{
    self, Action, Admission, Body, Decision, EdgeState, Forward, Head, Next, Payload, Upstream,
};
use super::shared_replay;

mod dead_letters;
mod fetch;
mod gates;
mod inits;
mod js;
mod script_files;

pub(crate) use dead_letters::{store_letter, Stored};
pub(crate) use fetch::call;
use fetch::{forward, read_body};
use gates::{enqueue, rate_allowed, release, replay_checked, Checked};
pub(crate) use js::{
    append, attempts_of, binding, body_bytes, body_text, header, sent_as_text, split_url,
};
use js::{fixed, header_pairs, wait_until};

thread_local! {
    /// The isolate's memory (replays, browser clients' buckets).
    static STATE: RefCell<EdgeState> = RefCell::new(EdgeState::default());
    /// `env` as last read, and what it gave: workerd hands the same object to every
    /// request of an isolate, so it is read once.
    static CONFIG: RefCell<Option<(JsValue, Settled)>> = const { RefCell::new(None) };
}

/// What an `env` gave, shared by the requests that bring the same `env`.
type Settled = Rc<Result<EdgeConfig, ConfigError>>;

pub(super) fn config(env: &JsValue) -> Settled {
    let seen = CONFIG.with(|c| match &*c.borrow() {
        Some((seen, cfg)) if Object::is(seen, env) => Some(Rc::clone(cfg)),
        _ => None,
    });
    seen.unwrap_or_else(|| read_config(env))
}

/// Reads `env` (once per isolate): its own function, so the per-request check above
/// stays small for V8 to compile.
#[inline(never)]
fn read_config(env: &JsValue) -> Settled {
    let cfg = Rc::new(
        match Settings::deserialize(serde_wasm_bindgen::Deserializer::from(env.clone())) {
            Ok(s) => EdgeConfig::from_settings(&s).and_then(|c| bindings_checked(env).map(|()| c)),
            Err(_) => Err(ConfigError {
                setting: "env",
                reason: "must be an object of settings",
            }),
        },
    );
    CONFIG.with(|c| *c.borrow_mut() = Some((env.clone(), Rc::clone(&cfg))));
    cfg
}

/// The optional bindings, each by the method the worker calls on it, and what it must
/// be. One given as something else (a `[vars]` string of the same name, a KV namespace
/// where a queue belongs) would be taken as absent and its safeguard silently off: it
/// is a setting refused, named, like any other.
const BINDINGS: [(&str, &str, &str); 6] = [
    ("DELIVERY_QUEUE", "send", "must be a Queue binding"),
    ("DELIVERY_DEAD_LETTERS", "send", "must be a Queue binding"),
    (
        "REPLAY_GUARD",
        "idFromName",
        "must be a Durable Object namespace binding",
    ),
    ("REPLAY_KV", "get", "must be a KV namespace binding"),
    (
        "DEAD_LETTER_STORE",
        "list",
        "must be a KV namespace binding",
    ),
    (
        "BROWSER_RATE_LIMITER",
        "limit",
        "must be a rate-limit binding",
    ),
];

fn bindings_checked(env: &JsValue) -> Result<(), ConfigError> {
    for (setting, method, reason) in BINDINGS {
        // Absent, null or a blank string (as for every setting) is unset.
        let given = Reflect::get(env, &JsValue::from_str(setting)).is_ok_and(|v| {
            !v.is_undefined() && !v.is_null() && v.as_string().is_none_or(|t| !t.trim().is_empty())
        });
        if given && binding(env, setting, method).is_none() {
            return Err(ConfigError { setting, reason });
        }
    }
    Ok(())
}

/// The fetch handler: `export default { fetch: handle }` (see `js/edge/worker.mjs`).
/// Resolves to a `Response`; a failure of its own is a 500 JSON:API error. It rejects
/// only if the runtime cannot even make a `Response`.
///
/// `options` (optional): `{ clientAddress }`, the caller's IP address as the host knows
/// it, for runtimes other than Cloudflare's (Node, Deno, Bun). On Cloudflare, where
/// every request carries the runtime's `cf` object, the address is `cf-connecting-ip`,
/// which Cloudflare's edge sets.
#[wasm_bindgen]
pub fn handle(request: Request, env: JsValue, ctx: JsValue, options: JsValue) -> Promise {
    executor::spawn(async move {
        let cfg = config(&env);
        let method = request.method();
        // The script-tag files, from the head alone (script.rs).
        if let (Ok(c), "GET" | "HEAD") = (&*cfg, method.as_str()) {
            if let Some(r) = script_files::answer(&request, c, &method)? {
                return Ok(r.into());
            }
        }
        let reply = match serve(&request, &cfg, &method, &env, &ctx, &options).await {
            Ok(r) => r,
            Err(_) => error(
                500,
                "worker_error",
                "The worker failed.",
                "the worker could not handle this request",
                None,
            ),
        };
        respond(reply).map(JsValue::from)
    })
}

/// The address the host passed in `options.clientAddress`, if any.
fn given_address(options: &JsValue) -> Option<String> {
    if !options.is_object() {
        return None;
    }
    Reflect::get(options, &"clientAddress".into())
        .ok()
        .and_then(|v| v.as_string())
}

/// Whether the request came through Cloudflare's edge: workerd gives each request its
/// `cf` object there; a request a host made itself has none.
fn through_cloudflare(request: &Request) -> bool {
    Reflect::get(request, &"cf".into()).is_ok_and(|cf| cf.is_object())
}

/// Whether this runtime is Cloudflare's (workerd says `Cloudflare-Workers` as its
/// `navigator.userAgent`), asked once per isolate.
fn on_cloudflare() -> bool {
    thread_local! {
        static ON: bool = Reflect::get(&js_sys::global(), &"navigator".into())
            .and_then(|n| Reflect::get(&n, &"userAgent".into()))
            .ok()
            .and_then(|ua| ua.as_string())
            .is_some_and(|ua| ua == "Cloudflare-Workers");
    }
    ON.with(|on| *on)
}

/// Whether the request says it comes from a sandboxed frame (`Origin: null`).
fn says_sandboxed_frame(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(k, v)| k == "origin" && v == router::NULL_ORIGIN)
}

/// Cloudflare's bot score (`request.cf.botManagement.score`, 1 to 99), where Bot
/// Management gives one.
fn bot_score(request: &Request) -> Option<u8> {
    let cf = Reflect::get(request, &"cf".into()).ok()?;
    let bm = Reflect::get(&cf, &"botManagement".into()).ok()?;
    let score = Reflect::get(&bm, &"score".into()).ok()?.as_f64()?;
    (1.0..=99.0).contains(&score).then_some(score as u8)
}

async fn serve(
    request: &Request,
    cfg: &Result<EdgeConfig, ConfigError>,
    method: &str,
    env: &JsValue,
    ctx: &JsValue,
    options: &JsValue,
) -> Result<Reply, JsValue> {
    let url = request.url();
    let (path, query) = split_url(&url);
    // One `Headers` for every read: each `request.headers()` is a call into the runtime.
    let request_headers = request.headers();
    let names = router::headers_for(path, cfg);
    let headers = header_pairs(&request_headers, names);
    let declared =
        header(&request_headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    // Only the routes that read an address ask the runtime for one.
    let given = names
        .contains(&"cf-connecting-ip")
        .then(|| given_address(options))
        .flatten();
    // A page's `/client` call: the runtime says whether this is Cloudflare, once per
    // isolate. Reading a request's `cf` object costs workerd a parse of it per request,
    // and the address serves only as `location.ip` there, which the page could as well
    // have written into its body. The signed and rate-limited routes check `cf` itself,
    // and so does a sandboxed frame's `/client` call: its address keys its rate gate.
    let client_route = names.contains(&"user-agent");
    let per_isolate = client_route && !says_sandboxed_frame(&headers);
    let peer = match &given {
        Some(a) => Peer::Given(Some(a)),
        None if per_isolate && on_cloudflare() => Peer::Cloudflare,
        None if !per_isolate
            && names.contains(&"cf-connecting-ip")
            && through_cloudflare(request) =>
        {
            Peer::Cloudflare
        }
        None => Peer::Given(None),
    };
    let head = Head {
        method,
        path,
        query,
        headers: &headers,
        peer,
        declared_length: declared,
        // Only where a score is asked for (`BOT_SCORE_MIN`), on the `/client` routes.
        bot_score: match cfg {
            Ok(c) if client_route && c.filter_bots && c.bot_score_min.is_some() => {
                bot_score(request)
            }
            _ => None,
        },
        now_ms: js_sys::Date::now() as u64,
    };
    let route = match router::admit(&head, cfg) {
        Admission::Reply(r) => return Ok(r),
        Admission::ReadBody(route) => route,
    };
    let Ok(cfg) = cfg else {
        // admit() answers a configuration error itself.
        return Ok(no_key());
    };
    // The rate gate before the body is read: a client over its rate costs no read.
    if let Some(key) = route.rate_key {
        if !out_of_line(rate_allowed(key, cfg, env, head.now_ms)).await? {
            return Ok(router::rate_limited(route.cors.as_deref()));
        }
    }
    let (body, received, too_large) = read_body(request, declared, cfg.max_body_bytes).await?;
    let decision = router::decide_body(
        &head,
        &route,
        Body {
            bytes: &body,
            too_large,
        },
        cfg,
    );
    if decision.gate.replay_key.is_some() {
        return out_of_line(gated(decision, body, &received, &head, cfg, env, ctx)).await;
    }
    // Decided: the wasm copy of the body is no longer needed while upstream answers.
    drop(body);
    match decision.action {
        Action::Reply(r) => Ok(r),
        Action::Forward(f) => {
            let r = forward(&f, &received).await?;
            Ok(router::first_party_mark(r, path, cfg, f.cors.as_deref()))
        }
        other => out_of_line(carry_out(other, &received, path, cfg, env, ctx)).await,
    }
}

/// `step` as a boxed `dyn` future: its code stays its own function, called through a
/// table, which neither LLVM nor wasm-opt inlines. Every step `/client` does not take
/// goes through it, so the `/client` path's state machine holds only its own steps and
/// a fresh isolate compiles (and V8 tiers up) little to answer it.
fn out_of_line<'a, T>(step: impl Future<Output = T> + 'a) -> Pin<Box<dyn Future<Output = T> + 'a>> {
    Box::pin(step)
}

/// A signed call or a verified webhook: its signature's first use, then the delivery
/// queue where one is bound, else what it asks.
async fn gated(
    Decision { action, gate }: Decision,
    body: Vec<u8>,
    received: &Uint8Array,
    head: &Head<'_>,
    cfg: &EdgeConfig,
    env: &JsValue,
    ctx: &JsValue,
) -> Result<Reply, JsValue> {
    let now_ms = head.now_ms;
    // With a queue bound, a signed call or a verified webhook is handed to it
    // (delivery/plan.rs); the messages are made before the body is let go.
    let queued = match (&gate.replay_key, binding(env, "DELIVERY_QUEUE", "send")) {
        (Some(tag), Some(queue)) => {
            delivery::plan(&action, tag, &body, cfg, now_ms).map(|p| (p, queue, *tag))
        }
        _ => None,
    };
    // A message Klaviyo refuses is kept in the dead-letter queue alone: with none bound
    // nothing is queued (a 500 naming it), rather than a refusal later lost. What would
    // not be queued (a webhook with nowhere to forward it) is answered as ever.
    if matches!(queued, Some((Plan::Enqueue(_), ..)))
        && binding(env, "DELIVERY_DEAD_LETTERS", "send").is_none()
    {
        return Ok(reply::missing("DELIVERY_DEAD_LETTERS").cors(gate.cors.as_deref()));
    }
    // Sent here, not queued: its events get the time they were accepted, so that the
    // retries of `forward` are the same events to Klaviyo.
    let action = match queued {
        Some((Plan::Enqueue(_), ..)) => action,
        _ => router::direct(action, &body, cfg, now_ms),
    };
    // Decided: the wasm copy of the body is no longer needed while upstream answers.
    drop(body);
    let claim = match replay_checked(&gate, env, now_ms).await? {
        Checked::Refused(denied) => return Ok(denied),
        Checked::Claimed(claim) => Some(claim),
        Checked::Unkeyed => None,
    };
    if let Some((Plan::Enqueue(parts), (queue, send), tag)) = queued {
        let cors = gate.cors.as_deref().or(match &action {
            router::Action::Forward(f) => f.cors.as_deref(),
            _ => None,
        });
        let taken = enqueue(&queue, &send, &parts).await;
        // Klaviyo retries a webhook only after a 429 or a 5xx, and no 409 tells it what
        // was kept: one taken in part is answered 503, and sent again whole (the
        // receiver de-duplicates the events queued twice by their `external_id`).
        let webhook = matches!(action, router::Action::ReplyAndNotify { .. });
        if taken < parts.len() {
            // Nothing queued (nor sent), or a webhook to be sent again: the signature
            // is let go, so that the same call sent again after the 503 is accepted,
            // not refused as a replay.
            if let (true, Some(claim)) = (taken == 0 || webhook, claim) {
                release(claim, env).await;
            }
            // None taken: "nothing was queued"; some: which leading part was.
            return Ok(if webhook {
                delivery::queue_unavailable(None)
            } else {
                delivery::not_all_queued(&tag, &parts, taken, cors)
            });
        }
        return Ok(match action {
            // Klaviyo's webhook is answered as before: it was verified and is kept.
            router::Action::ReplyAndNotify { reply, .. } => reply,
            _ => delivery::queued(&tag, parts.len(), cors),
        });
    }
    carry_out(action, received, head.path, cfg, env, ctx).await
}

/// Does what the router decided.
async fn carry_out(
    action: Action,
    received: &Uint8Array,
    path: &str,
    cfg: &EdgeConfig,
    env: &JsValue,
    ctx: &JsValue,
) -> Result<Reply, JsValue> {
    match action {
        Action::Reply(r) => Ok(r),
        Action::DeadLetters(ask) => dead_letters::answer(ask, env).await,
        Action::ReplyAndNotify { reply, notify } => {
            let received = received.clone();
            let sent = executor::spawn(async move {
                let _ = call(&notify, &received).await;
                Ok(JsValue::UNDEFINED)
            });
            wait_until(ctx, &sent);
            Ok(reply)
        }
        Action::Forward(f) => {
            let r = forward(&f, received).await?;
            Ok(router::first_party_mark(r, path, cfg, f.cors.as_deref()))
        }
        Action::AddToList {
            list_id,
            members,
            cors,
        } => {
            let mut ids = members.ids;
            for (at, body) in &members.imports {
                let Some(f) = router::import_request(cfg, body, cors.as_deref()) else {
                    return Ok(no_key());
                };
                let answer = forward(&f, received).await?;
                if !answer.is_success() {
                    return Ok(answer);
                }
                match router::imported_id(&answer.body, cors.as_deref()) {
                    Ok(id) => {
                        if let Some(slot) = ids.get_mut(*at) {
                            *slot = Some(id);
                        }
                    }
                    Err(r) => return Ok(r),
                }
            }
            let ids: Vec<String> = ids.into_iter().flatten().collect();
            match router::add_to_list_request(cfg, &list_id, &ids, cors.as_deref()) {
                Some(f) => forward(&f, received).await,
                None => Ok(no_key()),
            }
        }
    }
}

fn no_key() -> Reply {
    reply::missing("KLAVIYO_PRIVATE_KEY")
}

pub(super) fn respond(r: Reply) -> Result<Response, JsValue> {
    let init = inits::answer_init(r.status, &r.headers)?;
    if r.status == 204 || r.body.is_empty() {
        Response::new_with_opt_str_and_init(None, &init)
    } else {
        Response::new_with_opt_str_and_init(Some(&r.body), &init)
    }
}
