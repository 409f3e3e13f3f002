//! A replay guard that holds across every isolate and location: a Durable Object
//! namespace bound as `REPLAY_GUARD` (class `ReplayGuard`, exported by the worker).
//! A signature's tag is claimed in one object, picked by the tag's first byte (256
//! shards: tags are HMAC outputs, so the load spreads evenly and no object is a hot
//! spot). An object answers a claim from its own storage, one request at a time (its
//! input gate), so two isolates that race with one signature get one "fresh" between
//! them. Entries are dropped by the object's alarm once their window is past. Each
//! isolate's own memory stays in front as a cache (`auth::ReplayGuard`).
//!
//! The rules are here, plain; the class (wasm only) carries them out on the object's
//! storage.

use super::auth::WINDOW_S;

/// How long an object remembers a tag: a signature is accepted within `WINDOW_S` of its
/// time on either side (that last second included), so a tag seen now can come back
/// until twice that: it is forgotten one second later.
pub const KEEP_S: i64 = 2 * WINDOW_S as i64 + 1;

/// The object (by name) that holds `tag`.
pub fn shard(tag: &[u8; 32]) -> String {
    let mut name = String::from("replay-");
    name.push_str(&hex::encode(&tag[..1]));
    name
}

/// A claim, as the worker sends it to the object: the tag in hex.
pub fn claim(tag: &[u8; 32]) -> String {
    hex::encode(tag)
}

/// A claim as the object reads it: 64 hex digits, else `None`.
pub fn read_claim(body: &str) -> Option<&str> {
    (body.len() == 64 && body.bytes().all(|b| b.is_ascii_hexdigit())).then_some(body)
}

/// A fresh claim's answer: the expiry the object stored, for the claim's release.
pub fn claimed(expires: f64) -> String {
    format!("{}", expires as i64)
}

/// The expiry in a fresh claim's answer, else `None` (then the claim is not released).
pub fn read_claimed(body: &str) -> Option<f64> {
    body.parse::<i64>().ok().map(|e| e as f64)
}

/// A release, as the worker sends it to the object (`/release`): the tag in hex and the
/// expiry its claim stored. The worker releases a claim only when it answered a 503 and
/// nothing of the call was queued or sent, so the same call sent again is not refused.
pub fn release(tag: &[u8; 32], expires: f64) -> String {
    format!("{} {}", hex::encode(tag), expires as i64)
}

/// A release as the object reads it: the tag (64 hex digits) and the expiry.
pub fn read_release(body: &str) -> Option<(&str, f64)> {
    let (tag, expires) = body.split_once(' ')?;
    Some((read_claim(tag)?, read_claimed(expires)?))
}

/// Whether a release of the claim that stored `expires` drops the entry the object
/// has (`stored`): only that claim's own, never a later claim's, so a release sent late
/// or twice cannot let a call that was accepted since be accepted again.
pub fn releases(stored: Option<f64>, expires: f64) -> bool {
    stored == Some(expires)
}

/// Whether a tag whose entry expires at `stored` (if the object has one) is used for
/// the first time at `now_s`; when it is, the object stores `now_s + KEEP_S`.
pub fn first_use(stored: Option<f64>, now_s: i64) -> bool {
    stored.is_none_or(|expires| expires <= now_s as f64)
}

/// The least time between two sweeps of an object. A sweep lists every entry it holds;
/// woken at each next expiry it would list them all about once a second under steady
/// claims (601 seconds' worth of them each time). A minute apart, expired entries wait
/// up to a minute longer, which costs nothing: an expired one is a first use again.
pub const SWEEP_EVERY_S: i64 = 60;

/// When an object's alarm should wake (in seconds), the earliest entry expiring at
/// `next_expiry_s` and the sweep running at `now_s`.
pub fn next_sweep_s(next_expiry_s: f64, now_s: i64) -> f64 {
    next_expiry_s.max((now_s + SWEEP_EVERY_S) as f64)
}

/// The status an object answers a claim with: 200 first use, 409 seen, 400 not a claim.
pub const FRESH: u16 = 200;
pub const SEEN: u16 = 409;

#[cfg(target_arch = "wasm32")]
pub use object::SharedReplayGuard;

#[cfg(target_arch = "wasm32")]
mod object {
    use js_sys::{Array, Function, Map, Promise, Reflect};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{Request, Response, ResponseInit};

    use super::super::executor;
    use super::{
        claimed, first_use, next_sweep_s, read_claim, read_release, releases, FRESH, KEEP_S, SEEN,
    };

    /// The Durable Object class: `export { ReplayGuard } from "./klaviyo_edge.mjs"`.
    #[wasm_bindgen(js_name = ReplayGuard)]
    pub struct SharedReplayGuard {
        storage: JsValue,
    }

    #[wasm_bindgen(js_class = ReplayGuard)]
    impl SharedReplayGuard {
        /// `new ReplayGuard(state, env)`, as workerd makes it.
        #[wasm_bindgen(constructor)]
        pub fn new(state: JsValue, _env: JsValue) -> SharedReplayGuard {
            let storage = Reflect::get(&state, &"storage".into()).unwrap_or(JsValue::UNDEFINED);
            SharedReplayGuard { storage }
        }

        /// A claim: `POST` with the tag in hex. 200 the first time (the expiry stored,
        /// as text), 409 after. A release (`POST /release`, the tag and that expiry):
        /// 200 when that claim's entry was dropped, 409 when the entry is another's or
        /// gone.
        pub fn fetch(&self, request: Request) -> Promise {
            let storage = self.storage.clone();
            executor::spawn(async move {
                let releasing = request.url().ends_with("/release");
                let text = JsFuture::from(request.text()?).await?;
                let text = text.as_string();
                let (status, body) = if releasing {
                    match text.as_deref().and_then(read_release) {
                        None => (400, None),
                        Some((tag, expires)) => (release(&storage, tag, expires).await?, None),
                    }
                } else {
                    match text.as_deref().and_then(read_claim) {
                        None => (400, None),
                        Some(tag) => claim(&storage, tag).await?,
                    }
                };
                let init = ResponseInit::new();
                init.set_status(status);
                Ok(Response::new_with_opt_str_and_init(body.as_deref(), &init)?.into())
            })
        }

        /// The object's alarm: forgets the tags whose window is past, and wakes again for
        /// the next one to expire.
        pub fn alarm(&self) -> Promise {
            let storage = self.storage.clone();
            executor::spawn(async move {
                sweep(&storage).await?;
                Ok(JsValue::UNDEFINED)
            })
        }
    }

    fn now_s() -> i64 {
        (js_sys::Date::now() / 1000.0) as i64
    }

    async fn call(storage: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
        let f: Function = Reflect::get(storage, &JsValue::from_str(method))?.dyn_into()?;
        let out = f.apply(storage, &args.iter().collect::<Array>())?;
        JsFuture::from(Promise::resolve(&out)).await
    }

    async fn release(storage: &JsValue, tag: &str, expires: f64) -> Result<u16, JsValue> {
        let key = JsValue::from_str(tag);
        let stored = stored(storage, &key).await?;
        if !releases(stored, expires) {
            return Ok(SEEN);
        }
        call(storage, "delete", &[key]).await?;
        Ok(FRESH)
    }

    /// The expiry stored for `key`, if any.
    async fn stored(storage: &JsValue, key: &JsValue) -> Result<Option<f64>, JsValue> {
        Ok(call(storage, "get", std::slice::from_ref(key))
            .await?
            .as_f64())
    }

    async fn claim(storage: &JsValue, tag: &str) -> Result<(u16, Option<String>), JsValue> {
        let key = JsValue::from_str(tag);
        let now = now_s();
        let stored = stored(storage, &key).await?;
        if !first_use(stored, now) {
            return Ok((SEEN, None));
        }
        let expires = (now + KEEP_S) as f64;
        call(storage, "put", &[key, JsValue::from(expires)]).await?;
        // One alarm at a time: the earliest expiry wakes the object.
        if call(storage, "getAlarm", &[]).await?.is_null() {
            call(storage, "setAlarm", &[JsValue::from(expires * 1000.0)]).await?;
        }
        Ok((FRESH, Some(claimed(expires))))
    }

    async fn sweep(storage: &JsValue) -> Result<(), JsValue> {
        let now_s = now_s();
        let now = now_s as f64;
        let all: Map = call(storage, "list", &[]).await?.dyn_into()?;
        let gone = Array::new();
        let mut next: Option<f64> = None;
        all.for_each(&mut |value, key| match value.as_f64() {
            Some(e) if e > now => next = Some(next.map_or(e, |n: f64| n.min(e))),
            _ => {
                gone.push(&key);
            }
        });
        // `delete` takes at most 128 keys at a time.
        let keys: Vec<JsValue> = gone.iter().collect();
        for chunk in keys.chunks(128) {
            call(storage, "delete", &[chunk.iter().collect::<Array>().into()]).await?;
        }
        if let Some(n) = next {
            let at = next_sweep_s(n, now_s);
            call(storage, "setAlarm", &[JsValue::from(at * 1000.0)]).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "shared_replay_tests.rs"]
mod tests;
