//! What the worker answers: JSON:API errors like Klaviyo's, and CORS headers for the
//! shop's own origins only.

use serde_json::json;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub const JSONAPI: &str = "application/vnd.api+json";

/// The answer headers a page of another allowed origin may read.
pub const EXPOSED: &str = "retry-after, x-klaviyo-edge";

/// On `/client` answers: this is the edge worker, and it keeps the first-party visitor
/// cookie (`/id`). The browser package talks to `/id` only once it has seen this, so a
/// page whose `apiBase` is Klaviyo or another proxy never calls an `/id` that is not there.
pub const FIRST_PARTY: &str = "x-klaviyo-edge";

/// Headers on every answer, the worker's own and those passed on from Klaviyo: a body
/// is only ever what its content type says (no browser sniffs it into HTML).
pub const ALWAYS: &[(&str, &str)] = &[("x-content-type-options", "nosniff")];

impl Reply {
    pub fn new(status: u16, body: String) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), JSONAPI.into())],
            body,
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Adds the CORS headers for an allowed `origin` (`None`: not a CORS request, or
    /// not an allowed origin: no headers, so the browser refuses to hand it over).
    pub fn cors(mut self, origin: Option<&str>) -> Reply {
        if let Some(o) = origin {
            self.headers
                .push(("access-control-allow-origin".into(), o.to_string()));
            self.headers
                .push(("access-control-expose-headers".into(), EXPOSED.into()));
            self.headers.push(("vary".into(), "Origin".into()));
        }
        self
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A JSON:API error body with one error. `detail` never holds a secret or personal data.
pub fn error(status: u16, code: &str, title: &str, detail: &str, pointer: Option<&str>) -> Reply {
    let mut e = json!({
        "status": status.to_string(),
        "code": code,
        "title": title,
        "detail": detail,
    });
    if let Some(p) = pointer {
        e["source"] = json!({ "pointer": p });
    }
    Reply::new(status, json!({ "errors": [e] }).to_string())
}

/// `{"ok":true, ...}` for `/health` and webhooks.
pub fn ok(status: u16, extra: &[(&str, &str)]) -> Reply {
    let mut body = json!({ "ok": true });
    for (k, v) in extra {
        body[*k] = json!(v);
    }
    Reply::new(status, body.to_string())
}

/// A wrong method: a 405 naming the methods the route takes, in words (`takes`) and in
/// `Allow` (RFC 9110 asks for it).
pub fn method_not_allowed(takes: &str, allow: &str) -> Reply {
    let mut d = String::from("this route takes ");
    d.push_str(takes);
    error(405, "method_not_allowed", "Method not allowed.", &d, None).header("allow", allow)
}

pub fn missing(setting: &str) -> Reply {
    let mut d = String::from(setting);
    d.push_str(" is not set");
    error(
        500,
        "missing_setting",
        "The worker is not configured.",
        &d,
        None,
    )
}

pub fn forbidden_origin() -> Reply {
    error(
        403,
        "forbidden_origin",
        "Forbidden.",
        "this origin is not in ALLOWED_ORIGINS",
        None,
    )
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;
