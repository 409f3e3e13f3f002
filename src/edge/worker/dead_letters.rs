//! The kept dead letters' I/O (decisions in `edge/dead_letters`): the consumer of the
//! dead-letter queue writes each message to `DEAD_LETTER_STORE` (KV), and the signed
//! calls list, read, send again (to `DELIVERY_QUEUE`) and delete them.

use js_sys::{Array, Date, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::{binding, body_bytes, body_text, sent_as_text};
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

/// What became of a message of the dead-letter queue.
pub(crate) enum Stored {
    Kept,
    /// The store is not bound, or failed.
    StoreFailed,
    /// A body no text holds (a `Map`, a `Date`): left in its queue.
    NoText,
}

/// Writes message `m` of the dead-letter queue to the store.
pub(crate) async fn store_letter(m: &JsValue, env: &JsValue) -> Stored {
    let body = Reflect::get(m, &"body".into()).unwrap_or(JsValue::UNDEFINED);
    // Bytes that are not UTF-8 are kept as hex in a letter of their own, listed
    // unreadable: whole, and in the listing.
    let text =
        body_text(&body).or_else(|| body_bytes(&body).map(|b| dead_letters::bytes_letter(&b)));
    let Some(text) = text else {
        return Stored::NoText;
    };
    let id = Reflect::get(m, &"id".into())
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default();
    let at = Reflect::get(m, &"timestamp".into())
        .ok()
        .and_then(|t| t.dyn_into::<Date>().ok())
        .map_or_else(Date::now, |d| d.get_time());
    // A host that gives no id: a random one, so that two such letters never share a key.
    let fallback = format!("{:016x}", (js_sys::Math::random() * 2f64.powi(53)) as u64);
    let kept = dead_letters::kept(&text, &id, at.max(0.0) as u64, &fallback);
    let Ok(metadata) = js_sys::JSON::parse(&kept.metadata.to_string()) else {
        return Stored::StoreFailed;
    };
    let opts = object(&[("metadata", metadata)]);
    let key = dead_letters::key(&kept.id);
    let args = [
        JsValue::from_str(&key),
        JsValue::from_str(&text),
        opts.into(),
    ];
    match kv(env, "put", &args).await {
        Ok(_) => Stored::Kept,
        Err(_) => Stored::StoreFailed,
    }
}

/// Carries out a signed call on the kept letters.
pub(crate) async fn answer(ask: Ask, env: &JsValue) -> Result<Reply, JsValue> {
    if binding(env, STORE, "list").is_none() {
        return Ok(reply::missing(STORE));
    }
    match ask {
        Ask::List { cursor } => list(env, cursor).await,
        Ask::Read { id } => read(env, &id).await,
        Ask::Resend { ids } => {
            let Some((queue, send)) = binding(env, "DELIVERY_QUEUE", "send") else {
                return Ok(reply::missing("DELIVERY_QUEUE"));
            };
            // As on the fetch path: nothing is queued where a refusal could not be kept.
            if binding(env, "DELIVERY_DEAD_LETTERS", "send").is_none() {
                return Ok(reply::missing("DELIVERY_DEAD_LETTERS"));
            }
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let outcome = resend(env, &id, &queue, &send).await;
                out.push((id, outcome));
            }
            Ok(dead_letters::outcomes(&out))
        }
        Ask::Delete { ids } => {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let key = JsValue::from_str(&dead_letters::key(&id));
                let outcome = match kv(env, "delete", &[key]).await {
                    Ok(_) => Outcome::Deleted,
                    Err(_) => Outcome::StoreUnavailable,
                };
                out.push((id, outcome));
            }
            Ok(dead_letters::outcomes(&out))
        }
    }
}

/// `of.metadata` as JSON text, where it is an object.
fn metadata_text(of: &JsValue) -> Option<String> {
    let meta = Reflect::get(of, &"metadata".into()).ok()?;
    if !meta.is_object() {
        return None;
    }
    js_sys::JSON::stringify(&meta).ok()?.as_string()
}

/// A page of letters with their metadata, oldest first.
async fn list(env: &JsValue, cursor: Option<String>) -> Result<Reply, JsValue> {
    let mut opts = vec![
        ("prefix", JsValue::from_str(dead_letters::KEY_PREFIX)),
        ("limit", JsValue::from(dead_letters::PAGE as u32)),
    ];
    let asked_from = cursor.is_some();
    if let Some(c) = cursor {
        opts.push(("cursor", JsValue::from_str(&c)));
    }
    let page = match kv(env, "list", &[object(&opts).into()]).await {
        Ok(page) => page,
        // KV refuses a cursor it did not give, saying so; any other failure is the
        // store's, to be asked again.
        Err(e) if asked_from && names_the_cursor(&e) => return Ok(dead_letters::bad_cursor()),
        Err(_) => return Ok(dead_letters::store_unavailable()),
    };
    let keys: Array = Reflect::get(&page, &"keys".into())?.dyn_into()?;
    let mut entries = Vec::with_capacity(keys.length() as usize);
    for k in keys.iter() {
        let name = Reflect::get(&k, &"name".into())?
            .as_string()
            .unwrap_or_default();
        let meta = metadata_text(&k);
        entries.push((dead_letters::id_of(&name).to_string(), meta));
    }
    let complete = Reflect::get(&page, &"list_complete".into())?.is_truthy();
    let next = Reflect::get(&page, &"cursor".into())
        .ok()
        .and_then(|c| c.as_string())
        .filter(|c| !complete && !c.is_empty());
    Ok(dead_letters::listing(&entries, next.as_deref()))
}

/// Whether a KV error is about the cursor given.
fn names_the_cursor(e: &JsValue) -> bool {
    let text = Reflect::get(e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_default();
    text.to_ascii_lowercase().contains("cursor")
}

/// `getWithMetadata(key)`: the letter and its metadata (JSON text), if kept.
async fn fetched(env: &JsValue, id: &str) -> Result<Option<(String, Option<String>)>, JsValue> {
    let key = JsValue::from_str(&dead_letters::key(id));
    let got = kv(env, "getWithMetadata", &[key, "text".into()]).await?;
    let Some(value) = Reflect::get(&got, &"value".into())?.as_string() else {
        return Ok(None);
    };
    Ok(Some((value, metadata_text(&got))))
}

async fn read(env: &JsValue, id: &str) -> Result<Reply, JsValue> {
    Ok(match fetched(env, id).await {
        Ok(Some((value, meta))) => dead_letters::letter(id, meta.as_deref(), &value),
        Ok(None) => dead_letters::not_found(),
        Err(_) => dead_letters::store_unavailable(),
    })
}

/// One letter's message back on the delivery queue, then out of the store. Deleted only
/// once the queue has it: a failure in between leaves it kept and listed, and says so.
async fn resend(env: &JsValue, id: &str, queue: &JsValue, send: &Function) -> Outcome {
    let value = match fetched(env, id).await {
        Ok(Some((value, _))) => value,
        Ok(None) => return Outcome::NotFound,
        Err(_) => return Outcome::StoreUnavailable,
    };
    let Some(again) = dead_letters::resendable(&value) else {
        return Outcome::NotResendable;
    };
    if !sent_as_text(queue, send, &again.message, None).await {
        return Outcome::QueueUnavailable;
    }
    let delivery = again.delivery;
    match kv(env, "delete", &[JsValue::from_str(&dead_letters::key(id))]).await {
        Ok(_) => Outcome::Queued { delivery },
        // Queued, but still listed: sent again, it would go twice.
        Err(_) => Outcome::QueuedStillKept { delivery },
    }
}
