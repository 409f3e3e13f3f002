//! Options given to `Klaviyo.init`, checked once.

use super::json::Json;
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
    /// How long a call waits for others to join its batch before sending.
    pub flush_delay_ms: u64,
}

impl Config {
    /// From the `init` options object (JS names: `companyId`, `apiBase`, ...).
    pub fn from_json(v: &Json) -> Result<Config, ValidationError> {
        if !matches!(v, Json::Obj(_)) {
            return Err(ValidationError::new("options", "must be an object"));
        }
        let company_id = validate::non_empty("companyId", v.get("companyId"))
            .map_err(|_| ValidationError::new("companyId", "is required"))?;
        validate::company_id(company_id)?;
        let api_base = text_or(v, "apiBase", DEFAULT_API_BASE)?;
        validate::api_base(&api_base)?;
        let revision = text_or(v, "revision", DEFAULT_REVISION)?;
        validate::revision(&revision)?;
        let mut limits = Limits::default();
        limits.max_events = count_or(v, "maxQueueEvents", limits.max_events)?;
        limits.max_bytes = count_or(v, "maxQueueBytes", limits.max_bytes)?;
        Ok(Config {
            company_id: company_id.to_string(),
            api_base: api_base.trim_end_matches('/').to_string(),
            revision,
            limits,
            flush_delay_ms: count_or(v, "flushDelayMs", 50)? as u64,
        })
    }

    /// `<apiBase><path>?company_id=<id>`
    pub fn url(&self, path: &str) -> String {
        let mut u = String::with_capacity(self.api_base.len() + path.len() + 20);
        u.push_str(&self.api_base);
        u.push_str(path);
        u.push_str("?company_id=");
        u.push_str(&self.company_id);
        u
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

    pub fn queue_prefix(&self) -> String {
        self.storage_prefix() + "q:"
    }
}

fn text_or(v: &Json, key: &str, default: &str) -> Result<String, ValidationError> {
    match v.get(key) {
        None | Some(Json::Null) => Ok(default.to_string()),
        Some(Json::Str(s)) => Ok(s.clone()),
        Some(_) => Err(ValidationError::new(key, "must be a string")),
    }
}

fn count_or(v: &Json, key: &str, default: usize) -> Result<usize, ValidationError> {
    match v.get(key) {
        None | Some(Json::Null) => Ok(default),
        Some(Json::Num(n)) => text::parse_u64(n)
            .map(|n| n as usize)
            .filter(|n| *n > 0 || key == "flushDelayMs")
            .ok_or_else(|| ValidationError::new(key, "must be a positive whole number")),
        Some(_) => Err(ValidationError::new(key, "must be a positive whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::json::parse;

    #[test]
    fn defaults_and_url() {
        let c = Config::from_json(&parse(r#"{"companyId":"AbC123"}"#).unwrap()).unwrap();
        assert_eq!(
            c.url("/client/events"),
            "https://a.klaviyo.com/client/events?company_id=AbC123"
        );
        assert_eq!(c.revision, "2026-07-15");
        assert_eq!(c.queue_prefix(), "klaviyo:AbC123:q:");
        assert_eq!(c.limits.max_events, 1000);
    }

    #[test]
    fn trims_the_api_base_and_reads_limits() {
        let c = Config::from_json(
            &parse(
                r#"{"companyId":"AbC123","apiBase":"http://127.0.0.1:9/k/","maxQueueEvents":5}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            c.url("/client/profiles"),
            "http://127.0.0.1:9/k/client/profiles?company_id=AbC123"
        );
        assert_eq!(c.limits.max_events, 5);
    }

    #[test]
    fn names_the_bad_option() {
        for (text, field) in [
            (r#"{}"#, "companyId"),
            (r#"{"companyId":"abc"}"#, "companyId"),
            (
                r#"{"companyId":"AbC123","apiBase":"a.klaviyo.com"}"#,
                "apiBase",
            ),
            (r#"{"companyId":"AbC123","revision":"July"}"#, "revision"),
            (
                r#"{"companyId":"AbC123","maxQueueEvents":-1}"#,
                "maxQueueEvents",
            ),
            (
                r#"{"companyId":"AbC123","maxQueueBytes":1.5}"#,
                "maxQueueBytes",
            ),
        ] {
            assert_eq!(
                Config::from_json(&parse(text).unwrap()).unwrap_err().field,
                field,
                "{text}"
            );
        }
        assert_eq!(Config::from_json(&Json::Null).unwrap_err().field, "options");
    }
}
