use super::*;

#[test]
fn defaults_and_url() {
    let c = Config::from_json(r#"{"companyId":"AbC123"}"#).unwrap();
    assert_eq!(
        c.url("/client/events"),
        "https://a.klaviyo.com/client/events?company_id=AbC123"
    );
    assert_eq!(c.revision, "2026-07-15");
    assert_eq!(c.queue_prefix(), "klaviyo:AbC123:q:");
    assert_eq!(c.mark_prefix(), "klaviyo:AbC123:k:");
    assert_eq!(c.limits.max_events, 1000);
    assert_eq!(c.limits.flush_delay_ms, 0);
    assert_eq!(c.consent, Consent::Granted);
    assert!(c.limits.max_memory_bytes >= 8 * c.limits.max_bytes);
}

#[test]
fn trims_the_api_base_and_reads_limits() {
    let c = Config::from_json(
        r#"{"companyId":"AbC123","apiBase":"http://127.0.0.1:9/k/","maxQueueEvents":5,"maxMemoryBytes":77,"flushDelayMs":0,"onError":null}"#,
    )
    .unwrap();
    assert_eq!(
        c.url("/client/profiles"),
        "http://127.0.0.1:9/k/client/profiles?company_id=AbC123"
    );
    assert_eq!(c.limits.max_events, 5);
    assert_eq!(c.limits.max_memory_bytes, 77);
    for (given, trimmed) in [
        ("https://x.io//", "https://x.io"),
        ("/", ""),
        ("a/b", "a/b"),
    ] {
        assert_eq!(trim_slashes(given), given.trim_end_matches('/'));
        assert_eq!(trim_slashes(given), trimmed);
    }
}

#[test]
fn reads_the_consent() {
    for (code, consent) in [
        (0, Consent::Pending),
        (1, Consent::Granted),
        (2, Consent::Denied),
    ] {
        let text = format!(r#"{{"companyId":"AbC123","consent":{code}}}"#);
        assert_eq!(Config::from_json(&text).unwrap().consent, consent);
    }
    let c = Config::from_json(r#"{"companyId":"AbC123","consent":null}"#).unwrap();
    assert_eq!(c.consent, Consent::Granted);
    assert_eq!(c.consent_key(), "klaviyo:AbC123:consent");
}

#[test]
fn names_the_bad_option() {
    for (text, field) in [
        (r#"{}"#, "companyId"),
        (r#"{"companyId":"abc"}"#, "companyId"),
        (r#"{"companyId":7}"#, "companyId"),
        (
            r#"{"companyId":"AbC123","apiBase":"a.klaviyo.com"}"#,
            "apiBase",
        ),
        (r#"{"companyId":"AbC123","apiBase":5}"#, "apiBase"),
        // Blank is refused, never Klaviyo's own address in place of the shop's worker.
        (r#"{"companyId":"AbC123","apiBase":""}"#, "apiBase"),
        (r#"{"companyId":"AbC123","revision":"July"}"#, "revision"),
        (
            r#"{"companyId":"AbC123","maxQueueEvents":-1}"#,
            "maxQueueEvents",
        ),
        (
            r#"{"companyId":"AbC123","maxQueueBytes":1.5}"#,
            "maxQueueBytes",
        ),
        (
            r#"{"companyId":"AbC123","maxMemoryBytes":"1"}"#,
            "maxMemoryBytes",
        ),
        (r#"{"companyId":"AbC123","consent":3}"#, "consent"),
        (r#"{"companyId":"AbC123","consent":"granted"}"#, "consent"),
        ("null", "options"),
        ("[]", "options"),
        ("{", "options"),
    ] {
        assert_eq!(Config::from_json(text).unwrap_err().field, field, "{text}");
    }
}
