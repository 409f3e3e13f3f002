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

/// A signature's first use, as [`replay_checked`] recorded it: what to undo with
/// [`release`] when the call is refused before any of it was acted on.
pub(crate) struct Claim {
    tag: [u8; 32],
    /// The second this isolate's memory took it at.
    at_s: i64,
    shared: Shared,
}

/// Where else the claim was recorded.
enum Shared {
    None,
    /// In its `REPLAY_GUARD` object, which stored this expiry.
    Guard(f64),
    /// In `REPLAY_KV`.
    Kv,
}

/// What [`replay_checked`] found.
pub(crate) enum Checked {
    /// No replay key: nothing to claim.
    Unkeyed,
    /// First use, claimed.
    Claimed(Claim),
    /// Refused: a replay, or the guard unreachable.
    Refused(Reply),
}

/// Checks a decision's replay key: this isolate's memory first (a cache), then the
/// Durable Object namespace bound as `REPLAY_GUARD` (one answer for every isolate and
/// location), else a KV namespace bound as `REPLAY_KV` (eventually consistent).
/// A claim that is refused after the memory took it (the guard unreachable, KV
/// failing) is let go there again: nothing of the call was acted on, and the same call
/// sent again must not be refused as its own replay.
pub(crate) async fn replay_checked(
    gate: &router::Gate,
    env: &JsValue,
    now_ms: u64,
) -> Result<Checked, JsValue> {
    let Some(tag) = &gate.replay_key else {
        return Ok(Checked::Unkeyed);
    };
    let at_s = (now_ms / 1000) as i64;
    let first = STATE.with(|s| s.borrow_mut().replay.first_use(tag, at_s));
    if !first {
        return Ok(Checked::Refused(router::replayed(gate.cors.as_deref())));
    }
    let unclaim = || STATE.with(|s| s.borrow_mut().replay.release(tag, at_s));
    let shared = match shared_checked(tag, env).await {
        Ok(Some(shared)) => shared,
        // Seen by the shared guard: a replay, and the memory may keep it (a cache).
        Ok(None) => return Ok(Checked::Refused(router::replayed(gate.cors.as_deref()))),
        Err(e) => {
            unclaim();
            return match e {
                // Not known to be fresh: refused for now. Its object may have stored the
                // claim (its answer lost); that is not released, as it may be another
                // call's.
                Unreached::Guard => Ok(Checked::Refused(replay_guard_unavailable(
                    gate.cors.as_deref(),
                ))),
                Unreached::Kv(e) => Err(e),
            };
        }
    };
    Ok(Checked::Claimed(Claim {
        tag: *tag,
        at_s,
        shared,
    }))
}

/// Why the shared guard gave no answer.
enum Unreached {
    Guard,
    Kv(JsValue),
}

/// The shared guard's claim of `tag`: `Some` fresh (where it was recorded), `None`
/// seen before.
async fn shared_checked(tag: &[u8; 32], env: &JsValue) -> Result<Option<Shared>, Unreached> {
    if let Some((ns, id_from_name)) = binding(env, "REPLAY_GUARD", "idFromName") {
        return match shared_claim(&ns, &id_from_name, tag).await {
            Ok((shared_replay::FRESH, expires)) => {
                // No expiry read: fresh, but never released (the safe side).
                Ok(Some(expires.map_or(Shared::None, Shared::Guard)))
            }
            Ok((shared_replay::SEEN, _)) => Ok(None),
            _ => Err(Unreached::Guard),
        };
    }
    if let Some((kv, get)) = binding(env, "REPLAY_KV", "get") {
        return kv_claim(&kv, &get, tag).await.map_err(Unreached::Kv);
    }
    Ok(Some(Shared::None))
}

/// `tag`'s key in `REPLAY_KV`: its hex.
fn kv_key(tag: &[u8; 32]) -> JsValue {
    JsValue::from_str(&hex::encode(tag))
}

async fn kv_claim(kv: &JsValue, get: &Function, tag: &[u8; 32]) -> Result<Option<Shared>, JsValue> {
    let key = kv_key(tag);
    let seen = JsFuture::from(Promise::from(get.call1(kv, &key)?)).await?;
    if !seen.is_null() && !seen.is_undefined() {
        return Ok(None);
    }
    let put: Function = Reflect::get(kv, &"put".into())?.dyn_into()?;
    let opts = Object::new();
    // Past the signature window (and KV's 60 s minimum), a replay is stale anyway.
    Reflect::set(
        &opts,
        &"expirationTtl".into(),
        &JsValue::from(shared_replay::KEEP_S as u32),
    )?;
    JsFuture::from(Promise::from(put.call3(kv, &key, &"1".into(), &opts)?)).await?;
    Ok(Some(Shared::Kv))
}

/// Lets go of a claim: for a call answered with a 503 before any of it was queued or
/// sent (the queue took none of its messages), so that the same call sent again (a
/// client's retry, Klaviyo's own of a webhook) is accepted rather than refused as a
/// replay. Never for a call of which anything was queued or sent. Best effort, and
/// finished before the 503 is answered: a release that fails leaves the claim, and
/// the retry is refused as a replay, as before (the caller signs anew).
pub(crate) async fn release(claim: Claim, env: &JsValue) {
    let Claim { tag, at_s, shared } = claim;
    STATE.with(|s| s.borrow_mut().replay.release(&tag, at_s));
    match shared {
        Shared::None => {}
        Shared::Guard(expires) => {
            if let Some((ns, id_from_name)) = binding(env, "REPLAY_GUARD", "idFromName") {
                let _ = shared_release(&ns, &id_from_name, &tag, expires).await;
            }
        }
        Shared::Kv => {
            if let Some((kv, delete)) = binding(env, "REPLAY_KV", "delete") {
                let _ = settles(delete.call1(&kv, &kv_key(&tag))).await;
            }
        }
    }
}

/// The stub of `tag`'s Durable Object.
fn shared_stub(
    ns: &JsValue,
    id_from_name: &Function,
    tag: &[u8; 32],
) -> Result<(JsValue, Function), JsValue> {
    let id = id_from_name.call1(ns, &JsValue::from_str(&shared_replay::shard(tag)))?;
    let get: Function = Reflect::get(ns, &"get".into())?.dyn_into()?;
    let stub = get.call1(ns, &id)?;
    let fetch: Function = Reflect::get(&stub, &"fetch".into())?.dyn_into()?;
    Ok((stub, fetch))
}

/// `POST`s `body` to `tag`'s Durable Object at `url`.
async fn shared_post(
    ns: &JsValue,
    id_from_name: &Function,
    tag: &[u8; 32],
    url: &str,
    body: &str,
) -> Result<Response, JsValue> {
    let (stub, fetch) = shared_stub(ns, id_from_name, tag)?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    let answer = fetch.call2(&stub, &JsValue::from_str(url), &init)?;
    JsFuture::from(Promise::from(answer)).await?.dyn_into()
}

/// Claims `tag` in its Durable Object: the status it answered (200 fresh, 409 seen),
/// and for a fresh claim the expiry it stored (its release names it).
pub(crate) async fn shared_claim(
    ns: &JsValue,
    id_from_name: &Function,
    tag: &[u8; 32],
) -> Result<(u16, Option<f64>), JsValue> {
    let answer = shared_post(
        ns,
        id_from_name,
        tag,
        "https://replay-guard/claim",
        &shared_replay::claim(tag),
    )
    .await?;
    let status = answer.status();
    let expires = if status == shared_replay::FRESH {
        JsFuture::from(answer.text()?)
            .await?
            .as_string()
            .as_deref()
            .and_then(shared_replay::read_claimed)
    } else {
        None
    };
    Ok((status, expires))
}

/// Releases `tag`'s claim that stored `expires` in its Durable Object: the status it
/// answered (200 released, 409 the entry another claim's or gone).
async fn shared_release(
    ns: &JsValue,
    id_from_name: &Function,
    tag: &[u8; 32],
    expires: f64,
) -> Result<u16, JsValue> {
    let answer = shared_post(
        ns,
        id_from_name,
        tag,
        "https://replay-guard/release",
        &shared_replay::release(tag, expires),
    )
    .await?;
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
