//! What the worker answers: JSON:API errors like Klaviyo's, and CORS headers for the
//! shop's own origins only.

use crate::core::json::Json;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub const JSONAPI: &str = "application/vnd.api+json";

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
                .push(("access-control-expose-headers".into(), "retry-after".into()));
            self.headers.push(("vary".into(), "Origin".into()));
        }
        self
    }

    pub fn to_json(&self) -> Json {
        let headers = self
            .headers
            .iter()
            .map(|(k, v)| Json::Arr(vec![Json::str(k), Json::str(v)]))
            .collect();
        Json::obj()
            .with("status", Json::Num(self.status.to_string()))
            .with("headers", Json::Arr(headers))
            .with("body", Json::str(&self.body))
    }
}

/// A JSON:API error body with one error. `detail` never holds a secret or personal data.
pub fn error(status: u16, code: &str, title: &str, detail: &str, pointer: Option<&str>) -> Reply {
    let mut e = Json::obj()
        .with("status", Json::Str(status.to_string()))
        .with("code", Json::str(code))
        .with("title", Json::str(title))
        .with("detail", Json::str(detail));
    if let Some(p) = pointer {
        e.set("source", Json::obj().with("pointer", Json::str(p)));
    }
    let body = Json::obj().with("errors", Json::Arr(vec![e]));
    Reply::new(status, body.to_text())
}

pub fn ok_json(status: u16, body: Json) -> Reply {
    Reply::new(status, body.to_text())
}

/// `{"ok":true}` and the like, for `/health` and webhooks.
pub fn ok_flag() -> Json {
    Json::obj().with("ok", Json::Bool(true))
}
