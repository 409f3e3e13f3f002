//! The worker's settings. The worker's `env` (Cloudflare vars and secrets) is read into
//! [`Settings`] with serde (serde-wasm-bindgen in the worker, serde_json in tests), then
//! checked once into [`EdgeConfig`]. A missing setting is reported by the route that
//! needs it, so `/health` and `/client` keep working without the private key; a
//! malformed one is a 500 that names the setting, never its value.

use serde::Deserialize;
use serde_json::Value;

use crate::core::config::{DEFAULT_API_BASE, DEFAULT_REVISION};
use crate::core::text;
use crate::core::validate;

/// The settings as `env` holds them. Vars may arrive as strings, numbers or booleans
/// (wrangler.toml `[vars]`), so each is read as a JSON value and checked by name.
/// Bindings (KV, rate limiters) and anything else in `env` are ignored here.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct Settings {
    pub klaviyo_private_key: Option<Value>,
    pub klaviyo_public_key: Option<Value>,
    pub allowed_origins: Option<Value>,
    pub klaviyo_api_base: Option<Value>,
    pub klaviyo_revision: Option<Value>,
    pub edge_signing_secret: Option<Value>,
    pub browser_server_metrics: Option<Value>,
    pub browser_rate_per_minute: Option<Value>,
    pub klaviyo_webhook_secret: Option<Value>,
    pub webhook_forward_url: Option<Value>,
    pub max_body_bytes: Option<Value>,
    pub route_prefix: Option<Value>,
    pub upstream_timeout_ms: Option<Value>,
    pub trust_forwarded_for: Option<Value>,
    pub forward_visitor_ip: Option<Value>,
    pub filter_bots: Option<Value>,
    pub bot_score_min: Option<Value>,
    pub serve_script: Option<Value>,
    pub allow_null_origin: Option<Value>,
}

#[derive(Clone, Debug, Default)]
pub struct EdgeConfig {
    pub private_key: Option<String>,
    pub public_key: Option<String>,
    pub allowed_origins: Vec<String>,
    pub api_base: String,
    pub revision: String,
    pub signing_secret: Option<String>,
    pub browser_metrics: Vec<String>,
    /// Unsigned browser calls to `/api/events` allowed per client and minute.
    pub browser_rate_per_minute: u32,
    pub webhook_secret: Option<String>,
    pub webhook_forward_url: Option<String>,
    pub max_body_bytes: usize,
    /// A path the worker is mounted under (`/klaviyo` for `shop.example/klaviyo/*`).
    pub route_prefix: String,
    /// How long one upstream attempt may take.
    pub upstream_timeout_ms: u64,
    /// Whether the last hop of `x-forwarded-for` is the caller's address: only behind a
    /// proxy of the shop's own that sets it (a caller can write the header itself).
    pub trust_forwarded_for: bool,
    /// Whether a page's `/client` call gets the visitor's address as its profile's
    /// `location.ip` (where the body gives none), as a direct call would give Klaviyo.
    pub forward_visitor_ip: bool,
    /// Whether `/client` calls of crawlers and monitors are answered and dropped.
    pub filter_bots: bool,
    /// Below this Cloudflare bot score (1 to 99, where the request carries one), a
    /// `/client` call is a bot's. Unset: scores are not read (reading one costs workerd
    /// a parse of the request's `cf` object).
    pub bot_score_min: Option<u8>,
    /// Whether the worker serves the script-tag files under `/script/`.
    pub serve_script: bool,
    /// Whether `/client` (and its preflight) takes `Origin: null`, what a sandboxed
    /// iframe sends (Shopify's custom pixels). Not an entry of `allowed_origins`: any
    /// page anywhere can make one, so it opens `/client` alone, never `/id` or `/api`.
    pub allow_null_origin: bool,
}

pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 8_000;

/// The dead-letter queue's name in `js/edge/wrangler.toml`.
pub const DEFAULT_DEAD_LETTER_QUEUE: &str = "klaviyo-deliveries-dead";

/// The dead-letter queue's name from `DEAD_LETTER_QUEUE` as given (blank: the default):
/// the queue whose batches the queue handler keeps in `DEAD_LETTER_STORE` rather than
/// delivers. Read by the consumer from `env` itself, not among the checked settings, so
/// that no other setting's fault can make its letters deliveries.
pub fn dead_letter_queue(given: Option<&str>) -> String {
    match given.map(str::trim) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => DEFAULT_DEAD_LETTER_QUEUE.to_string(),
    }
}

/// Klaviyo's own ceiling for a request body (bulk jobs: 5 MB), the same number as the
/// core's `validate::MAX_BODY_BYTES`.
pub const DEFAULT_MAX_BODY: usize = validate::MAX_BODY_BYTES;

pub const DEFAULT_BROWSER_RATE_PER_MINUTE: u32 = 60;

/// A setting that is present but unusable. Names the setting, never its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: &'static str,
}

fn bad(setting: &'static str, reason: &'static str) -> ConfigError {
    ConfigError { setting, reason }
}

/// A setting's text: strings trimmed (empty counts as missing), numbers and booleans
/// as written; anything else is malformed.
fn text_of(setting: &'static str, v: &Option<Value>) -> Result<Option<String>, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(bad(setting, "must be a string")),
    }
}

fn list(s: Option<String>) -> Vec<String> {
    s.map(|v| {
        v.split(',')
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// An origin as browsers serialise it: scheme and host are case-insensitive and are
/// sent lower-case, with no trailing `/`.
/// The default port is left out too, as browsers leave it out of `Origin`.
fn canonical_origin(o: &str) -> String {
    let o = o.trim_end_matches('/').to_ascii_lowercase();
    for (scheme, port) in [("https://", ":443"), ("http://", ":80")] {
        if o.starts_with(scheme) && o.ends_with(port) {
            return o[..o.len() - port.len()].to_string();
        }
    }
    o
}

/// A page's origin as browsers send it: a scheme (`https`, `http`, or an app's own, as
/// `capacitor` or `chrome-extension`), `://` and a host (and port), nothing after. A
/// path, a wildcard, a bare host or `null` (sandboxed frames, files: any page can be
/// one) would match no page of the shop, or every page of anyone.
fn is_origin(o: &str) -> bool {
    let Some((scheme, host)) = o.split_once("://") else {
        return false;
    };
    let mut s = scheme.chars();
    s.next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !host.is_empty()
        && !host.contains(['/', '?', '#', '*', '@'])
        && !host.contains(char::is_whitespace)
}

/// A yes/no setting: `true`/`false` (any case), `1`/`0`, or absent for `default`.
fn flag(setting: &'static str, v: Option<String>, default: bool) -> Result<bool, ConfigError> {
    match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(_) => Err(bad(setting, "must be true or false")),
    }
}

fn number(
    setting: &'static str,
    v: Option<String>,
    default: u64,
    reason: &'static str,
) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) => text::parse_u64(&v)
            .filter(|n| *n > 0)
            .ok_or(bad(setting, reason)),
    }
}

/// Whether `url` may carry the private key or a signed webhook: `https://`, or
/// `http://` to this machine (tests, local development).
pub fn secure_url(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..host_end];
    let name = match host.rsplit_once(':') {
        Some((h, port)) if !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

impl EdgeConfig {
    pub fn from_settings(s: &Settings) -> Result<EdgeConfig, ConfigError> {
        let public_key = text_of("KLAVIYO_PUBLIC_KEY", &s.klaviyo_public_key)?;
        if let Some(k) = &public_key {
            if validate::company_id(k).is_err() {
                return Err(bad(
                    "KLAVIYO_PUBLIC_KEY",
                    "must be the 6-character public API key",
                ));
            }
        }
        let api_base = text_of("KLAVIYO_API_BASE", &s.klaviyo_api_base)?
            .unwrap_or_else(|| DEFAULT_API_BASE.to_string());
        if validate::api_base(&api_base).is_err() || !secure_url(&api_base) {
            return Err(bad(
                "KLAVIYO_API_BASE",
                "must be an https:// URL (http:// only to 127.0.0.1 or localhost)",
            ));
        }
        let revision = text_of("KLAVIYO_REVISION", &s.klaviyo_revision)?
            .unwrap_or_else(|| DEFAULT_REVISION.to_string());
        if validate::revision(&revision).is_err() {
            return Err(bad("KLAVIYO_REVISION", "must look like 2026-07-15"));
        }
        let webhook_forward_url = text_of("WEBHOOK_FORWARD_URL", &s.webhook_forward_url)?;
        if webhook_forward_url
            .as_deref()
            .is_some_and(|u| !secure_url(u))
        {
            return Err(bad(
                "WEBHOOK_FORWARD_URL",
                "must be an https:// URL (http:// only to 127.0.0.1 or localhost)",
            ));
        }
        let max_body_bytes = number(
            "MAX_BODY_BYTES",
            text_of("MAX_BODY_BYTES", &s.max_body_bytes)?,
            DEFAULT_MAX_BODY as u64,
            "must be a positive whole number of bytes",
        )?;
        let upstream_timeout_ms = number(
            "UPSTREAM_TIMEOUT_MS",
            text_of("UPSTREAM_TIMEOUT_MS", &s.upstream_timeout_ms)?,
            DEFAULT_UPSTREAM_TIMEOUT_MS,
            "must be a positive whole number of milliseconds",
        )?;
        let rate = number(
            "BROWSER_RATE_PER_MINUTE",
            text_of("BROWSER_RATE_PER_MINUTE", &s.browser_rate_per_minute)?,
            u64::from(DEFAULT_BROWSER_RATE_PER_MINUTE),
            "must be a positive whole number",
        )?;
        let route_prefix = text_of("ROUTE_PREFIX", &s.route_prefix)?
            .map(|p| p.trim_end_matches('/').to_string())
            .unwrap_or_default();
        if !(route_prefix.is_empty() || route_prefix.starts_with('/')) {
            return Err(bad("ROUTE_PREFIX", "must start with /"));
        }
        // A route's pattern pasted here (`/klaviyo/*`) would match no path at all.
        if route_prefix.contains(['*', '?', '#', ' ']) {
            return Err(bad("ROUTE_PREFIX", "must be a plain path like /klaviyo"));
        }
        let allowed_origins: Vec<String> = list(text_of("ALLOWED_ORIGINS", &s.allowed_origins)?)
            .iter()
            .map(|o| canonical_origin(o))
            .collect();
        if !allowed_origins.iter().all(|o| is_origin(o)) {
            return Err(bad(
                "ALLOWED_ORIGINS",
                "must list origins like https://shop.example (no path, no wildcard, not null: see ALLOW_NULL_ORIGIN)",
            ));
        }
        let bot_score_min = match text_of("BOT_SCORE_MIN", &s.bot_score_min)? {
            None => None,
            Some(v) => Some(
                text::parse_u64(&v)
                    .filter(|n| *n <= 100)
                    .map(|n| n as u8)
                    .ok_or(bad("BOT_SCORE_MIN", "must be a whole number from 0 to 100"))?,
            ),
        };
        Ok(EdgeConfig {
            private_key: text_of("KLAVIYO_PRIVATE_KEY", &s.klaviyo_private_key)?,
            public_key,
            allowed_origins,
            api_base: api_base.trim_end_matches('/').to_string(),
            revision,
            signing_secret: text_of("EDGE_SIGNING_SECRET", &s.edge_signing_secret)?,
            browser_metrics: list(text_of(
                "BROWSER_SERVER_METRICS",
                &s.browser_server_metrics,
            )?),
            browser_rate_per_minute: u32::try_from(rate).unwrap_or(u32::MAX),
            webhook_secret: text_of("KLAVIYO_WEBHOOK_SECRET", &s.klaviyo_webhook_secret)?,
            webhook_forward_url,
            max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(usize::MAX),
            route_prefix,
            upstream_timeout_ms,
            trust_forwarded_for: flag(
                "TRUST_FORWARDED_FOR",
                text_of("TRUST_FORWARDED_FOR", &s.trust_forwarded_for)?,
                false,
            )?,
            forward_visitor_ip: flag(
                "FORWARD_VISITOR_IP",
                text_of("FORWARD_VISITOR_IP", &s.forward_visitor_ip)?,
                true,
            )?,
            filter_bots: flag("FILTER_BOTS", text_of("FILTER_BOTS", &s.filter_bots)?, true)?,
            bot_score_min,
            serve_script: flag(
                "SERVE_SCRIPT",
                text_of("SERVE_SCRIPT", &s.serve_script)?,
                true,
            )?,
            allow_null_origin: flag(
                "ALLOW_NULL_ORIGIN",
                text_of("ALLOW_NULL_ORIGIN", &s.allow_null_origin)?,
                false,
            )?,
        })
    }

    /// The shop's own origin that `origin` (the `Origin` header) names, as configured:
    /// trailing `/` and letter case do not make another origin, so every spelling of
    /// one origin gets the same answer, and the same rate-limit bucket.
    pub fn allowed_origin(&self, origin: &str) -> Option<&str> {
        let o = origin.trim_end_matches('/');
        self.allowed_origins
            .iter()
            .find(|a| a.eq_ignore_ascii_case(o))
            .map(String::as_str)
    }

    /// Whether `origin` is one of the shop's ([`EdgeConfig::allowed_origin`]).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origin(origin).is_some()
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
