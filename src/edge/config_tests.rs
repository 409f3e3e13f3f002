use super::*;

fn settings(json: &str) -> Settings {
    serde_json::from_str(json).expect("settings JSON")
}

fn config(json: &str) -> Result<EdgeConfig, ConfigError> {
    EdgeConfig::from_settings(&settings(json))
}

#[test]
fn defaults_and_lists() {
    let c = config(
        r#"{"KLAVIYO_PUBLIC_KEY":"AbC123","ALLOWED_ORIGINS":"https://shop.example/, https://www.shop.example","BROWSER_SERVER_METRICS":"Viewed Page,Clicked"}"#,
    )
    .unwrap();
    assert_eq!(c.api_base, "https://a.klaviyo.com");
    assert_eq!(c.revision, "2026-07-15");
    assert_eq!(c.max_body_bytes, 5 * 1024 * 1024);
    assert_eq!(c.browser_rate_per_minute, 60);
    assert_eq!(
        c.allowed_origins,
        ["https://shop.example", "https://www.shop.example"]
    );
    assert_eq!(c.browser_metrics, ["Viewed Page", "Clicked"]);
    assert!(c.origin_allowed("https://shop.example"));
    assert!(!c.origin_allowed("https://evil.example"));
    assert!(!c.trust_forwarded_for);
    assert!(c.private_key.is_none());
}

#[test]
fn every_spelling_of_an_allowed_origin_names_the_configured_one() {
    let c =
        config(r#"{"ALLOWED_ORIGINS":"https://Shop.Example/, https://www.shop.example"}"#).unwrap();
    assert_eq!(
        c.allowed_origins,
        ["https://shop.example", "https://www.shop.example"]
    );
    for spelling in [
        "https://shop.example",
        "https://shop.example/",
        "https://shop.example///",
        "HTTPS://SHOP.EXAMPLE",
        "https://Shop.example//",
    ] {
        assert_eq!(
            c.allowed_origin(spelling),
            Some("https://shop.example"),
            "{spelling}"
        );
    }
    for other in [
        "https://shop.example.evil",
        "http://shop.example",
        "https://shop.example:8443",
        "",
    ] {
        assert_eq!(c.allowed_origin(other), None, "{other}");
    }
}

#[test]
fn trust_forwarded_for_is_a_flag() {
    for (v, want) in [
        ("true", true),
        ("TRUE", true),
        ("1", true),
        ("false", false),
        ("0", false),
    ] {
        let c = config(&format!(r#"{{"TRUST_FORWARDED_FOR":"{v}"}}"#)).unwrap();
        assert_eq!(c.trust_forwarded_for, want, "{v}");
    }
    assert!(
        config(r#"{"TRUST_FORWARDED_FOR":true}"#)
            .unwrap()
            .trust_forwarded_for
    );
    assert_eq!(
        config(r#"{"TRUST_FORWARDED_FOR":"sometimes"}"#)
            .unwrap_err()
            .setting,
        "TRUST_FORWARDED_FOR"
    );
}

#[test]
fn the_first_party_settings_default_on_and_turn_off() {
    let c = config("{}").unwrap();
    assert!(c.forward_visitor_ip && c.filter_bots && c.serve_script);
    assert_eq!(c.bot_score_min, None, "scores are read only when asked for");
    let c = config(
        r#"{"FORWARD_VISITOR_IP":"false","FILTER_BOTS":false,"SERVE_SCRIPT":"0","BOT_SCORE_MIN":"10"}"#,
    )
    .unwrap();
    assert!(!c.forward_visitor_ip && !c.filter_bots && !c.serve_script);
    assert_eq!(c.bot_score_min, Some(10));
    for bad in [r#""x""#, r#""101""#, r#""-1""#] {
        let e = config(&format!(r#"{{"BOT_SCORE_MIN":{bad}}}"#)).unwrap_err();
        assert_eq!(e.setting, "BOT_SCORE_MIN");
    }
    assert_eq!(
        config(r#"{"FORWARD_VISITOR_IP":"maybe"}"#)
            .unwrap_err()
            .setting,
        "FORWARD_VISITOR_IP"
    );
}

#[test]
fn sandboxed_frames_are_allowed_only_when_asked_and_never_as_an_origin() {
    assert!(!config("{}").unwrap().allow_null_origin, "off by default");
    for (v, want) in [
        (r#""true""#, true),
        (r#""TRUE""#, true),
        ("true", true),
        (r#""1""#, true),
        (r#""false""#, false),
        (r#""0""#, false),
        (r#""""#, false),
    ] {
        let c = config(&format!(r#"{{"ALLOW_NULL_ORIGIN":{v}}}"#)).unwrap();
        assert_eq!(c.allow_null_origin, want, "{v}");
    }
    for bad in [r#""yes""#, r#""null""#, r#"{"on":true}"#, "[true]"] {
        let e = config(&format!(r#"{{"ALLOW_NULL_ORIGIN":{bad}}}"#)).unwrap_err();
        assert_eq!(e.setting, "ALLOW_NULL_ORIGIN", "{bad}");
    }
    // `null` is no origin of the shop's, with the setting or without: it would be given
    // what the shop's pages are (`/id`, the unsigned browser path).
    for origins in ["null", "https://shop.example,null"] {
        let e = config(&format!(
            r#"{{"ALLOW_NULL_ORIGIN":"true","ALLOWED_ORIGINS":"{origins}"}}"#
        ))
        .unwrap_err();
        assert_eq!(e.setting, "ALLOWED_ORIGINS", "{origins}");
        assert!(e.reason.contains("ALLOW_NULL_ORIGIN"), "{}", e.reason);
    }
    let c =
        config(r#"{"ALLOW_NULL_ORIGIN":"true","ALLOWED_ORIGINS":"https://shop.example"}"#).unwrap();
    assert_eq!(c.allowed_origin("null"), None);
}

#[test]
fn numbers_and_booleans_from_wrangler_vars_are_read_and_bindings_ignored() {
    let c = config(
        r#"{"MAX_BODY_BYTES":2048,"UPSTREAM_TIMEOUT_MS":"500","REPLAY_KV":{"get":{}},"ROUTE_PREFIX":"/klaviyo/"}"#,
    )
    .unwrap();
    assert_eq!(c.max_body_bytes, 2048);
    assert_eq!(c.upstream_timeout_ms, 500);
    assert_eq!(c.route_prefix, "/klaviyo");
}

#[test]
fn a_bad_setting_is_named_never_its_value() {
    for (json, setting) in [
        (
            r#"{"KLAVIYO_PUBLIC_KEY":"secret-ish"}"#,
            "KLAVIYO_PUBLIC_KEY",
        ),
        (r#"{"KLAVIYO_API_BASE":"ftp://x"}"#, "KLAVIYO_API_BASE"),
        (r#"{"KLAVIYO_REVISION":"July"}"#, "KLAVIYO_REVISION"),
        (r#"{"MAX_BODY_BYTES":"lots"}"#, "MAX_BODY_BYTES"),
        (r#"{"UPSTREAM_TIMEOUT_MS":0}"#, "UPSTREAM_TIMEOUT_MS"),
        (
            r#"{"BROWSER_RATE_PER_MINUTE":"-1"}"#,
            "BROWSER_RATE_PER_MINUTE",
        ),
        (
            r#"{"KLAVIYO_PRIVATE_KEY":{"nested":"pk_live"}}"#,
            "KLAVIYO_PRIVATE_KEY",
        ),
        (r#"{"ROUTE_PREFIX":"klaviyo"}"#, "ROUTE_PREFIX"),
        (r#"{"ROUTE_PREFIX":"/klaviyo/*"}"#, "ROUTE_PREFIX"),
        (r#"{"ALLOWED_ORIGINS":"*"}"#, "ALLOWED_ORIGINS"),
        (r#"{"ALLOWED_ORIGINS":"shop.example"}"#, "ALLOWED_ORIGINS"),
        (
            r#"{"ALLOWED_ORIGINS":"https://a.example,https://shop.example/klaviyo"}"#,
            "ALLOWED_ORIGINS",
        ),
        (
            r#"{"ALLOWED_ORIGINS":"https://*.shop.example"}"#,
            "ALLOWED_ORIGINS",
        ),
        (r#"{"ALLOWED_ORIGINS":"null"}"#, "ALLOWED_ORIGINS"),
        (
            r#"{"WEBHOOK_FORWARD_URL":"http://hooks.example/in"}"#,
            "WEBHOOK_FORWARD_URL",
        ),
    ] {
        let e = config(json).unwrap_err();
        assert_eq!(e.setting, setting, "{json}");
        assert!(!e.reason.contains("secret") && !e.reason.contains("pk_live"));
    }
}

#[test]
fn origins_as_browsers_send_them_are_taken() {
    let c = config(
        r#"{"ALLOWED_ORIGINS":" https://Shop.Example/ , http://localhost:8080,https://www.shop.example:443,http://[::1]:8080,capacitor://localhost,chrome-extension://abcdefghijklmnop"}"#,
    )
    .unwrap();
    assert_eq!(
        c.allowed_origins,
        [
            "https://shop.example",
            "http://localhost:8080",
            "https://www.shop.example",
            "http://[::1]:8080",
            "capacitor://localhost",
            "chrome-extension://abcdefghijklmnop"
        ]
    );
}

#[test]
fn the_private_key_only_travels_over_https_or_to_this_machine() {
    assert!(secure_url("https://a.klaviyo.com"));
    for local in [
        "http://127.0.0.1:8787",
        "http://localhost/x",
        "http://[::1]:9/",
    ] {
        assert!(secure_url(local), "{local}");
        assert!(config(&format!(r#"{{"KLAVIYO_API_BASE":"{local}"}}"#)).is_ok());
    }
    for remote in [
        "http://a.klaviyo.com",
        "http://127.0.0.1.evil.example",
        "http://localhost.evil.example:80",
        "http://evil.example/127.0.0.1",
        "ftp://127.0.0.1",
    ] {
        assert!(!secure_url(remote), "{remote}");
    }
    assert_eq!(
        config(r#"{"KLAVIYO_API_BASE":"http://a.klaviyo.com"}"#)
            .unwrap_err()
            .setting,
        "KLAVIYO_API_BASE"
    );
}
