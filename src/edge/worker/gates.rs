//! The gates between the router's two steps and upstream: the browser path's rate (the
//! rate-limit binding, else this isolate's buckets), a signature's first use (memory,
//! then `REPLAY_GUARD` or `REPLAY_KV`), and the delivery queue's send.

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::Response;

use super::*;

/// The browser path's rate gate: Cloudflare's binding `BROWSER_RATE_LIMITER` where
/// configured (keyed by the client's network and the configured origin), else this
/// isolate's buckets.
pub(crate) async fn rate_allowed(
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
pub(crate) async fn replay_checked(
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
            &JsValue::from(shared_replay::KEEP_S as u32),
        )?;
        JsFuture::from(Promise::from(put.call3(&kv, &key, &"1".into(), &opts)?)).await?;
    }
    Ok(None)
}

/// Claims `tag` in its Durable Object: the status it answered (200 fresh, 409 seen).
pub(crate) async fn shared_claim(
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

pub(crate) fn replay_guard_unavailable(cors: Option<&str>) -> Reply {
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

/// Puts a call's messages on the queue, as text (bodies stay raw JSON inside), in as
/// few `sendBatch` calls as Queues' limits allow: each batch is taken whole or not at
/// all. A binding without `sendBatch` gets them one `send` at a time. Stops at the
/// first refusal (over its rate, its backlog full) and returns how many leading
/// messages the queue took.
pub(crate) async fn enqueue(queue: &JsValue, send: &Function, parts: &[delivery::Part]) -> usize {
    let send_batch = Reflect::get(queue, &"sendBatch".into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok());
    match send_batch {
        Some(send_batch) => by_batches(queue, &send_batch, parts).await,
        None => one_by_one(queue, send, parts).await,
    }
}

async fn by_batches(queue: &JsValue, send_batch: &Function, parts: &[delivery::Part]) -> usize {
    let lens: Vec<usize> = parts.iter().map(|p| p.text.len()).collect();
    let mut taken = 0;
    for run in delivery::batches(&lens) {
        let list = js_sys::Array::new();
        for p in parts.get(run.clone()).unwrap_or_default() {
            let Ok(m) = text_message(&p.text) else {
                return taken;
            };
            list.push(&m);
        }
        if !settles(send_batch.call1(queue, &list)).await {
            return taken;
        }
        taken = run.end;
    }
    taken
}

/// `{ body, contentType: "text" }`: one message of a `sendBatch`.
fn text_message(text: &str) -> Result<Object, JsValue> {
    let m = Object::new();
    Reflect::set(&m, &"body".into(), &JsValue::from_str(text))?;
    Reflect::set(&m, &"contentType".into(), &"text".into())?;
    Ok(m)
}

async fn one_by_one(queue: &JsValue, send: &Function, parts: &[delivery::Part]) -> usize {
    let opts = Object::new();
    if Reflect::set(&opts, &"contentType".into(), &"text".into()).is_err() {
        return 0;
    }
    for (taken, p) in parts.iter().enumerate() {
        if !settles(send.call2(queue, &JsValue::from_str(&p.text), &opts)).await {
            return taken;
        }
    }
    parts.len()
}

/// Whether a binding call neither threw nor rejected.
async fn settles(called: Result<JsValue, JsValue>) -> bool {
    match called {
        Ok(p) => JsFuture::from(Promise::resolve(&p)).await.is_ok(),
        Err(_) => false,
    }
}
