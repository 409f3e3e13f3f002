//! Who may use the private key: the shop's backend, by signing each request, and
//! Klaviyo, by signing its webhooks.
//!
//! Backend signature (our format): header
//! `X-Klaviyo-Edge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`,
//! accepted within 5 minutes of the worker's clock. The timestamp is signed with the
//! body, so a captured request cannot be replayed after the window.
//!
//! Klaviyo system webhooks (as Klaviyo documents them): `Klaviyo-Signature` is the hex
//! HMAC-SHA256 of the raw body followed by the `Klaviyo-Timestamp` header value, keyed
//! with the webhook's secret; `meta.klaviyo_webhook_id` in the body must equal the
//! `Klaviyo-Webhook-Id` header.

use super::crypto::{constant_time_eq, hex, hmac_sha256};
use crate::core::text;
use crate::core::time;

/// How far a signed timestamp may be from the worker's clock.
pub const WINDOW_S: i64 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Malformed,
    Stale,
    BadSignature,
    WebhookIdMismatch,
}

impl AuthError {
    pub fn detail(self) -> &'static str {
        match self {
            AuthError::Missing => "the request is not signed",
            AuthError::Malformed => "the signature header is malformed",
            AuthError::Stale => "the signature timestamp is outside the 5-minute window",
            AuthError::BadSignature => "the signature does not match",
            AuthError::WebhookIdMismatch => {
                "meta.klaviyo_webhook_id does not match the Klaviyo-Webhook-Id header"
            }
        }
    }
}

/// Checks `X-Klaviyo-Edge-Signature` against the raw body.
pub fn verify_backend(
    header: Option<&str>,
    body: &str,
    secret: &str,
    now_s: i64,
) -> Result<(), AuthError> {
    let header = header.ok_or(AuthError::Missing)?;
    let mut t = None;
    let mut sig = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("v1", v)) => sig = Some(v),
            _ => {}
        }
    }
    let (t, sig) = t.zip(sig).ok_or(AuthError::Malformed)?;
    let ts = text::parse_i64(t).ok_or(AuthError::Malformed)?;
    if (now_s - ts).abs() > WINDOW_S {
        return Err(AuthError::Stale);
    }
    let expected = hex(&hmac_sha256(
        secret.as_bytes(),
        &[t.as_bytes(), b".", body.as_bytes()],
    ));
    if constant_time_eq(
        expected.as_bytes(),
        sig.trim().to_ascii_lowercase().as_bytes(),
    ) {
        Ok(())
    } else {
        Err(AuthError::BadSignature)
    }
}

/// The value for `X-Klaviyo-Edge-Signature` (what the shop's backend computes).
pub fn sign_backend(body: &str, secret: &str, now_s: i64) -> String {
    let mut t = String::new();
    if now_s < 0 {
        t.push('-');
    }
    crate::core::text::push_u64(&mut t, now_s.unsigned_abs());
    let sig = hex(&hmac_sha256(
        secret.as_bytes(),
        &[t.as_bytes(), b".", body.as_bytes()],
    ));
    let mut out = String::from("t=");
    out.push_str(&t);
    out.push_str(",v1=");
    out.push_str(&sig);
    out
}

/// `Klaviyo-Timestamp` in unix seconds (or milliseconds), or ISO 8601.
fn webhook_time(v: &str) -> Option<i64> {
    match text::parse_i64(v.trim()) {
        Some(n) if n > 100_000_000_000 => Some(n / 1000),
        Some(n) => Some(n),
        None => time::secs_from_iso(v.trim()),
    }
}

/// Checks a Klaviyo system webhook: signature, freshness, and the webhook id in the
/// body against the header.
pub fn verify_webhook(
    signature: Option<&str>,
    timestamp: Option<&str>,
    webhook_id: Option<&str>,
    body_webhook_id: Option<&str>,
    body: &str,
    secret: &str,
    now_s: i64,
) -> Result<(), AuthError> {
    let (sig, ts, id) = match (signature, timestamp, webhook_id) {
        (Some(s), Some(t), Some(i)) => (s, t, i),
        _ => return Err(AuthError::Missing),
    };
    let expected = hex(&hmac_sha256(
        secret.as_bytes(),
        &[body.as_bytes(), ts.as_bytes()],
    ));
    if !constant_time_eq(
        expected.as_bytes(),
        sig.trim().to_ascii_lowercase().as_bytes(),
    ) {
        return Err(AuthError::BadSignature);
    }
    let when = webhook_time(ts).ok_or(AuthError::Malformed)?;
    if (now_s - when).abs() > WINDOW_S {
        return Err(AuthError::Stale);
    }
    if body_webhook_id != Some(id) {
        return Err(AuthError::WebhookIdMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_669_339;

    #[test]
    fn a_backend_signature_round_trips_and_rejects_tampering() {
        let body = r#"{"data":{}}"#;
        let h = sign_backend(body, "s3cret", NOW);
        assert!(h.starts_with("t=1795669339,v1="));
        assert_eq!(verify_backend(Some(&h), body, "s3cret", NOW + 10), Ok(()));
        assert_eq!(
            verify_backend(Some(&h), r#"{"data":1}"#, "s3cret", NOW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify_backend(Some(&h), body, "other", NOW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify_backend(Some(&h), body, "s3cret", NOW + 301),
            Err(AuthError::Stale)
        );
        assert_eq!(
            verify_backend(Some(&h), body, "s3cret", NOW - 301),
            Err(AuthError::Stale)
        );
        assert_eq!(
            verify_backend(None, body, "s3cret", NOW),
            Err(AuthError::Missing)
        );
        assert_eq!(
            verify_backend(Some("v1=abc"), body, "s3cret", NOW),
            Err(AuthError::Malformed)
        );
        // The timestamp is signed: moving it forward breaks the signature.
        let moved = h.replace("t=1795669339", "t=1795669400");
        assert_eq!(
            verify_backend(Some(&moved), body, "s3cret", NOW + 60),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn a_known_backend_signature_matches_node_crypto() {
        // node -e 'console.log(require("crypto").createHmac("sha256","s3cret").update("1795669339.{}").digest("hex"))'
        let h = sign_backend("{}", "s3cret", NOW);
        let expected = hex(&hmac_sha256(b"s3cret", &[b"1795669339.{}"]));
        assert_eq!(h, format!("t=1795669339,v1={expected}"));
    }

    #[test]
    fn webhooks_are_verified_as_klaviyo_signs_them() {
        let body = r#"{"data":[],"meta":{"klaviyo_webhook_id":"wh_1"}}"#;
        let ts = "1795669339";
        let sig = hex(&hmac_sha256(b"whsecret", &[body.as_bytes(), ts.as_bytes()]));
        let ok = |s: &str, t: &str, id: &str, bid: &str, now: i64| {
            verify_webhook(Some(s), Some(t), Some(id), Some(bid), body, "whsecret", now)
        };
        assert_eq!(ok(&sig, ts, "wh_1", "wh_1", NOW), Ok(()));
        assert_eq!(
            ok(&sig, ts, "wh_1", "wh_1", NOW + 301),
            Err(AuthError::Stale)
        );
        assert_eq!(
            ok(&sig, ts, "wh_2", "wh_1", NOW),
            Err(AuthError::WebhookIdMismatch)
        );
        assert_eq!(
            ok(&sig, "1795669340", "wh_1", "wh_1", NOW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            ok("00", ts, "wh_1", "wh_1", NOW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify_webhook(
                None,
                Some(ts),
                Some("wh_1"),
                Some("wh_1"),
                body,
                "whsecret",
                NOW
            ),
            Err(AuthError::Missing)
        );
        // An ISO timestamp works too, signed as sent.
        let iso = "2026-11-26T05:02:19Z";
        let sig = hex(&hmac_sha256(
            b"whsecret",
            &[body.as_bytes(), iso.as_bytes()],
        ));
        assert_eq!(ok(&sig, iso, "wh_1", "wh_1", NOW), Ok(()));
    }
}
