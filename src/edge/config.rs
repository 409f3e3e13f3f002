//! The worker's settings, read from its environment (Cloudflare `env`: vars and
//! secrets). Values are checked once; a missing setting is reported by the route that
//! needs it, so `/health` and `/client` keep working without the private key.

use crate::core::config::{DEFAULT_API_BASE, DEFAULT_REVISION};
use crate::core::text;
use crate::core::validate;

#[derive(Clone, Debug, Default)]
pub struct EdgeConfig {
    pub private_key: Option<String>,
    pub public_key: Option<String>,
    pub allowed_origins: Vec<String>,
    pub api_base: String,
    pub revision: String,
    pub signing_secret: Option<String>,
    pub browser_metrics: Vec<String>,
    pub webhook_secret: Option<String>,
    pub webhook_forward_url: Option<String>,
    pub max_body_bytes: usize,
    /// A path the worker is mounted under (`/klaviyo` for `shop.example/klaviyo/*`).
    pub route_prefix: String,
    /// How long one upstream attempt may take.
    pub upstream_timeout_ms: u64,
}

pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 8_000;

pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// A setting that is present but unusable. Names the setting, never its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: &'static str,
}

impl EdgeConfig {
    /// `get` looks a setting up by name (empty strings count as missing).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<EdgeConfig, ConfigError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let list = |k: &str| -> Vec<String> {
            get(k)
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().trim_end_matches('/').to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let public_key = get("KLAVIYO_PUBLIC_KEY");
        if let Some(k) = &public_key {
            if validate::company_id(k).is_err() {
                return Err(ConfigError {
                    setting: "KLAVIYO_PUBLIC_KEY",
                    reason: "must be the 6-character public API key",
                });
            }
        }
        let api_base = get("KLAVIYO_API_BASE").unwrap_or_else(|| DEFAULT_API_BASE.to_string());
        if validate::api_base(&api_base).is_err() {
            return Err(ConfigError {
                setting: "KLAVIYO_API_BASE",
                reason: "must be an http(s) URL",
            });
        }
        let revision = get("KLAVIYO_REVISION").unwrap_or_else(|| DEFAULT_REVISION.to_string());
        if validate::revision(&revision).is_err() {
            return Err(ConfigError {
                setting: "KLAVIYO_REVISION",
                reason: "must look like 2026-07-15",
            });
        }
        let max_body_bytes = match get("MAX_BODY_BYTES") {
            None => DEFAULT_MAX_BODY,
            Some(v) => text::parse_u64(&v)
                .filter(|n| *n > 0)
                .map(|n| n as usize)
                .ok_or(ConfigError {
                    setting: "MAX_BODY_BYTES",
                    reason: "must be a positive whole number of bytes",
                })?,
        };
        Ok(EdgeConfig {
            private_key: get("KLAVIYO_PRIVATE_KEY"),
            public_key,
            allowed_origins: list("ALLOWED_ORIGINS"),
            api_base: api_base.trim_end_matches('/').to_string(),
            revision,
            signing_secret: get("EDGE_SIGNING_SECRET"),
            browser_metrics: list("BROWSER_SERVER_METRICS"),
            webhook_secret: get("KLAVIYO_WEBHOOK_SECRET"),
            webhook_forward_url: get("WEBHOOK_FORWARD_URL"),
            max_body_bytes,
            upstream_timeout_ms: match get("UPSTREAM_TIMEOUT_MS") {
                None => DEFAULT_UPSTREAM_TIMEOUT_MS,
                Some(v) => text::parse_u64(&v).filter(|n| *n > 0).ok_or(ConfigError {
                    setting: "UPSTREAM_TIMEOUT_MS",
                    reason: "must be a positive whole number of milliseconds",
                })?,
            },
            route_prefix: get("ROUTE_PREFIX")
                .map(|p| p.trim_end_matches('/').to_string())
                .unwrap_or_default(),
        })
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == "*" || o == origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn reads_lists_and_defaults() {
        let c = EdgeConfig::from_env(env(&[
            (
                "ALLOWED_ORIGINS",
                " https://shop.example/ , http://127.0.0.1:8080",
            ),
            ("BROWSER_SERVER_METRICS", "Placed Order,Started Checkout"),
            ("KLAVIYO_PUBLIC_KEY", "AbC123"),
        ]))
        .unwrap();
        assert_eq!(
            c.allowed_origins,
            ["https://shop.example", "http://127.0.0.1:8080"]
        );
        assert_eq!(c.browser_metrics, ["Placed Order", "Started Checkout"]);
        assert_eq!(c.api_base, "https://a.klaviyo.com");
        assert_eq!(c.revision, "2026-07-15");
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY);
        assert!(c.private_key.is_none());
        assert!(c.origin_allowed("https://shop.example"));
        assert!(!c.origin_allowed("https://evil.example"));
    }

    #[test]
    fn a_bad_setting_is_named_without_its_value() {
        for (k, v) in [
            ("KLAVIYO_PUBLIC_KEY", "sk_secretvalue"),
            ("KLAVIYO_API_BASE", "ftp://x"),
            ("KLAVIYO_REVISION", "latest"),
            ("MAX_BODY_BYTES", "lots"),
        ] {
            let e = EdgeConfig::from_env(env(&[(k, v)])).unwrap_err();
            assert_eq!(e.setting, k);
            assert!(!e.reason.contains(v));
        }
    }
}
