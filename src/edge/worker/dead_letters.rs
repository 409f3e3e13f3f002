//! The kept dead letters' I/O (decisions in `edge/dead_letters`): the consumer of the
//! dead-letter queue writes each message to `DEAD_LETTER_STORE` (KV), and the signed
//! calls list, read, send again (to `DELIVERY_QUEUE`) and delete them.

use js_sys::{Array, Date, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::{binding, sent_as_text};
use crate::edge::dead_letters::{self, Ask, Outcome};
use crate::edge::reply::{self, Reply};

const STORE: &str = "DEAD_LETTER_STORE";

/// `store.<method>(args...)`, awaited.
async fn kv(env: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let Some((store, f)) = binding(env, STORE, method) else {
        return Err(JsValue::from_str("DEAD_LETTER_STORE is not bound"));
    };
    let p = f.apply(&store, &args.iter().collect::<Array>())?;
    JsFuture::from(Promise::resolve(&p)).await
}

fn object(pairs: &[(&str, JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in pairs {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o
}

/// Keeps message `m` of the dead-letter queue: whether the store has it now.
pub(crate) async fn keep(m: &JsValue, env: &JsValue) -> bool {
    let body = Reflect::get(m, &"body".into()).ok();
    // A letter is text; a message some other producer sent as JSON is kept as JSON text.
    let text = match body {
        Some(b) if b.is_string() => b.as_string().unwrap_or_default(),
        Some(b) => js_sys::JSON::stringify(&b)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_default(),
        None => String::new(),
    };
    let id = Reflect::get(m, &"id".into())
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default();
    let at = Reflect::get(m, &"timestamp".into())
        .ok()
        .and_then(|t| t.dyn_into::<Date>().ok())
        .map_or_else(Date::now, |d| d.get_time());
    let kept = dead_letters::kept(&text, &id, at.max(0.0) as u64);
    let Ok(metadata) = js_sys::JSON::parse(&kept.metadata.to_string()) else {
        return false;
    };
    let opts = object(&[("metadata", metadata)]);
    let args = [
        JsValue::from_str(&kept.key),
        JsValue::from_str(&text),
        opts.into(),
    ];
    kv(env, "put", &args).await.is_ok()
}

/// Carries out a signed call on the kept letters.
pub(crate) async fn answer(ask: Ask, env: &JsValue) -> Result<Reply, JsValue> {
    if binding(env, STORE, "get").is_none() {
        return Ok(reply::missing(STORE));
    }
    match ask {
        Ask::List { cursor } => list(env, cursor).await,
        Ask::Read { id } => read(env, &id).await,
        Ask::Resend { ids } => {
            let Some((queue, send)) = binding(env, "DELIVERY_QUEUE", "send") else {
                return Ok(reply::missing("DELIVERY_QUEUE"));
            };
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let outcome = resend(env, &id, &queue, &send).await?;
                out.push((id, outcome));
            }
            Ok(dead_letters::outcomes(&out))
        }
        Ask::Delete { ids } => {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                kv(env, "delete", &[JsValue::from_str(&id)]).await?;
                out.push((id, Outcome::Deleted));
            }
            Ok(dead_letters::outcomes(&out))
        }
    }
}

/// A page of keys with their metadata, oldest first.
async fn list(env: &JsValue, cursor: Option<String>) -> Result<Reply, JsValue> {
    let mut opts = vec![("limit", JsValue::from(dead_letters::PAGE as u32))];
    if let Some(c) = cursor {
        opts.push(("cursor", JsValue::from_str(&c)));
    }
    let page = kv(env, "list", &[object(&opts).into()]).await?;
    let keys: Array = Reflect::get(&page, &"keys".into())?.dyn_into()?;
    let mut entries = Vec::with_capacity(keys.length() as usize);
    for k in keys.iter() {
        let name = Reflect::get(&k, &"name".into())?
            .as_string()
            .unwrap_or_default();
        let meta = Reflect::get(&k, &"metadata".into())
            .ok()
            .filter(|m| m.is_object())
            .and_then(|m| js_sys::JSON::stringify(&m).ok())
            .and_then(|s| s.as_string());
        entries.push((name, meta));
    }
    let complete = Reflect::get(&page, &"list_complete".into())?.is_truthy();
    let next = Reflect::get(&page, &"cursor".into())
        .ok()
        .and_then(|c| c.as_string())
        .filter(|c| !complete && !c.is_empty());
    Ok(dead_letters::listing(&entries, next.as_deref()))
}

/// `getWithMetadata(id)`: the letter and its metadata (JSON text), if kept.
async fn fetched(env: &JsValue, id: &str) -> Result<Option<(String, Option<String>)>, JsValue> {
    let got = kv(
        env,
        "getWithMetadata",
        &[JsValue::from_str(id), "text".into()],
    )
    .await?;
    let Some(value) = Reflect::get(&got, &"value".into())?.as_string() else {
        return Ok(None);
    };
    let meta = Reflect::get(&got, &"metadata".into())
        .ok()
        .filter(|m| m.is_object())
        .and_then(|m| js_sys::JSON::stringify(&m).ok())
        .and_then(|s| s.as_string());
    Ok(Some((value, meta)))
}

async fn read(env: &JsValue, id: &str) -> Result<Reply, JsValue> {
    Ok(match fetched(env, id).await? {
        Some((value, meta)) => dead_letters::letter(id, meta.as_deref(), &value),
        None => dead_letters::not_found(),
    })
}

/// One letter's message back on the delivery queue, then out of the store. Deleted only
/// once the queue has it: a failure in between leaves it kept (sent again, its events
/// keep their `unique_id`, so Klaviyo keeps each once).
async fn resend(
    env: &JsValue,
    id: &str,
    queue: &JsValue,
    send: &Function,
) -> Result<Outcome, JsValue> {
    let Some((value, _)) = fetched(env, id).await? else {
        return Ok(Outcome::NotFound);
    };
    let Some(message) = dead_letters::resendable(&value) else {
        return Ok(Outcome::NotResendable);
    };
    if !sent_as_text(queue, send, &message, None).await {
        return Ok(Outcome::QueueUnavailable);
    }
    // The queue has it: a delete that fails leaves the letter listed, no more.
    let _ = kv(env, "delete", &[JsValue::from_str(id)]).await;
    Ok(Outcome::Queued {
        delivery: dead_letters::delivery_of(&message),
    })
}
