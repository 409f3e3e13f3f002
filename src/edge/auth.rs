//! Who may use the private key: the shop's backend, by signing each request, and
//! Klaviyo, by signing its webhooks. Both schemes are HMAC-SHA256 (the `hmac` and
//! `sha2` crates), compared in constant time with [`Mac::verify_slice`], over the
//! EXACT body bytes as received: nothing is decoded, trimmed or normalised first (a
//! UTF-8 byte order mark stays part of what is signed, and a body need not be UTF-8).
//!
//! Backend signature (our format, version 2): header
//! `X-Klaviyo-Edge-Signature: t=<unix seconds>,v2=<hex HMAC-SHA256(secret, "<t>\n<METHOD>\n<path>\n<raw body>")>`,
//! accepted within [`WINDOW_S`] seconds of the worker's clock. The path is the route
//! below `ROUTE_PREFIX` (`/api/orders`, no query), so a signature does not depend on
//! where the worker is mounted. A signature authorises one method on one route at one
//! time with one body: moved to another route it no longer matches, and within the
//! window [`ReplayGuard`] refuses it a second time. A newline cannot occur in a method or a URL path, so no two
//! requests sign the same text. Version 1 signed only `"<t>.<body>"`, which let a
//! captured call be replayed on another route; it is refused with its own message.
//!
//! The worker signs the webhooks it forwards with a key derived from the same secret
//! for that direction only ([`sign_forward`]): a forward is never a valid backend
//! call, and a captured backend call is never a valid forward.
//!
//! Klaviyo system webhooks (as Klaviyo documents them): `Klaviyo-Signature` is the hex
//! HMAC-SHA256 of the raw body followed by the `Klaviyo-Timestamp` header value, keyed
//! with the webhook's secret, and that timestamp must be within [`WINDOW_S`] seconds.
//! (That `meta.klaviyo_webhook_id` in the body equals the `Klaviyo-Webhook-Id` header is
//! checked by the router, once the body is parsed.)
//!
//! Both verifiers return the 32-byte tag: the key to give [`ReplayGuard::first_use`].
//! Errors ([`AuthError`]) never carry header values, bodies or secrets.

use std::collections::{HashMap, VecDeque};

use hmac::digest::Key;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::core::time;

type HmacSha256 = Hmac<Sha256>;

/// How far (in seconds, either way) a signed timestamp may be from the worker's clock,
/// and how long [`ReplayGuard`] remembers a signature.
pub const WINDOW_S: u64 = 300;

/// [`WINDOW_S`] as a signed number of seconds, for clock arithmetic.
const WINDOW_I64: i64 = WINDOW_S as i64;

/// `Klaviyo-Timestamp` values above this are milliseconds (it is the year 5138 in
/// seconds).
const MS_THRESHOLD: i64 = 100_000_000_000;

/// Why a signed request was refused. [`AuthError::detail`] is safe to show the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No signature (or, for webhooks, no timestamp) was sent.
    Missing,
    /// The signature header could not be read: missing or repeated parts, a timestamp
    /// that is not a number, a signature that is not hex.
    Malformed,
    /// The signed timestamp is more than [`WINDOW_S`] seconds from the worker's clock.
    Stale,
    /// The signature does not match the body (wrong secret, tampered body or timestamp).
    BadSignature,
    /// The signature was valid but already used within the window.
    Replayed,
    /// A version 1 backend signature, which does not cover the method and path.
    Outdated,
}

impl AuthError {
    /// Human text for the error; it never contains the header values, body or secret.
    pub fn detail(self) -> &'static str {
        match self {
            AuthError::Missing => "the request is not signed",
            AuthError::Malformed => "the signature header is malformed",
            AuthError::Stale => "the signature timestamp is outside the 5-minute window",
            AuthError::BadSignature => "the signature does not match",
            AuthError::Replayed => "the signature was already used",
            AuthError::Outdated => {
                "the signature is version 1 (v1=), which does not cover the method and path; \
                 sign with v2 (klaviyo-wasm/sign)"
            }
        }
    }
}

/// Whether `ts` (unix seconds, attacker-chosen, any `i64`) is within [`WINDOW_S`]
/// seconds of `now_s`, either way. Computed with [`i64::abs_diff`], so no pair of
/// values overflows (a plain `(now - ts).abs()` would, and in release builds wrap
/// round to "fresh").
pub fn fresh(ts: i64, now_s: i64) -> bool {
    ts.abs_diff(now_s) <= WINDOW_S
}

/// HMAC-SHA256 keyed with `secret`, infallibly. `Hmac::new_from_slice` cannot fail for
/// HMAC but says so with a `Result`; this derives the block-sized key itself, exactly
/// as RFC 2104 does (a key longer than the block is hashed first, then zero-padded).
fn keyed(secret: &[u8]) -> HmacSha256 {
    let mut block = Key::<HmacSha256>::default();
    if secret.len() <= block.len() {
        block[..secret.len()].copy_from_slice(secret);
    } else {
        let digest = Sha256::digest(secret);
        block[..digest.len()].copy_from_slice(&digest);
    }
    HmacSha256::new(&block)
}

/// HMAC-SHA256 keyed with `secret` over the concatenation of `parts`.
fn mac_over(secret: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = keyed(secret);
    for part in parts {
        mac.update(part);
    }
    mac
}

/// The HMAC-SHA256 tag of the concatenation of `parts`.
fn hmac_sha256(secret: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    mac_over(secret, parts).finalize().into_bytes().into()
}

/// A header that was sent and is not blank.
pub fn present(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.trim().is_empty())
}

/// Unix seconds as our header writes them: an optional `-`, then ASCII digits.
fn parse_secs(s: &str) -> Option<i64> {
    if s.starts_with('+') {
        return None;
    }
    s.parse().ok()
}

/// A signature in hex (either case, surrounding spaces ignored) as bytes.
fn decode_sig(s: &str) -> Result<Vec<u8>, AuthError> {
    hex::decode(s.trim()).map_err(|_| AuthError::Malformed)
}

/// The parts of `X-Klaviyo-Edge-Signature` that matter.
struct BackendHeader<'a> {
    /// The timestamp exactly as sent (it is signed as text).
    t: &'a str,
    ts: i64,
    sig: Vec<u8>,
}

/// Reads `t=…,v2=…`: parts in any order, spaces around parts, keys and values
/// ignored, unknown parts (`v0=…`, a trailing comma) ignored; a missing or repeated
/// `t` or `v2`, a non-numeric `t` or non-hex `v2` is malformed, and a `v1` without a
/// `v2` is outdated.
fn parse_backend_header(header: &str) -> Result<BackendHeader<'_>, AuthError> {
    let mut t = None;
    let mut v2 = None;
    let mut v1 = false;
    for part in header.split(',') {
        let Some((key, value)) = part.split_once('=') else {
            continue;
        };
        let slot = match key.trim() {
            "t" => &mut t,
            "v2" => &mut v2,
            "v1" => {
                v1 = true;
                continue;
            }
            _ => continue,
        };
        if slot.replace(value.trim()).is_some() {
            return Err(AuthError::Malformed);
        }
    }
    if v1 && v2.is_none() {
        return Err(AuthError::Outdated);
    }
    let (t, v2) = t.zip(v2).ok_or(AuthError::Malformed)?;
    let ts = parse_secs(t).ok_or(AuthError::Malformed)?;
    let sig = decode_sig(v2)?;
    Ok(BackendHeader { t, ts, sig })
}

/// What a backend signature covers besides its timestamp: one method on one route (the
/// path below `ROUTE_PREFIX`) with one body.
#[derive(Clone, Copy, Debug)]
pub struct Signed<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub body: &'a [u8],
}

/// The tag of `"<t>\n<METHOD>\n<path>\n<body>"` keyed with `key`.
fn backend_mac(key: &[u8], t: &str, what: Signed) -> HmacSha256 {
    mac_over(
        key,
        &[
            t.as_bytes(),
            b"\n",
            what.method.as_bytes(),
            b"\n",
            what.path.as_bytes(),
            b"\n",
            what.body,
        ],
    )
}

/// A verified tag as the fixed-size replay key.
fn tag_of(sig: &[u8]) -> [u8; 32] {
    let mut tag = [0; 32];
    if sig.len() == tag.len() {
        tag.copy_from_slice(sig);
    }
    tag
}

/// Checks `X-Klaviyo-Edge-Signature` against the request: the header must be
/// readable, its timestamp fresh, and `v2` the HMAC-SHA256 of
/// `"<t>\n<METHOD>\n<path>\n<body>"` keyed with `secret` (compared in constant time).
/// A blank header counts as missing. On success returns the tag, the replay key.
pub fn verify_backend(
    header: Option<&str>,
    what: Signed,
    secret: &str,
    now_s: i64,
) -> Result<[u8; 32], AuthError> {
    verify_keyed(header, what, secret.as_bytes(), now_s)
}

/// [`verify_backend`] with the key itself: the secret's bytes, or a key derived from it.
fn verify_keyed(
    header: Option<&str>,
    what: Signed,
    key: &[u8],
    now_s: i64,
) -> Result<[u8; 32], AuthError> {
    let header = present(header).ok_or(AuthError::Missing)?;
    let parsed = parse_backend_header(header)?;
    if !fresh(parsed.ts, now_s) {
        return Err(AuthError::Stale);
    }
    backend_mac(key, parsed.t, what)
        .verify_slice(&parsed.sig)
        .map_err(|_| AuthError::BadSignature)?;
    Ok(tag_of(&parsed.sig))
}

/// The `X-Klaviyo-Edge-Signature` value for `what` signed at `now_s` with `secret`:
/// what the shop's backend computes (`klaviyo-wasm/sign` does it in JavaScript).
pub fn sign_backend(what: Signed, secret: &str, now_s: i64) -> String {
    let t = now_s.to_string();
    let sig = backend_mac(secret.as_bytes(), &t, what)
        .finalize()
        .into_bytes();
    format!("t={t},v2={}", hex::encode(sig))
}

/// The label the visitor cookie's key is derived with.
const VISITOR_KEY_LABEL: &[u8] = b"klaviyo-wasm visitor id";

/// The tag of the first-party visitor cookie's `payload`: HMAC-SHA256 keyed with
/// HMAC-SHA256(secret, label), so it signs no call and no forward.
pub fn visitor_tag(secret: &str, payload: &[u8]) -> [u8; 32] {
    let key = hmac_sha256(secret.as_bytes(), &[VISITOR_KEY_LABEL]);
    hmac_sha256(&key, &[payload])
}

/// Whether `tag` is [`visitor_tag`] of `payload` (compared in constant time).
pub fn visitor_tag_ok(secret: &str, payload: &[u8], tag: &[u8]) -> bool {
    let key = hmac_sha256(secret.as_bytes(), &[VISITOR_KEY_LABEL]);
    mac_over(&key, &[payload]).verify_slice(tag).is_ok()
}

/// The label the webhook-forward key is derived with.
const FORWARD_KEY_LABEL: &[u8] = b"klaviyo-wasm webhook forward";

/// The route a forwarded webhook's signature names: the one it came in on.
pub const FORWARD_PATH: &str = "/webhooks/klaviyo";

/// The key the worker signs forwarded webhooks with: HMAC-SHA256(secret, label). It
/// verifies no backend call, and the secret itself verifies no forward.
fn forward_key(secret: &str) -> [u8; 32] {
    hmac_sha256(secret.as_bytes(), &[FORWARD_KEY_LABEL])
}

/// The `X-Klaviyo-Edge-Signature` of a verified webhook the worker forwards: the
/// backend scheme (`POST`, [`FORWARD_PATH`]) keyed with [`forward_key`].
pub fn sign_forward(body: &[u8], secret: &str, now_s: i64) -> String {
    let what = Signed {
        method: "POST",
        path: FORWARD_PATH,
        body,
    };
    let t = now_s.to_string();
    let sig = backend_mac(&forward_key(secret), &t, what)
        .finalize()
        .into_bytes();
    format!("t={t},v2={}", hex::encode(sig))
}

/// What a receiver of forwarded webhooks checks ([`sign_forward`]'s counterpart).
pub fn verify_forward(
    header: Option<&str>,
    body: &[u8],
    secret: &str,
    now_s: i64,
) -> Result<[u8; 32], AuthError> {
    let what = Signed {
        method: "POST",
        path: FORWARD_PATH,
        body,
    };
    verify_keyed(header, what, &forward_key(secret), now_s)
}

/// `Klaviyo-Timestamp` in unix seconds: sent as seconds, as milliseconds (values above
/// [`MS_THRESHOLD`]), or as ISO 8601.
fn webhook_time(v: &str) -> Option<i64> {
    let v = v.trim();
    match parse_secs(v) {
        Some(n) if n > MS_THRESHOLD => Some(n / 1000),
        Some(n) => Some(n),
        None => time::secs_from_iso(v),
    }
}

/// Checks a Klaviyo system webhook: `signature` (the `Klaviyo-Signature` header) must
/// be the hex HMAC-SHA256, keyed with `secret`, of the exact `body` bytes followed by
/// the `timestamp` header value's bytes (as sent), and that timestamp must be fresh.
/// The signature is checked first, so an unsigned body costs nothing more. Blank
/// headers count as missing. On success returns the tag, the replay key. Whether the
/// body's webhook id matches `Klaviyo-Webhook-Id` is the router's check.
pub fn verify_webhook(
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    secret: &str,
    now_s: i64,
) -> Result<[u8; 32], AuthError> {
    let (Some(signature), Some(timestamp)) = (present(signature), present(timestamp)) else {
        return Err(AuthError::Missing);
    };
    let sig = decode_sig(signature)?;
    mac_over(secret.as_bytes(), &[body, timestamp.as_bytes()])
        .verify_slice(&sig)
        .map_err(|_| AuthError::BadSignature)?;
    let when = webhook_time(timestamp).ok_or(AuthError::Malformed)?;
    if !fresh(when, now_s) {
        return Err(AuthError::Stale);
    }
    Ok(tag_of(&sig))
}

/// Signatures already accepted within the last [`WINDOW_S`] seconds, so a captured
/// request cannot be sent again while its timestamp is still fresh.
///
/// Best-effort, per isolate: each workerd isolate has its own guard, and a replay that
/// lands on another isolate (or after an isolate restart) is not caught. Memory is
/// bounded: entries older than the window are dropped as time passes, and past
/// `max_entries` the oldest are forgotten early. A forgotten signature can be replayed
/// until its timestamp goes stale; that is the trade-off for bounded memory under a
/// flood of valid requests, so size `max_entries` above the expected signed requests
/// per window.
///
/// Each call costs O(1) amortised: entries sit in a queue in the order they were
/// accepted, and expiry and eviction pop from its front. Keys are 32-byte tags, so
/// memory is bounded in bytes by `max_entries` ([`ReplayGuard::heap_bytes`]).
#[derive(Debug)]
pub struct ReplayGuard {
    max_entries: usize,
    /// Each remembered key, with when it was accepted.
    seen: HashMap<[u8; 32], i64>,
    /// `(accepted at, key)` in acceptance order. A key accepted again after expiring
    /// (only possible if the clock went backwards) leaves an outdated entry behind,
    /// recognised on removal by its time differing from `seen`'s.
    order: VecDeque<(i64, [u8; 32])>,
}

impl ReplayGuard {
    /// A guard remembering at most `max_entries` signatures (0 remembers none).
    pub fn new(max_entries: usize) -> ReplayGuard {
        ReplayGuard {
            max_entries,
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// True, and remembers `key`, the first time; false if `key` was accepted less than
    /// [`WINDOW_S`] seconds before `now_s` (a replay). A key remembered from a time
    /// after `now_s` (the clock went backwards) also counts as a replay.
    pub fn first_use(&mut self, key: &[u8; 32], now_s: i64) -> bool {
        self.expire(now_s);
        if let Some(&at) = self.seen.get(key) {
            if now_s.saturating_sub(at) < WINDOW_I64 {
                return false;
            }
        }
        self.seen.insert(*key, now_s);
        self.order.push_back((now_s, *key));
        while self.order.len() > self.max_entries {
            self.forget_oldest();
        }
        true
    }

    /// How many signatures are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no signature is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// The heap the guard holds now: the map's slots (entry and control byte each) and
    /// the acceptance order, by capacity.
    pub fn heap_bytes(&self) -> usize {
        super::heap::slots(self.seen.capacity()) * (std::mem::size_of::<([u8; 32], i64)>() + 1)
            + self.order.capacity() * std::mem::size_of::<(i64, [u8; 32])>()
    }

    /// The most [`ReplayGuard::heap_bytes`] can be with `max_entries` remembered.
    pub const fn max_heap_bytes(max_entries: usize) -> usize {
        super::heap::bound(
            max_entries,
            std::mem::size_of::<([u8; 32], i64)>(),
            std::mem::size_of::<(i64, [u8; 32])>(),
        )
    }

    /// Drops the entries, from the oldest, that are at least [`WINDOW_S`] old.
    fn expire(&mut self, now_s: i64) {
        while let Some(&(at, _)) = self.order.front() {
            if now_s.saturating_sub(at) < WINDOW_I64 {
                break;
            }
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some((at, key)) = self.order.pop_front() {
            if self.seen.get(&key) == Some(&at) {
                self.seen.remove(&key);
            }
        }
    }
}

// The figure the README gives: 8 MiB for the 50,000 signatures an isolate remembers.
const _: () = assert!(ReplayGuard::max_heap_bytes(50_000) <= 8 * 1024 * 1024);

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_669_339;
    const SECRET: &str = "s3cret";
    const WH_SECRET: &str = "whsecret";
    const BODY: &[u8] = br#"{"data":{}}"#;

    fn hex_tag(key: &[u8], parts: &[&[u8]]) -> String {
        hex::encode(hmac_sha256(key, parts))
    }

    /// A body as a `POST /api/events` signs it.
    fn to_events(body: &[u8]) -> Signed<'_> {
        Signed {
            method: "POST",
            path: "/api/events",
            body,
        }
    }

    /// What `POST /api/events` at NOW signs before the body.
    const SIGNED_HEAD: &[u8] = b"1795669339\nPOST\n/api/events\n";

    /// A replay key from a name.
    fn k(name: &str) -> [u8; 32] {
        Sha256::digest(name.as_bytes()).into()
    }

    /// The webhook signature Klaviyo would send for `body` and `ts`.
    fn klaviyo_sign(body: &[u8], ts: &str) -> String {
        hex_tag(WH_SECRET.as_bytes(), &[body, ts.as_bytes()])
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231_test_case_1() {
        assert_eq!(
            hex_tag(&[0x0b; 20], &[b"Hi There"]),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231_test_case_2_split_across_parts() {
        assert_eq!(
            hex_tag(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231_test_case_6_with_a_key_longer_than_the_block() {
        assert_eq!(
            hex_tag(
                &[0xaa; 131],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn a_signed_backend_request_verifies_and_returns_its_lower_case_signature() {
        let h = sign_backend(to_events(BODY), SECRET, NOW);
        let sig = hex_tag(SECRET.as_bytes(), &[SIGNED_HEAD, BODY]);
        assert_eq!(h, format!("t=1795669339,v2={sig}"));
        assert_eq!(
            verify_backend(Some(&h), to_events(BODY), SECRET, NOW + 10).map(hex::encode),
            Ok(sig)
        );
    }

    #[test]
    fn a_backend_signature_with_the_wrong_secret_is_refused() {
        let h = sign_backend(to_events(BODY), "other", NOW);
        assert_eq!(
            verify_backend(Some(&h), to_events(BODY), SECRET, NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn a_tampered_backend_body_is_refused() {
        let h = sign_backend(to_events(BODY), SECRET, NOW);
        assert_eq!(
            verify_backend(Some(&h), to_events(br#"{"data":1}"#), SECRET, NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn moving_the_signed_timestamp_breaks_the_signature() {
        let h = sign_backend(to_events(BODY), SECRET, NOW);
        let moved = h.replace("t=1795669339", "t=1795669400");
        assert_eq!(
            verify_backend(Some(&moved), to_events(BODY), SECRET, NOW + 60),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn a_missing_or_blank_backend_header_is_missing() {
        assert_eq!(
            verify_backend(None, to_events(BODY), SECRET, NOW),
            Err(AuthError::Missing)
        );
        assert_eq!(
            verify_backend(Some("  "), to_events(BODY), SECRET, NOW),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn malformed_backend_headers_are_malformed() {
        let sig = hex_tag(SECRET.as_bytes(), &[SIGNED_HEAD, BODY]);
        let cases = [
            format!("v2={sig}"),
            "t=1795669339".to_owned(),
            format!("t=1795669339,t=1795669339,v2={sig}"),
            format!("t=1795669339,v2={sig},v2={sig}"),
            format!("t=soon,v2={sig}"),
            format!("t=+1795669339,v2={sig}"),
            format!("t=,v2={sig}"),
            format!("t=1795669339,v2={sig}0"),
            "t=1795669339,v2=zz".to_owned(),
            "garbage".to_owned(),
        ];
        for h in cases {
            assert_eq!(
                verify_backend(Some(&h), to_events(BODY), SECRET, NOW),
                Err(AuthError::Malformed),
                "{h}"
            );
        }
    }

    #[test]
    fn a_backend_header_with_spaces_and_unknown_parts_still_verifies() {
        let sig = hex_tag(SECRET.as_bytes(), &[SIGNED_HEAD, BODY]);
        let h = format!(" v0=dead , t = 1795669339 ,  v2= {sig} , extra,");
        assert_eq!(
            verify_backend(Some(&h), to_events(BODY), SECRET, NOW).map(hex::encode),
            Ok(sig)
        );
    }

    #[test]
    fn upper_case_backend_hex_is_accepted_and_returned_lower_case() {
        let h = sign_backend(to_events(BODY), SECRET, NOW);
        let (t, sig) = h.split_once(",v2=").unwrap_or_default();
        let upper = format!("{t},v2={}", sig.to_ascii_uppercase());
        assert_eq!(
            verify_backend(Some(&upper), to_events(BODY), SECRET, NOW).map(hex::encode),
            Ok(sig.to_owned())
        );
    }

    #[test]
    fn a_signature_of_the_wrong_length_does_not_match() {
        assert_eq!(
            verify_backend(Some("t=1795669339,v2=00"), to_events(BODY), SECRET, NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn a_body_with_a_bom_verifies_over_its_exact_bytes() {
        let body = b"\xEF\xBB\xBF{\"data\":{}}";
        let h = sign_backend(to_events(body), SECRET, NOW);
        assert!(verify_backend(Some(&h), to_events(body), SECRET, NOW).is_ok());
        assert_eq!(
            verify_backend(Some(&h), to_events(&body[3..]), SECRET, NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn a_body_that_is_not_utf8_verifies_over_its_exact_bytes() {
        let body: &[u8] = &[0xff, 0xfe, 0x00, b'{', 0x80, b'}', 0xc3];
        assert!(std::str::from_utf8(std::hint::black_box(body)).is_err());
        let h = sign_backend(to_events(body), SECRET, NOW);
        assert!(verify_backend(Some(&h), to_events(body), SECRET, NOW).is_ok());
        assert_eq!(
            verify_backend(Some(&h), to_events(&body[..body.len() - 1]), SECRET, NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn a_webhook_body_with_a_bom_verifies_over_its_exact_bytes() {
        let body = b"\xEF\xBB\xBF{\"data\":[]}";
        let sig = klaviyo_sign(body, "1795669339");
        let check = |b: &[u8]| {
            verify_webhook(Some(&sig), Some("1795669339"), b, WH_SECRET, NOW).map(hex::encode)
        };
        assert_eq!(check(body), Ok(sig.clone()));
        assert_eq!(check(&body[3..]), Err(AuthError::BadSignature));
    }

    #[test]
    fn fresh_holds_exactly_within_the_window_and_never_overflows() {
        assert!(fresh(NOW, NOW));
        assert!(fresh(NOW + 300, NOW));
        assert!(fresh(NOW - 300, NOW));
        assert!(!fresh(NOW + 301, NOW));
        assert!(!fresh(NOW - 301, NOW));
        // `(now - ts).abs()` overflows for these; in release it wrapped to "fresh".
        assert!(!fresh(i64::MIN, NOW));
        assert!(!fresh(i64::MAX, NOW));
        assert!(!fresh(i64::MIN, i64::MAX));
        assert!(!fresh(i64::MAX, i64::MIN));
        assert!(fresh(i64::MIN, i64::MIN));
    }

    /// Timestamps at the window's edges and the ends of i64, with whether each is fresh at NOW.
    const WINDOW_EDGES: [(i64, bool); 6] = [
        (NOW + 300, true),
        (NOW - 300, true),
        (NOW + 301, false),
        (NOW - 301, false),
        (i64::MIN, false),
        (i64::MAX, false),
    ];

    #[test]
    fn backend_timestamps_are_fresh_within_300_seconds_and_stale_beyond() {
        for (ts, want_ok) in WINDOW_EDGES {
            let h = sign_backend(to_events(BODY), SECRET, ts);
            let got = verify_backend(Some(&h), to_events(BODY), SECRET, NOW);
            if want_ok {
                assert!(got.is_ok(), "{ts}");
            } else {
                assert_eq!(got, Err(AuthError::Stale), "{ts}");
            }
        }
    }

    #[test]
    fn webhook_timestamps_are_fresh_within_300_seconds_and_stale_beyond() {
        for (ts, want_ok) in WINDOW_EDGES {
            let t = ts.to_string();
            let sig = klaviyo_sign(BODY, &t);
            let got = verify_webhook(Some(&sig), Some(&t), BODY, WH_SECRET, NOW).map(hex::encode);
            if want_ok {
                assert_eq!(got, Ok(sig), "{ts}");
            } else {
                assert_eq!(got, Err(AuthError::Stale), "{ts}");
            }
        }
    }

    #[test]
    fn a_valid_webhook_verifies_and_returns_its_lower_case_signature() {
        let body = br#"{"data":[],"meta":{"klaviyo_webhook_id":"wh_1"}}"#;
        let sig = klaviyo_sign(body, "1795669339");
        let upper = sig.to_ascii_uppercase();
        assert_eq!(
            verify_webhook(Some(&upper), Some("1795669339"), body, WH_SECRET, NOW).map(hex::encode),
            Ok(sig)
        );
    }

    #[test]
    fn a_webhook_with_a_bad_signature_is_refused() {
        let sig = klaviyo_sign(BODY, "1795669339");
        // The timestamp is signed: another one breaks the signature.
        assert_eq!(
            verify_webhook(Some(&sig), Some("1795669340"), BODY, WH_SECRET, NOW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify_webhook(Some(&sig), Some("1795669339"), b"{}", WH_SECRET, NOW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify_webhook(Some(&sig), Some("1795669339"), BODY, "other", NOW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify_webhook(Some("00"), Some("1795669339"), BODY, WH_SECRET, NOW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify_webhook(Some("not hex"), Some("1795669339"), BODY, WH_SECRET, NOW),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn the_webhook_signature_is_checked_before_the_timestamp_is_read() {
        // A stale or unreadable timestamp on an unsigned body is a bad signature.
        assert_eq!(
            verify_webhook(Some(&"0".repeat(64)), Some("1"), BODY, WH_SECRET, NOW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify_webhook(Some(&"0".repeat(64)), Some("later"), BODY, WH_SECRET, NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn a_stale_webhook_is_refused() {
        let sig = klaviyo_sign(BODY, "1795669339");
        assert_eq!(
            verify_webhook(Some(&sig), Some("1795669339"), BODY, WH_SECRET, NOW + 301),
            Err(AuthError::Stale)
        );
    }

    #[test]
    fn a_signed_but_unreadable_webhook_timestamp_is_malformed() {
        let sig = klaviyo_sign(BODY, "later");
        assert_eq!(
            verify_webhook(Some(&sig), Some("later"), BODY, WH_SECRET, NOW),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn a_webhook_timestamp_in_milliseconds_is_read_as_seconds() {
        let ms = "1795669339123";
        let sig = klaviyo_sign(BODY, ms);
        assert_eq!(
            verify_webhook(Some(&sig), Some(ms), BODY, WH_SECRET, NOW).map(hex::encode),
            Ok(sig.clone())
        );
        assert_eq!(
            verify_webhook(Some(&sig), Some(ms), BODY, WH_SECRET, NOW + 301),
            Err(AuthError::Stale)
        );
    }

    #[test]
    fn an_iso_webhook_timestamp_is_signed_as_sent_and_read_as_a_time() {
        let iso = "2026-11-26T05:02:19Z";
        assert_eq!(time::secs_from_iso(iso), Some(NOW));
        let sig = klaviyo_sign(BODY, iso);
        assert_eq!(
            verify_webhook(Some(&sig), Some(iso), BODY, WH_SECRET, NOW).map(hex::encode),
            Ok(sig.clone())
        );
        assert_eq!(
            verify_webhook(Some(&sig), Some(iso), BODY, WH_SECRET, NOW - 301),
            Err(AuthError::Stale)
        );
    }

    #[test]
    fn a_webhook_without_its_signature_or_timestamp_is_missing() {
        let sig = klaviyo_sign(BODY, "1795669339");
        for (s, t) in [
            (None, Some("1795669339")),
            (Some(sig.as_str()), None),
            (None, None),
            (Some(""), Some("1795669339")),
            (Some(sig.as_str()), Some(" ")),
        ] {
            assert_eq!(
                verify_webhook(s, t, BODY, WH_SECRET, NOW),
                Err(AuthError::Missing)
            );
        }
    }

    #[test]
    fn error_details_never_echo_the_request() {
        let secret = "topsecretvalue";
        let h = "t=1795669339,v2=deadbeefdeadbeef";
        let Err(e) = verify_backend(Some(h), to_events(b"private body"), secret, NOW) else {
            panic!("a forged signature verified");
        };
        let text = format!("{e:?} {}", e.detail());
        for leaked in [secret, "deadbeef", "1795669339", "private body"] {
            assert!(!text.contains(leaked), "{text}");
        }
        for e in [
            AuthError::Missing,
            AuthError::Malformed,
            AuthError::Stale,
            AuthError::BadSignature,
            AuthError::Replayed,
        ] {
            assert!(!e.detail().is_empty());
        }
    }

    #[test]
    fn a_signature_made_for_one_route_is_refused_on_every_other() {
        let order = Signed {
            method: "POST",
            path: "/api/orders",
            body: BODY,
        };
        let h = sign_backend(order, SECRET, NOW);
        assert!(verify_backend(Some(&h), order, SECRET, NOW).is_ok());
        for path in [
            "/api/orders/refunded",
            "/api/events",
            "/klaviyo/api/orders",
            "/api/orders/",
        ] {
            let moved = Signed { path, ..order };
            assert_eq!(
                verify_backend(Some(&h), moved, SECRET, NOW),
                Err(AuthError::BadSignature),
                "{path}"
            );
        }
        let other_method = Signed {
            method: "PUT",
            ..order
        };
        assert_eq!(
            verify_backend(Some(&h), other_method, SECRET, NOW),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn a_version_1_signature_is_refused_as_outdated() {
        let v1 = hex_tag(SECRET.as_bytes(), &[b"1795669339.", BODY]);
        let h = format!("t=1795669339,v1={v1}");
        let e = verify_backend(Some(&h), to_events(BODY), SECRET, NOW).unwrap_err();
        assert_eq!(e, AuthError::Outdated);
        assert!(e.detail().contains("v2"), "{}", e.detail());
    }

    #[test]
    fn the_webhook_forward_is_signed_with_a_key_of_its_own_direction() {
        let fwd = sign_forward(BODY, SECRET, NOW);
        assert!(verify_forward(Some(&fwd), BODY, SECRET, NOW).is_ok());
        // A forward is no backend call, on any route.
        for path in [FORWARD_PATH, "/api/events", "/api/orders"] {
            let as_call = Signed {
                method: "POST",
                path,
                body: BODY,
            };
            assert_eq!(
                verify_backend(Some(&fwd), as_call, SECRET, NOW),
                Err(AuthError::BadSignature)
            );
        }
        // And a backend call to the same route is no forward.
        let call = sign_backend(
            Signed {
                method: "POST",
                path: FORWARD_PATH,
                body: BODY,
            },
            SECRET,
            NOW,
        );
        assert_eq!(
            verify_forward(Some(&call), BODY, SECRET, NOW),
            Err(AuthError::BadSignature)
        );
        // The derivation is the documented one.
        let key = hex_tag(SECRET.as_bytes(), &[b"klaviyo-wasm webhook forward"]);
        let tag = hex_tag(
            &hex::decode(key).unwrap_or_default(),
            &[b"1795669339\nPOST\n/webhooks/klaviyo\n", BODY],
        );
        assert_eq!(fwd, format!("t=1795669339,v2={tag}"));
    }

    #[test]
    fn the_guard_is_bounded_in_bytes() {
        let mut guard = ReplayGuard::new(1_000);
        for i in 0..5_000 {
            guard.first_use(&k(&i.to_string()), NOW);
            assert!(guard.heap_bytes() <= ReplayGuard::max_heap_bytes(1_000));
        }
    }

    #[test]
    fn a_second_use_within_the_window_is_a_replay() {
        let mut guard = ReplayGuard::new(100);
        assert!(guard.is_empty());
        assert!(guard.first_use(&k("abc"), NOW));
        assert!(!guard.first_use(&k("abc"), NOW));
        assert!(!guard.first_use(&k("abc"), NOW + 299));
        assert!(guard.first_use(&k("def"), NOW + 1));
        assert_eq!(guard.len(), 2);
    }

    #[test]
    fn a_signature_is_accepted_again_once_the_window_has_passed() {
        let mut guard = ReplayGuard::new(100);
        assert!(guard.first_use(&k("abc"), NOW));
        assert!(guard.first_use(&k("def"), NOW + 100));
        assert!(guard.first_use(&k("abc"), NOW + 300));
        // "def" is still remembered; the old "abc" entry was dropped, the new kept.
        assert_eq!(guard.len(), 2);
        assert!(!guard.first_use(&k("abc"), NOW + 301));
        assert!(!guard.first_use(&k("def"), NOW + 399));
        assert!(guard.first_use(&k("def"), NOW + 400));
    }

    #[test]
    fn expired_signatures_are_dropped_from_memory() {
        let mut guard = ReplayGuard::new(100);
        for i in 0..50 {
            assert!(guard.first_use(&k(&format!("k{i}")), NOW));
        }
        assert_eq!(guard.len(), 50);
        assert!(guard.first_use(&k("late"), NOW + 300));
        assert_eq!(guard.len(), 1);
    }

    #[test]
    fn the_guard_never_remembers_more_than_max_entries_and_forgets_the_oldest() {
        let mut guard = ReplayGuard::new(3);
        for (i, key) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
            assert!(guard.first_use(&k(key), NOW + i as i64));
            assert!(guard.len() <= 3);
        }
        assert_eq!(guard.len(), 3);
        // The newest are remembered; the oldest were forgotten and can be replayed.
        assert!(!guard.first_use(&k("e"), NOW + 5));
        assert!(!guard.first_use(&k("c"), NOW + 5));
        assert!(guard.first_use(&k("a"), NOW + 5));
        assert_eq!(guard.len(), 3);
    }

    #[test]
    fn a_guard_of_size_zero_remembers_nothing() {
        let mut guard = ReplayGuard::new(0);
        assert!(guard.first_use(&k("a"), NOW));
        assert!(guard.first_use(&k("a"), NOW));
        assert!(guard.is_empty());
    }

    #[test]
    fn the_guard_stays_bounded_when_the_clock_goes_backwards() {
        let mut guard = ReplayGuard::new(4);
        assert!(guard.first_use(&k("a"), NOW));
        // Seen "in the future": still a replay.
        assert!(!guard.first_use(&k("a"), NOW - 1000));
        assert!(guard.first_use(&k("b"), NOW - 1000));
        // "b" (accepted at NOW - 1000) is old by now but sits behind "a" in the queue.
        assert!(guard.first_use(&k("b"), NOW + 100));
        for i in 0..20 {
            guard.first_use(&k(&format!("k{i}")), NOW + 100);
            assert!(guard.len() <= 4);
            assert!(guard.order.len() <= 4);
        }
    }

    #[test]
    fn the_guard_does_constant_work_per_call_under_a_long_stream() {
        // 200,000 distinct keys, one per second, through the guard: each call
        // pops at most what it pushed, so this runs in linear time and memory stays at
        // the window's worth of entries.
        let mut guard = ReplayGuard::new(1_000);
        for i in 0..200_000_i64 {
            assert!(guard.first_use(&k(&i.to_string()), NOW + i));
            assert!(guard.order.len() <= 300);
        }
        assert_eq!(guard.len(), 300);
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Header-like strings: the parts we read, in any number and order, with junk.
        fn header_like() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "( ?(t|v1|v0|x) ?= ?[-+0-9a-fA-Fz ]{0,70} ?,?){0,4}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn fresh_matches_exact_arithmetic_for_any_pair(ts in any::<i64>(), now in any::<i64>()) {
                prop_assert_eq!(fresh(ts, now), (ts as i128 - now as i128).abs() <= 300);
            }

            #[test]
            fn fresh_matches_exact_arithmetic_near_the_window_edge(
                now in any::<i64>(),
                delta in -600_i64..=600,
            ) {
                let ts = now.wrapping_add(delta);
                prop_assert_eq!(fresh(ts, now), (ts as i128 - now as i128).abs() <= 300);
            }

            #[test]
            fn verify_backend_never_panics_on_any_header_or_body(
                header in header_like(),
                body in proptest::collection::vec(any::<u8>(), 0..256),
                now in any::<i64>(),
            ) {
                let _ = verify_backend(Some(&header), to_events(&body), SECRET, now);
                let _ = verify_webhook(Some(&header), Some(&header), &body, WH_SECRET, now);
            }

            #[test]
            fn any_body_signed_now_verifies_and_any_changed_byte_breaks_it(
                body in proptest::collection::vec(any::<u8>(), 1..256),
                secret in ".{0,100}",
                now in any::<i64>(),
                at in any::<prop::sample::Index>(),
            ) {
                let h = sign_backend(to_events(&body), &secret, now);
                prop_assert!(verify_backend(Some(&h), to_events(&body), &secret, now).is_ok());
                let mut changed = body.clone();
                let i = at.index(changed.len());
                changed[i] ^= 1;
                prop_assert_eq!(
                    verify_backend(Some(&h), to_events(&changed), &secret, now),
                    Err(AuthError::BadSignature)
                );
            }
        }
    }
}
