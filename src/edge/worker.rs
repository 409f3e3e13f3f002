//! The wasm entry points for `js/edge/handler.mjs`. Settings arrive as a plain object of
//! strings (the worker's `env`); decisions leave as JSON text the handler carries out.
//! Nothing here logs, and no reply contains a setting's value.

use js_sys::{Array, Reflect};
use wasm_bindgen::prelude::*;

use super::config::{EdgeConfig, DEFAULT_MAX_BODY};
use super::router::{self, Action, Incoming, Next, Upstream};
use crate::core::json::Json;

fn config(env: &JsValue) -> Result<EdgeConfig, super::config::ConfigError> {
    EdgeConfig::from_env(|k| {
        Reflect::get(env, &JsValue::from_str(k))
            .ok()
            .and_then(|v| v.as_string())
    })
}

/// How many body bytes to read before giving up (MAX_BODY_BYTES).
#[wasm_bindgen(js_name = bodyLimit)]
pub fn body_limit(env: &JsValue) -> f64 {
    config(env).map_or(DEFAULT_MAX_BODY, |c| c.max_body_bytes) as f64
}

/// Decides one request. `headers`: `[[name, value], ...]` with lower-case names.
/// Returns `{"reply":{status,headers,body}}`, `{"reply":..,"notify":{url,body}}` or
/// `{"forward":{url,headers,body,cors}}`.
#[wasm_bindgen]
#[allow(clippy::too_many_arguments)]
pub fn decide(
    method: &str,
    path: &str,
    query: &str,
    headers: Array,
    body: &str,
    too_large: bool,
    env: &JsValue,
    now_ms: f64,
) -> String {
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|pair| {
            let pair = Array::from(&pair);
            Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
        })
        .collect();
    let req = Incoming {
        method,
        path,
        query,
        headers: &headers,
        body,
        too_large,
        now_ms: now_ms as u64,
    };
    let out = match router::decide(&req, config(env)) {
        Action::Reply(r) => Json::obj().with("reply", r.to_json()),
        Action::ReplyAndNotify { reply, url, body } => {
            Json::obj().with("reply", reply.to_json()).with(
                "notify",
                Json::obj()
                    .with("url", Json::Str(url))
                    .with("body", Json::Str(body)),
            )
        }
        Action::Forward(f) => {
            let headers = f
                .headers
                .into_iter()
                .map(|(k, v)| Json::Arr(vec![Json::str(k), Json::Str(v)]))
                .collect();
            let cors = f.cors.map_or(Json::Null, Json::Str);
            Json::obj().with(
                "forward",
                Json::obj()
                    .with("url", Json::Str(f.url))
                    .with("headers", Json::Arr(headers))
                    .with("body", Json::Str(f.body))
                    .with("cors", cors)
                    .with("timeoutMs", Json::Num(f.timeout_ms.to_string())),
            )
        }
    };
    out.to_text()
}

/// After upstream answered attempt `attempt` (status 0: no answer): `{"retryIn":ms}` or
/// `{"reply":{...}}`.
#[wasm_bindgen(js_name = afterUpstream)]
pub fn after_upstream(
    attempt: u32,
    status: u16,
    retry_after: Option<String>,
    content_type: Option<String>,
    body: String,
    cors: Option<String>,
) -> String {
    let outcome = if status == 0 {
        Upstream::Failed
    } else {
        Upstream::Answered {
            status,
            retry_after,
            content_type,
            body,
        }
    };
    match router::after_upstream(attempt, outcome, cors.as_deref()) {
        Next::RetryIn(ms) => Json::obj().with("retryIn", Json::Num(ms.to_string())),
        Next::Reply(r) => Json::obj().with("reply", r.to_json()),
    }
    .to_text()
}
