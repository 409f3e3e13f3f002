//! The init objects of answers and upstream requests, kept for the next one:
//! `new Response(body, init)` and `new Request(url, init)` copy what their init holds,
//! so the init made for one status and header list serves every later answer (or
//! upstream request) with the same ones. A `/client` call then builds no `Headers` and
//! no init of its own: about twenty calls into the runtime fewer a request.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{RequestInit, ResponseInit};

use super::js::{fixed, FixedInit};
use super::{append, reply};

type UpstreamHeaders = Vec<(&'static str, String)>;
/// An answer's status and headers, and the init made for them.
type AnswerInit = (u16, Vec<(String, String)>, ResponseInit);

thread_local! {
    /// The last answer's status, headers and init.
    static ANSWER: RefCell<Option<AnswerInit>> = const { RefCell::new(None) };
    /// The last upstream request's headers, init (its body set per request) and the
    /// init's `Headers`.
    static UPSTREAM: RefCell<Option<KeptUpstream>> = const { RefCell::new(None) };
}

type KeptUpstream = (UpstreamHeaders, RequestInit, web_sys::Headers);

/// The one upstream header that changes with the visitor (`/client` calls carry the
/// caller's): set in the kept init's `Headers` in place, so that every new visitor does
/// not cost a new init.
const PER_VISITOR: &str = "user-agent";

fn visitor_of(headers: &UpstreamHeaders) -> Option<&str> {
    headers
        .iter()
        .find(|(k, _)| *k == PER_VISITOR)
        .map(|(_, v)| v.as_str())
}

fn but_visitor(h: &UpstreamHeaders) -> impl Iterator<Item = &(&'static str, String)> {
    h.iter().filter(|(k, _)| *k != PER_VISITOR)
}

fn same_but_visitor(a: &UpstreamHeaders, b: &UpstreamHeaders) -> bool {
    but_visitor(a).eq(but_visitor(b))
}

/// The init of an answer with `status` and `headers` (and [`reply::ALWAYS`]).
pub(crate) fn answer_init(
    status: u16,
    headers: &[(String, String)],
) -> Result<ResponseInit, JsValue> {
    let kept = ANSWER.with(|a| match &*a.borrow() {
        Some((s, h, init)) if *s == status && h == headers => Some(init.clone()),
        _ => None,
    });
    if let Some(init) = kept {
        return Ok(init);
    }
    let init = ResponseInit::new();
    init.set_status(status);
    let h = web_sys::Headers::new()?;
    for (k, v) in headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(reply::ALWAYS.iter().copied())
    {
        append(&h, k, v)?;
    }
    init.set_headers(&h);
    ANSWER.with(|a| *a.borrow_mut() = Some((status, headers.to_vec(), init.clone())));
    Ok(init)
}

/// The init of an upstream POST with `headers` that never follows a redirect, its
/// body not set yet. Each call sets the body it sends, so the kept init holds the
/// last body sent until the next (at most `MAX_BODY_BYTES`).
pub(crate) fn upstream_init(headers: &UpstreamHeaders) -> Result<RequestInit, JsValue> {
    let kept = UPSTREAM.with(|u| -> Result<Option<RequestInit>, JsValue> {
        let mut u = u.borrow_mut();
        let Some((kept, init, h)) = u.as_mut() else {
            return Ok(None);
        };
        if !same_but_visitor(kept, headers) {
            return Ok(None);
        }
        let visitor = visitor_of(headers);
        if visitor_of(kept) != visitor {
            // A request copies its init's headers when made: changing them now leaves
            // every request already made as it was.
            match visitor {
                Some(v) => h.set(PER_VISITOR, v)?,
                None => h.delete(PER_VISITOR)?,
            }
            *kept = headers.clone();
        }
        Ok(Some(init.clone()))
    })?;
    if let Some(init) = kept {
        return Ok(init);
    }
    let h = web_sys::Headers::new()?;
    for (k, v) in headers {
        append(&h, k, v)?;
    }
    let init = RequestInit::new();
    init.unchecked_ref::<FixedInit>()
        .set_method_fixed(&fixed("POST"));
    init.set_redirect(web_sys::RequestRedirect::Manual);
    init.set_headers(&h);
    UPSTREAM.with(|u| *u.borrow_mut() = Some((headers.clone(), init.clone(), h)));
    Ok(init)
}
