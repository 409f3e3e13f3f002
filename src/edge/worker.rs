//! The worker's I/O, for any fetch-handler runtime (workerd, Node, Deno, Bun): an async
//! `handle(request, env, ctx, options)` that reads the request and `env`, asks `router`
//! what to do, and does it: the head first, then (rate gate passed) the body, read
//! into wasm memory once. Upstream calls use gloo-net (the global `fetch`) and never
//! follow a redirect. Nothing here decides, logs, or puts a setting's value in an
//! answer.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, Response, ResponseInit};

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

thread_local! {
    /// The isolate's memory (replays, browser clients' buckets).
    static STATE: RefCell<EdgeState> = RefCell::new(EdgeState::default());
    /// `env` as last read, and what it gave: workerd hands the same object to every
    /// request of an isolate, so it is read once.
    static CONFIG: RefCell<Option<(JsValue, Settled)>> = const { RefCell::new(None) };
}

#[wasm_bindgen]
extern "C" {
    /// A `Headers` that takes its names (and fixed values) as JS strings made once by
    /// [`fixed`]: `web_sys::Headers` takes `&str`, copied out of wasm memory and
    /// decoded afresh on every call.
    #[wasm_bindgen(js_name = Headers)]
    type FixedHeaders;
    #[wasm_bindgen(method, js_name = get)]
    fn get_fixed(this: &FixedHeaders, name: &JsValue) -> Option<String>;
    #[wasm_bindgen(method, catch, js_name = append)]
    fn append_fixed(this: &FixedHeaders, name: &JsValue, value: &JsValue) -> Result<(), JsValue>;
    /// `RequestInit.method` from a JS string made once.
    #[wasm_bindgen(js_name = Object)]
    type FixedInit;
    #[wasm_bindgen(method, setter = method)]
    fn set_method_fixed(this: &FixedInit, method: &JsValue);
}

fn fixed_headers(headers: &web_sys::Headers) -> &FixedHeaders {
    headers.unchecked_ref()
}

thread_local! {
    /// Header names and fixed values as JS strings, made once per isolate, in the
    /// slots [`fixed_slot`] gives them.
    static FIXED: RefCell<[Option<JsValue>; FIXED_SLOTS]> =
        const { RefCell::new([const { None }; FIXED_SLOTS]) };
}

/// `text` as a JS string: the one made once when [`fixed_slot`] knows it, else a new one.
fn fixed(text: &str) -> JsValue {
    let Some(slot) = fixed_slot(text) else {
        return JsValue::from_str(text);
    };
    FIXED.with(|f| {
        let mut f = f.borrow_mut();
        match f.get_mut(slot) {
            None => JsValue::from_str(text),
            Some(Some(js)) => js.clone(),
            Some(empty) => empty.insert(JsValue::from_str(text)).clone(),
        }
    })
}

/// `headers.get(name)`.
pub(super) fn header(headers: &web_sys::Headers, name: &str) -> Option<String> {
    fixed_headers(headers).get_fixed(&fixed(name))
}

/// `headers.append(name, value)`.
pub(super) fn append(headers: &web_sys::Headers, name: &str, value: &str) -> Result<(), JsValue> {
    fixed_headers(headers).append_fixed(&fixed(name), &fixed(value))
}

/// What an `env` gave, shared by the requests that bring the same `env`.
type Settled = Rc<Result<EdgeConfig, ConfigError>>;

pub(super) fn config(env: &JsValue) -> Settled {
    CONFIG.with(|c| {
        if let Some((seen, cfg)) = &*c.borrow() {
            if Object::is(seen, env) {
                return Rc::clone(cfg);
            }
        }
        let cfg = Rc::new(
            match Settings::deserialize(serde_wasm_bindgen::Deserializer::from(env.clone())) {
                Ok(s) => EdgeConfig::from_settings(&s),
                Err(_) => Err(ConfigError {
                    setting: "env",
                    reason: "must be an object of settings",
                }),
            },
        );
        *c.borrow_mut() = Some((env.clone(), Rc::clone(&cfg)));
        cfg
    })
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
        // The script-tag files, from the head alone (script.rs).
        if let Ok(cfg) = &*config(&env) {
            if let Some(r) = super::script_files::answer(&request, cfg)? {
                return Ok(r.into());
            }
        }
        let reply = match serve(&request, &env, &ctx, &options).await {
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
    env: &JsValue,
    ctx: &JsValue,
    options: &JsValue,
) -> Result<Reply, JsValue> {
    let settled_cfg = config(env);
    let cfg = &*settled_cfg;
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
    // have written into its body. The signed and rate-limited routes check `cf` itself.
    let client_route = names.contains(&"user-agent");
    let peer = match &given {
        Some(a) => Peer::Given(Some(a)),
        None if client_route && on_cloudflare() => Peer::Cloudflare,
        None if !client_route
            && names.contains(&"cf-connecting-ip")
            && through_cloudflare(request) =>
        {
            Peer::Cloudflare
        }
        None => Peer::Given(None),
    };
    let method = request.method();
    let head = Head {
        method: &method,
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
        if !rate_allowed(key, cfg, env, head.now_ms).await? {
            return Ok(router::rate_limited(route.cors.as_deref()));
        }
    }
    let (body, received, too_large) = read_body(request, declared, cfg.max_body_bytes).await?;
    let Decision { action, gate } = router::decide_body(
        &head,
        &route,
        Body {
            bytes: &body,
            too_large,
        },
        cfg,
    );
    // With a queue bound, a signed call or a verified webhook is handed to it
    // (delivery.rs); the messages are made before the body is let go.
    let queued = match (&gate.replay_key, binding(env, "DELIVERY_QUEUE", "send")) {
        (Some(tag), Some(queue)) => {
            delivery::plan(&action, tag, &body, cfg, head.now_ms).map(|p| (p, queue, *tag))
        }
        _ => None,
    };
    // Decided: the wasm copy of the body is no longer needed while upstream answers.
    drop(body);
    if let Some(denied) = replay_checked(&gate, env, head.now_ms).await? {
        return Ok(denied);
    }
    if let Some((Plan::Enqueue(messages), (queue, send), tag)) = queued {
        let cors = gate.cors.as_deref().or(match &action {
            router::Action::Forward(f) => f.cors.as_deref(),
            _ => None,
        });
        if !enqueue(&queue, &send, &messages).await {
            return Ok(delivery::queue_unavailable(cors));
        }
        return Ok(match action {
            // Klaviyo's webhook is answered as before: it was verified and is kept.
            router::Action::ReplyAndNotify { reply, .. } => reply,
            _ => delivery::queued(&tag, messages.len(), cors),
        });
    }
    match action {
        Action::Reply(r) => Ok(r),
        Action::ReplyAndNotify { reply, notify } => {
            let sent = executor::spawn(async move {
                let _ = call(&notify, &received).await;
                Ok(JsValue::UNDEFINED)
            });
            wait_until(ctx, &sent);
            Ok(reply)
        }
        Action::Forward(f) => {
            let r = forward(&f, &received).await?;
            Ok(router::first_party_mark(r, path, cfg))
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
                let answer = forward(&f, &received).await?;
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
                Some(f) => forward(&f, &received).await,
                None => Ok(no_key()),
            }
        }
    }
}

fn no_key() -> Reply {
    error(
        500,
        "missing_setting",
        "The worker is not configured.",
        "KLAVIYO_PRIVATE_KEY is not set",
        None,
    )
}

/// The browser path's rate gate: Cloudflare's binding `BROWSER_RATE_LIMITER` where
/// configured (keyed by the client's network and the configured origin), else this
/// isolate's buckets.
async fn rate_allowed(
    key: ClientKey,
    cfg: &EdgeConfig,
    env: &JsValue,
    now_ms: u64,
) -> Result<bool, JsValue> {
    let Some((obj, limit)) = binding(env, "BROWSER_RATE_LIMITER", "limit") else {
        return Ok(STATE.with(|s| {
            s.borrow_mut()
                .limits
                .allow(key, cfg.browser_rate_per_minute, now_ms)
        }));
    };
    let arg = Object::new();
    Reflect::set(
        &arg,
        &"key".into(),
        &JsValue::from_str(&key.text(&cfg.allowed_origins)),
    )?;
    let out = JsFuture::from(Promise::from(limit.call1(&obj, &arg)?)).await?;
    Ok(Reflect::get(&out, &"success".into())?
        .as_bool()
        .unwrap_or(true))
}

/// Checks a decision's replay key: this isolate's memory first (a cache), then the
/// Durable Object namespace bound as `REPLAY_GUARD` (one answer for every isolate and
/// location), else a KV namespace bound as `REPLAY_KV` (eventually consistent).
/// `Some(reply)` when refused.
async fn replay_checked(
    gate: &router::Gate,
    env: &JsValue,
    now_ms: u64,
) -> Result<Option<Reply>, JsValue> {
    let Some(tag) = &gate.replay_key else {
        return Ok(None);
    };
    let first = STATE.with(|s| s.borrow_mut().replay.first_use(tag, (now_ms / 1000) as i64));
    if !first {
        return Ok(Some(router::replayed(gate.cors.as_deref())));
    }
    if let Some((ns, id_from_name)) = binding(env, "REPLAY_GUARD", "idFromName") {
        return Ok(match shared_claim(&ns, &id_from_name, tag).await {
            Ok(shared_replay::FRESH) => None,
            Ok(shared_replay::SEEN) => Some(router::replayed(gate.cors.as_deref())),
            // Not known to be fresh: refused for now, and the caller signs anew.
            _ => Some(replay_guard_unavailable(gate.cors.as_deref())),
        });
    }
    if let Some((kv, get)) = binding(env, "REPLAY_KV", "get") {
        let key = JsValue::from_str(&hex::encode(tag));
        let seen = JsFuture::from(Promise::from(get.call1(&kv, &key)?)).await?;
        if !seen.is_null() && !seen.is_undefined() {
            return Ok(Some(router::replayed(gate.cors.as_deref())));
        }
        let put: Function = Reflect::get(&kv, &"put".into())?.dyn_into()?;
        let opts = Object::new();
        // Past the signature window (and KV's 60 s minimum), a replay is stale anyway.
        Reflect::set(
            &opts,
            &"expirationTtl".into(),
            &JsValue::from(2 * super::auth::WINDOW_S as u32),
        )?;
        JsFuture::from(Promise::from(put.call3(&kv, &key, &"1".into(), &opts)?)).await?;
    }
    Ok(None)
}

/// Claims `tag` in its Durable Object: the status it answered (200 fresh, 409 seen).
async fn shared_claim(
    ns: &JsValue,
    id_from_name: &Function,
    tag: &[u8; 32],
) -> Result<u16, JsValue> {
    let id = id_from_name.call1(ns, &JsValue::from_str(&shared_replay::shard(tag)))?;
    let get: Function = Reflect::get(ns, &"get".into())?.dyn_into()?;
    let stub = get.call1(ns, &id)?;
    let fetch: Function = Reflect::get(&stub, &"fetch".into())?.dyn_into()?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(&shared_replay::claim(tag)));
    let answer = fetch.call2(&stub, &"https://replay-guard/claim".into(), &init)?;
    let answer: Response = JsFuture::from(Promise::from(answer)).await?.dyn_into()?;
    Ok(answer.status())
}

fn replay_guard_unavailable(cors: Option<&str>) -> Reply {
    error(
        503,
        "replay_guard_unavailable",
        "The call was not accepted.",
        "the replay guard could not be reached; sign the call anew and retry",
        None,
    )
    .header("retry-after", "1")
    .cors(cors)
}

/// Sends each message to the queue (as text: bodies stay raw JSON inside). `false` if
/// the queue refused one (over its rate, its backlog full): the caller is told to retry.
async fn enqueue(queue: &JsValue, send: &Function, messages: &[String]) -> bool {
    let opts = Object::new();
    if Reflect::set(&opts, &"contentType".into(), &"text".into()).is_err() {
        return false;
    }
    for m in messages {
        let Ok(p) = send.call2(queue, &JsValue::from_str(m), &opts) else {
            return false;
        };
        if JsFuture::from(Promise::from(p)).await.is_err() {
            return false;
        }
    }
    true
}

/// `env[name]` when it is an object with a method `method`.
pub(super) fn binding(env: &JsValue, name: &str, method: &str) -> Option<(JsValue, Function)> {
    let obj = Reflect::get(env, &JsValue::from_str(name))
        .ok()
        .filter(JsValue::is_object)?;
    let f = Reflect::get(&obj, &JsValue::from_str(method))
        .ok()?
        .dyn_into::<Function>()
        .ok()?;
    Some((obj, f))
}

/// `ctx.waitUntil(promise)` where the runtime has it (workerd); elsewhere the promise
/// simply runs on.
fn wait_until(ctx: &JsValue, promise: &Promise) {
    let f = Reflect::get(ctx, &"waitUntil".into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok());
    if let Some(f) = f {
        let _ = f.call1(ctx, promise);
    }
}

/// Sends `f` with the upstream retry policy; the caller's answer. `received`: the
/// request's own bytes, for a forward of them as received.
async fn forward(f: &Forward, received: &Uint8Array) -> Result<Reply, JsValue> {
    let mut attempt = 0;
    loop {
        let outcome = call(f, received).await;
        match router::after_upstream(
            attempt,
            outcome,
            f.cors.as_deref(),
            js_sys::Date::now() as u64,
        ) {
            Next::Reply(r) => return Ok(r),
            Next::RetryIn(ms) => sleep(ms).await?,
        }
        attempt += 1;
    }
}

/// One attempt: a POST that never follows a redirect, given up after `timeout_ms`
/// when there is one.
/// The request is built once here and sent through gloo-net (the global `fetch`);
/// gloo-net's own builder would re-parse the URL through a throwaway `Request` and
/// `URL` on every call, which costs more than the rest of the worker's work.
pub(super) async fn call(f: &Forward, received: &Uint8Array) -> Upstream {
    let Ok(req) = upstream_request(f, received) else {
        return Upstream::Failed;
    };
    let Ok(resp) = gloo_net::http::Request::from(req).send().await else {
        return Upstream::Failed;
    };
    // A browser-style runtime hides a redirect's status ("opaqueredirect", 0).
    let status = match resp.status() {
        0 if resp.type_() == web_sys::ResponseType::Opaqueredirect => 302,
        s => s,
    };
    // Each header read is a call into the runtime: only those the answer needs.
    let headers = resp.headers().into_raw();
    let get = |name: &str| header(&headers, name);
    // Klaviyo's 202s are empty: no read (one await fewer) when the length says so.
    let (body, content_type) = if get("content-length").as_deref() == Some("0") {
        (String::new(), None)
    } else {
        (resp.text().await.unwrap_or_default(), get("content-type"))
    };
    Upstream::Answered {
        status,
        // Klaviyo and proxies send it with a 429 or a 503.
        retry_after: if status == 429 || status >= 500 {
            get("retry-after")
        } else {
            None
        },
        content_type,
        body,
    }
}

fn upstream_request(f: &Forward, received: &Uint8Array) -> Result<Request, JsValue> {
    let headers = web_sys::Headers::new()?;
    for (k, v) in &f.headers {
        append(&headers, k, v)?;
    }
    let init = web_sys::RequestInit::new();
    init.unchecked_ref::<FixedInit>()
        .set_method_fixed(&fixed("POST"));
    init.set_redirect(web_sys::RequestRedirect::Manual);
    init.set_headers(&headers);
    // As bytes: no UTF-8 -> UTF-16 -> UTF-8 round trip through a JS string. The
    // request's own bytes go as the runtime holds them: no copy back out of wasm.
    match &f.body {
        Payload::AsReceived => init.set_body(received),
        Payload::Text(t) => init.set_body(&Uint8Array::from(t.as_bytes())),
    }
    if let Some(ms) = f.timeout_ms {
        let ms = ms.min(u64::from(u32::MAX)) as u32;
        init.set_signal(Some(&web_sys::AbortSignal::timeout_with_u32(ms)));
    }
    Request::new_with_str_and_init(&f.url, &init)
}

async fn sleep(ms: u64) -> Result<(), JsValue> {
    let set: Function = Reflect::get(&js_sys::global(), &"setTimeout".into())?.dyn_into()?;
    let p = Promise::new(&mut |resolve, _| {
        let _ = set.call2(&JsValue::NULL, &resolve, &JsValue::from(ms as f64));
    });
    JsFuture::from(p).await.map(|_| ())
}

/// `https://host/a/b?x=1` -> (`/a/b`, `x=1`).
pub(super) fn split_url(url: &str) -> (&str, &str) {
    // Byte scans: `str::find` with a `&str` pattern builds a two-way searcher per call.
    let after_scheme = url
        .as_bytes()
        .windows(3)
        .position(|w| w == b"://")
        .map_or(0, |i| i + 3);
    let rest = &url[after_scheme..];
    let path_and_query = rest.find('/').map_or("/", |i| &rest[i..]);
    let path_and_query = path_and_query.split('#').next().unwrap_or("/");
    match path_and_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_and_query, ""),
    }
}

/// The headers the router reads on this route, as `(name, value)` pairs.
fn header_pairs(headers: &web_sys::Headers, names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|name| Some((name.to_string(), header(headers, name)?)))
        .collect()
}

/// The body's bytes, reading no more than `limit`: `(a copy in wasm memory, the
/// runtime's own bytes, too_large)`. `declared`: the request's `content-length`, if
/// any. A streamed body is gathered in the runtime's memory and copied into wasm once,
/// so wasm memory grows by the body's size, not by a growing buffer's.
async fn read_body(
    request: &Request,
    declared: Option<u64>,
    limit: usize,
) -> Result<(Vec<u8>, Uint8Array, bool), JsValue> {
    let refused = || (Vec::new(), Uint8Array::new_with_length(0), true);
    if declared.is_some_and(|n| n > limit as u64) {
        return Ok(refused());
    }
    let bytes = if declared.is_some() {
        // A declared length within the limit: one read by the runtime itself.
        // (A runtime that lets the header lie is still held to the limit.)
        Uint8Array::new(&settled(&request.array_buffer()?).await?)
    } else {
        let Some(stream) = request.body() else {
            return Ok((Vec::new(), Uint8Array::new_with_length(0), false));
        };
        match read_stream(stream, limit).await? {
            Some(bytes) => bytes,
            None => return Ok(refused()),
        }
    };
    let len = bytes.length() as usize;
    if len > limit {
        return Ok(refused());
    }
    let mut body = vec![0; len];
    bytes.copy_to(&mut body);
    Ok((body, bytes, false))
}

/// A streamed body's bytes, gathered by the runtime; `None` past `limit` (the rest is
/// not read).
async fn read_stream(
    stream: web_sys::ReadableStream,
    limit: usize,
) -> Result<Option<Uint8Array>, JsValue> {
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().dyn_into()?;
    let chunks = js_sys::Array::new();
    let mut total = 0usize;
    loop {
        let chunk = settled(&reader.read()).await?;
        if Reflect::get(&chunk, &"done".into())?
            .as_bool()
            .unwrap_or(true)
        {
            break;
        }
        let bytes: Uint8Array = Reflect::get(&chunk, &"value".into())?.dyn_into()?;
        total += bytes.length() as usize;
        if total > limit {
            let _ = settled(&reader.cancel()).await;
            return Ok(None);
        }
        chunks.push(&bytes);
    }
    let all = Uint8Array::new_with_length(total as u32);
    let mut at = 0u32;
    for chunk in chunks.iter() {
        let chunk: Uint8Array = chunk.unchecked_into();
        all.set(&chunk, at);
        at += chunk.length();
    }
    Ok(Some(all))
}

pub(super) fn respond(r: Reply) -> Result<Response, JsValue> {
    let init = ResponseInit::new();
    init.set_status(r.status);
    let headers = web_sys::Headers::new()?;
    for (k, v) in r
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(reply::ALWAYS.iter().copied())
    {
        append(&headers, k, v)?;
    }
    init.set_headers(&headers);
    if r.status == 204 || r.body.is_empty() {
        Response::new_with_opt_str_and_init(None, &init)
    } else {
        Response::new_with_opt_str_and_init(Some(&r.body), &init)
    }
}
