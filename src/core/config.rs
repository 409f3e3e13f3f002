//! Options given to `Klaviyo.init` / `Klaviyo.create`, checked once.

use super::consent::Consent;
use super::jsontext::{self as jt, Kind};
use super::queue::Limits;
use super::text;
use super::validate::{self, ValidationError};

pub const DEFAULT_API_BASE: &str = "https://a.klaviyo.com";
pub const DEFAULT_REVISION: &str = "2026-07-15";

#[derive(Clone, Debug)]
pub struct Config {
    pub company_id: String,
    pub api_base: String,
    pub revision: String,
    pub limits: Limits,
    /// `consent`: what the page's consent manager says at load (default granted), as
    /// its code (`consent.rs`; js/index.js maps the names and refuses others).
    pub consent: Consent,
}

impl Config {
    /// From the options object as JSON text (JS names: `companyId`, `apiBase`, ...).
    /// Options only the adapter reads (`onError`, `debug`, ...) are ignored here.
    pub fn from_json(text: &str) -> Result<Config, ValidationError> {
        let v = jt::check(text).map_err(|_| not_object())?;
        if jt::kind(&v) != Kind::Obj {
            return Err(not_object());
        }
        let company_id = validate::non_empty("companyId", jt::get(&v, "companyId"))
            .map_err(|_| ValidationError::new("companyId", "is required"))?;
        validate::company_id(&company_id)?;
        let mut api_base = text_or(&v, "apiBase", DEFAULT_API_BASE)?;
        validate::api_base(&api_base)?;
        // Without trailing slashes, cut in place (no second copy).
        api_base.truncate(trim_slashes(&api_base).len());
        let revision = text_or(&v, "revision", DEFAULT_REVISION)?;
        validate::revision(&revision)?;
        let mut limits = Limits::default();
        limits.max_events = count_or(&v, "maxQueueEvents", limits.max_events)?;
        limits.max_bytes = count_or(&v, "maxQueueBytes", limits.max_bytes)?;
        limits.max_memory_bytes = count_or(&v, "maxMemoryBytes", limits.max_memory_bytes)?;
        limits.flush_delay_ms = count_or(&v, "flushDelayMs", 0)? as u64;
        let consent = match validate::present(&v, "consent") {
            None => Consent::Granted,
            Some(c) => text::parse_u64(c)
                .and_then(Consent::from_code)
                .ok_or_else(|| ValidationError::new("consent", "is not a consent state"))?,
        };
        Ok(Config {
            company_id,
            api_base,
            revision,
            limits,
            consent,
        })
    }

    /// `<apiBase><path>?company_id=<id>`
    pub fn url(&self, path: &str) -> String {
        let mut u = String::new();
        self.write_url(path, &mut u);
        u
    }

    /// [`Config::url`] written into `out` (straight into the NEXT answer).
    pub fn write_url(&self, path: &str, out: &mut String) {
        out.push_str(&self.api_base);
        out.push_str(path);
        out.push_str("?company_id=");
        out.push_str(&self.company_id);
    }

    /// Storage keys are namespaced by company, so two shops on one domain never mix.
    pub fn storage_prefix(&self) -> String {
        let mut p = String::from("klaviyo:");
        p.push_str(&self.company_id);
        p.push(':');
        p
    }

    pub fn identity_key(&self) -> String {
        self.storage_prefix() + "id"
    }

    /// Queued calls: one record per task (`q:<id>`).
    pub fn queue_prefix(&self) -> String {
        self.storage_prefix() + "q:"
    }

    /// Calls a page made before its tracker was ready (`pre:<page id>`).
    pub fn early_prefix(&self) -> String {
        self.storage_prefix() + "pre:"
    }

    /// The marker that carries a withdrawal of consent to the other tabs (see `consent.rs`).
    pub fn consent_key(&self) -> String {
        self.storage_prefix() + "consent"
    }

    /// Records handed to a keepalive request as the page went away (`k:<record id>`).
    pub fn mark_prefix(&self) -> String {
        self.storage_prefix() + "k:"
    }
}

/// `s` without trailing slashes (`trim_end_matches('/')` with no char searcher).
fn trim_slashes(mut s: &str) -> &str {
    while let Some(rest) = s.strip_suffix("/") {
        s = rest;
    }
    s
}

fn not_object() -> ValidationError {
    ValidationError::new("options", "must be an object")
}

/// Options take `null` as not given, never a blank ([`validate::present`]): a blank
/// `apiBase` is refused by name, never Klaviyo's own address in place of the shop's worker.
fn text_or(v: &str, key: &str, default: &str) -> Result<String, ValidationError> {
    match validate::present(v, key) {
        None => Ok(default.to_string()),
        Some(s) => jt::unescape(s).ok_or_else(|| ValidationError::new(key, "must be a string")),
    }
}

fn count_or(v: &str, key: &str, default: usize) -> Result<usize, ValidationError> {
    match validate::present(v, key) {
        None => Ok(default),
        Some(n) => text::parse_u64(n)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0 || key == "flushDelayMs")
            .ok_or_else(|| ValidationError::new(key, "must be a positive whole number")),
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
