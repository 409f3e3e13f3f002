//! The first-party visitor cookie: the browser package's `anonymous_id` and `_kx`, kept
//! by the worker in a cookie of the shop's own domain, so that they outlive the script
//! storage Safari wipes after 7 days without a visit. A cookie set by the server, from
//! the shop's own address, is not capped that way.
//!
//! `POST /id` sets it (a page of an allowed origin, after its visitor's consent),
//! `DELETE /id` clears it (consent denied), `GET /id` says what it holds. It is
//! `HttpOnly` (no script reads it: the page asks `GET /id`), `Secure`, `SameSite=Lax`,
//! kept 400 days (the longest browsers keep a cookie), on the worker's route prefix.
//! Its value is `v1|<anonymous_id>|<_kx>|<hex tag>`, the tag an HMAC under a key
//! derived from `EDGE_SIGNING_SECRET`: a cookie the worker did not make is ignored.

use serde::Deserialize;

use super::auth;
use super::config::EdgeConfig;
use super::reply::{error, forbidden_origin, method_not_allowed, missing, Reply};

/// The route, below the worker's route prefix.
pub const ROUTE: &str = "/id";

/// The cookie's name.
pub const COOKIE: &str = "kw_visitor";

/// 400 days: what Chromium and Safari keep a cookie at most.
pub const MAX_AGE_S: u32 = 400 * 24 * 3600;

/// The longest `anonymous_id` and `_kx` kept (the browser package's ids are 36 bytes).
pub const MAX_ID: usize = 128;
pub const MAX_KX: usize = 256;

/// Who the visitor is, as the cookie holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VisitorId {
    pub anonymous_id: String,
    pub kx: Option<String>,
}

/// A byte a cookie value may hold (RFC 6265 `cookie-octet`) and that is not our `|`.
fn cookie_safe(s: &str) -> bool {
    s.bytes().all(|b| {
        matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e) && b != b'|'
    })
}

impl VisitorId {
    /// A checked id: `anonymous_id` of 1 to [`MAX_ID`] bytes and a `_kx` of up to
    /// [`MAX_KX`], printable ASCII without space, `"`, `,`, `;`, `\` or `|`. The error
    /// names the member.
    pub fn new(anonymous_id: &str, kx: Option<&str>) -> Result<VisitorId, &'static str> {
        if anonymous_id.is_empty() || anonymous_id.len() > MAX_ID || !cookie_safe(anonymous_id) {
            return Err("anonymous_id");
        }
        let kx = kx.filter(|k| !k.is_empty());
        if kx.is_some_and(|k| k.len() > MAX_KX || !cookie_safe(k)) {
            return Err("_kx");
        }
        Ok(VisitorId {
            anonymous_id: anonymous_id.to_string(),
            kx: kx.map(str::to_string),
        })
    }

    fn payload(&self) -> String {
        format!(
            "v1|{}|{}",
            self.anonymous_id,
            self.kx.as_deref().unwrap_or("")
        )
    }

    /// The cookie's value, signed with `secret`.
    pub fn value(&self, secret: &str) -> String {
        let payload = self.payload();
        let tag = auth::visitor_tag(secret, payload.as_bytes());
        format!("{payload}|{}", hex::encode(tag))
    }

    /// `{"anonymous_id":"…","_kx":"…"}`, as `GET /id` answers.
    pub fn json(&self) -> String {
        let mut v = serde_json::json!({ "anonymous_id": self.anonymous_id });
        if let Some(kx) = &self.kx {
            v["_kx"] = serde_json::json!(kx);
        }
        v.to_string()
    }
}

/// The visitor of a `Cookie` header, if it holds our cookie and its tag is right.
pub fn read(cookie_header: Option<&str>, secret: &str) -> Option<VisitorId> {
    let value = cookie_header?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v.trim_matches('"'))?;
    let (payload, tag) = value.rsplit_once('|')?;
    let tag = hex::decode(tag).ok()?;
    if !auth::visitor_tag_ok(secret, payload.as_bytes(), &tag) {
        return None;
    }
    let mut parts = payload.split('|');
    let (Some("v1"), Some(anon), Some(kx), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    VisitorId::new(anon, Some(kx)).ok()
}

/// `Set-Cookie` for `id` on `path` (the worker's route prefix, `/` without one).
pub fn set_cookie(id: &VisitorId, secret: &str, path: &str) -> String {
    cookie_line(&id.value(secret), MAX_AGE_S, path)
}

/// `Set-Cookie` that removes the cookie.
pub fn clear_cookie(path: &str) -> String {
    cookie_line("", 0, path)
}

fn cookie_line(value: &str, max_age: u32, path: &str) -> String {
    let path = if path.is_empty() { "/" } else { path };
    format!("{COOKIE}={value}; Max-Age={max_age}; Path={path}; HttpOnly; Secure; SameSite=Lax")
}

/// `/id` from its head: `OPTIONS`, `GET` and `DELETE` are answered here (`Err`, the
/// answer); `POST` goes on to [`post`] (`Ok`). Only the shop's pages may set or clear
/// the cookie: an `Origin` in `ALLOWED_ORIGINS` (browsers send one with every POST and
/// DELETE). `GET` is for the page's own origin too, which sends none; another origin's
/// page cannot read the answer (no CORS headers), and gets 403.
#[inline(never)] // not on the `/client` path (see router/mod.rs)
pub fn admit(
    method: &str,
    cookie: Option<&str>,
    cfg: &EdgeConfig,
    origin: Option<&str>,
    allowed: Option<&str>,
) -> Result<(), Reply> {
    if origin.is_some() && allowed.is_none() {
        return Err(forbidden_origin());
    }
    if method == "OPTIONS" {
        return Err(match allowed {
            Some(o) => Reply::empty(204)
                .header("access-control-allow-origin", o)
                .header("access-control-allow-methods", "GET, POST, DELETE, OPTIONS")
                .header("access-control-allow-headers", "content-type")
                .header("access-control-allow-credentials", "true")
                .header("access-control-max-age", "600")
                .header("vary", "Origin"),
            None => forbidden_origin(),
        });
    }
    let answer = |r: Reply| Err(credentialed(r, allowed));
    let Some(secret) = cfg.signing_secret.as_deref() else {
        return answer(missing("EDGE_SIGNING_SECRET"));
    };
    match method {
        "GET" | "HEAD" => {
            let body = read(cookie, secret).map_or_else(|| "{}".to_string(), |id| id.json());
            let mut r = Reply::empty(200)
                .header("content-type", "application/json")
                .header("cache-control", "no-store");
            r.body = body;
            answer(r)
        }
        "POST" | "DELETE" if allowed.is_none() => answer(forbidden_origin()),
        "POST" => Ok(()),
        "DELETE" => answer(
            Reply::empty(204)
                .header("set-cookie", &clear_cookie(&cfg.route_prefix))
                .header("cache-control", "no-store"),
        ),
        _ => answer(method_not_allowed(
            "GET, POST and DELETE",
            "GET, POST, DELETE",
        )),
    }
}

/// `POST /id`: sets the cookie to the body's visitor. `cors`: the allowed origin.
#[inline(never)] // not on the `/client` path (see router/mod.rs)
pub fn post(body: &[u8], cfg: &EdgeConfig, cors: Option<&str>) -> Reply {
    let Some(secret) = cfg.signing_secret.as_deref() else {
        return missing("EDGE_SIGNING_SECRET");
    };
    let answer = std::str::from_utf8(body)
        .map_err(|_| parse_post("").unwrap_err())
        .and_then(parse_post)
        .map(|id| {
            Reply::empty(204)
                .header("set-cookie", &set_cookie(&id, secret, &cfg.route_prefix))
                .header("cache-control", "no-store")
        });
    let r = answer.unwrap_or_else(|r| r);
    // The router adds the rest of the CORS headers.
    if cors.is_some() {
        r.header("access-control-allow-credentials", "true")
    } else {
        r
    }
}

/// CORS for a page that sends its cookies (`credentials: "include"`) from another
/// allowed origin: the origin by name, and credentials allowed.
fn credentialed(r: Reply, allowed: Option<&str>) -> Reply {
    match allowed {
        Some(_) => r
            .cors(allowed)
            .header("access-control-allow-credentials", "true"),
        None => r,
    }
}

/// A `POST /id` body: `{"anonymous_id": "…", "_kx": "…"}` (`_kx` optional).
pub fn parse_post(body: &str) -> Result<VisitorId, Reply> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Post {
        anonymous_id: String,
        #[serde(default, rename = "_kx")]
        kx: Option<String>,
    }
    let post: Post = serde_json::from_str(body).map_err(|_| {
        error(
            400,
            "invalid",
            "Invalid input.",
            "the body must be {\"anonymous_id\": string, \"_kx\": string}",
            None,
        )
    })?;
    VisitorId::new(&post.anonymous_id, post.kx.as_deref()).map_err(|member| {
        let pointer = format!("/{member}");
        error(
            400,
            "invalid",
            "Invalid input.",
            "must be 1 to 128 (_kx: 256) printable characters without space, quote, comma, semicolon, backslash or |",
            Some(&pointer),
        )
    })
}

#[cfg(test)]
#[path = "visitor_id_tests.rs"]
mod tests;
