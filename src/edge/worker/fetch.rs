//! Reading the request's body (never past the limit, into wasm memory once) and sending
//! upstream: one attempt with gloo-net (never following a redirect, timed out where it
//! carries the key), and the retry policy around it.

use js_sys::{Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::Request;

use super::inits::upstream_init;
use super::js::FixedInit;

use super::*;

/// Sends `f` with the upstream retry policy; the caller's answer. `received`: the
/// request's own bytes, for a forward of them as received.
pub(crate) async fn forward(f: &Forward, received: &Uint8Array) -> Result<Reply, JsValue> {
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
pub(crate) async fn call(f: &Forward, received: &Uint8Array) -> Upstream {
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

pub(crate) fn upstream_request(f: &Forward, received: &Uint8Array) -> Result<Request, JsValue> {
    // A timed call gets an init of its own: its signal is for this request only.
    let init = match f.timeout_ms {
        None => upstream_init(&f.headers)?,
        Some(ms) => {
            let init = fresh_init(&f.headers)?;
            let ms = ms.min(u64::from(u32::MAX)) as u32;
            init.set_signal(Some(&web_sys::AbortSignal::timeout_with_u32(ms)));
            init
        }
    };
    // As bytes: no UTF-8 -> UTF-16 -> UTF-8 round trip through a JS string. The
    // request's own bytes go as the runtime holds them: no copy back out of wasm.
    match &f.body {
        Payload::AsReceived => init.set_body(received),
        Payload::Text(t) => init.set_body(&Uint8Array::from(t.as_bytes())),
    }
    Request::new_with_str_and_init(&f.url, &init)
}

/// A new init of an upstream POST with `headers` that never follows a redirect.
fn fresh_init(headers: &[(&'static str, String)]) -> Result<web_sys::RequestInit, JsValue> {
    let h = web_sys::Headers::new()?;
    for (k, v) in headers {
        append(&h, k, v)?;
    }
    let init = web_sys::RequestInit::new();
    init.unchecked_ref::<FixedInit>()
        .set_method_fixed(&fixed("POST"));
    init.set_redirect(web_sys::RequestRedirect::Manual);
    init.set_headers(&h);
    Ok(init)
}

pub(crate) async fn sleep(ms: u64) -> Result<(), JsValue> {
    let set: Function = Reflect::get(&js_sys::global(), &"setTimeout".into())?.dyn_into()?;
    let p = Promise::new(&mut |resolve, _| {
        let _ = set.call2(&JsValue::NULL, &resolve, &JsValue::from(ms as f64));
    });
    JsFuture::from(p).await.map(|_| ())
}

/// The body's bytes, reading no more than `limit`: `(a copy in wasm memory, the
/// runtime's own bytes, too_large)`. `declared`: the request's `content-length`, if
/// any. A streamed body is gathered in the runtime's memory and copied into wasm once,
/// so wasm memory grows by the body's size, not by a growing buffer's.
pub(crate) async fn read_body(
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
pub(crate) async fn read_stream(
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
