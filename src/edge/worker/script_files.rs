//! The script-tag files the worker serves (`script.rs` decides; this carries it out):
//! `worker.mjs` hands them over once per isolate with [`set_script_files`], and they
//! stay JS values (the `.wasm` a `Uint8Array`), so a request copies nothing into wasm
//! memory. Only their digests are computed here, once.

use std::cell::RefCell;

use js_sys::{JsString, Uint8Array};
use wasm_bindgen::prelude::*;
use web_sys::{Request, Response, ResponseInit};

use super::{append, header, respond, split_url};
use crate::edge::config::EdgeConfig;
use crate::edge::script::{self, Built, ScriptFile, Served};

struct Files {
    built: Built,
    js: JsString,
    wasm: Uint8Array,
    snippet: JsString,
}

thread_local! {
    static FILES: RefCell<Option<Files>> = const { RefCell::new(None) };
}

/// `setScriptFiles(js, wasm, snippet)`: the contents of `dist/script/`, for
/// `GET /script/…` (see `script.rs`).
#[wasm_bindgen(js_name = setScriptFiles)]
pub fn set_script_files(js: JsString, wasm: Uint8Array, snippet: JsString) {
    let built = Built::new(
        String::from(&js).as_bytes(),
        &wasm.to_vec(),
        String::from(&snippet).as_bytes(),
    );
    FILES.with(|f| {
        *f.borrow_mut() = Some(Files {
            built,
            js,
            wasm,
            snippet,
        })
    });
}

/// The answer to a `GET` or `HEAD` of `/script/…` when the worker serves the script,
/// else `None` (the request is routed as any other).
#[inline(never)] // not on the `/client` path
pub fn answer(
    request: &Request,
    cfg: &EdgeConfig,
    method: &str,
) -> Result<Option<Response>, JsValue> {
    if !cfg.serve_script || !(method == "GET" || method == "HEAD") {
        return Ok(None);
    }
    let url = request.url();
    let (path, _) = split_url(&url);
    let Some(wanted) = path
        .strip_prefix(cfg.route_prefix.as_str())
        .and_then(script::route)
    else {
        return Ok(None);
    };
    // The worker as the page reaches it: the request's origin and the route prefix.
    let after = url.find("://").map_or(0, |i| i + 3);
    let origin_end = url[after..].find('/').map_or(url.len(), |i| after + i);
    let mut base = url[..origin_end].to_string();
    base.push_str(&cfg.route_prefix);
    let if_none_match = header(&request.headers(), "if-none-match");
    FILES.with(|f| {
        let f = f.borrow();
        let served = script::serve(
            &wanted,
            f.as_ref().map(|f| &f.built),
            if_none_match.as_deref(),
            &base,
            cfg.public_key.as_deref(),
        );
        match (served, f.as_ref()) {
            (Served::Reply(r), _) => respond(r).map(Some),
            (
                Served::File {
                    file,
                    prefix,
                    headers,
                },
                Some(files),
            ) => {
                let init = ResponseInit::new();
                init.set_status(200);
                let h = web_sys::Headers::new()?;
                for (k, v) in headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .chain(crate::edge::reply::ALWAYS.iter().copied())
                {
                    append(&h, k, v)?;
                }
                init.set_headers(&h);
                if method == "HEAD" {
                    return Response::new_with_opt_str_and_init(None, &init).map(Some);
                }
                match file {
                    ScriptFile::Wasm => {
                        Response::new_with_opt_buffer_source_and_init(Some(&files.wasm), &init)
                    }
                    ScriptFile::Js => {
                        let body: JsString = JsString::from(prefix.as_str()).concat(&files.js);
                        Response::new_with_opt_str_and_init(body.as_string().as_deref(), &init)
                    }
                    ScriptFile::Snippet => Response::new_with_opt_str_and_init(
                        files.snippet.as_string().as_deref(),
                        &init,
                    ),
                }
                .map(Some)
            }
            // serve() answers a reply when nothing is built.
            (Served::File { .. }, None) => Ok(None),
        }
    })
}
