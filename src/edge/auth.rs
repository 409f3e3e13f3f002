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

/// How far (in seconds, either way) a signed timestamp may be from the worker's clock.
pub const WINDOW_S: u64 = 300;

/// How long [`ReplayGuard`] remembers a signature after accepting it, this second
/// included: a timestamp up to [`WINDOW_S`] ahead stays fresh through [`WINDOW_S`]
/// after it, so twice the window.
pub const KEEP_S: i64 = 2 * WINDOW_S as i64;

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

/// Signatures already accepted, each kept [`KEEP_S`] seconds (that last second
/// included), so a captured request
/// cannot be sent again while its timestamp is still fresh.
///
/// Why [`KEEP_S`] and not [`WINDOW_S`]: a timestamp is fresh within [`WINDOW_S`] either
/// way, so one signed up to [`WINDOW_S`] ahead of the clock, accepted at once, stays
/// fresh for up to `2 × WINDOW_S` after it was accepted. Keeping every tag that long
/// from its acceptance outlives any signature's freshness, and keeps the entries in
/// acceptance order, so expiry still pops from the front.
///
/// Best-effort, per isolate: each workerd isolate has its own guard, and a replay that
/// lands on another isolate (or after an isolate restart) is not caught. Memory is
/// bounded: entries are dropped [`KEEP_S`] after their acceptance, and past
/// `max_entries` the oldest are forgotten early. A forgotten signature can be replayed
/// until its timestamp goes stale; that is the trade-off for bounded memory under a
/// flood of valid requests, so size `max_entries` above the expected signed requests
/// per [`KEEP_S`].
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

    /// True, and remembers `key`, the first time; false if `key` was accepted at most
    /// [`KEEP_S`] seconds before `now_s` (a replay). A key remembered from a time
    /// after `now_s` (the clock went backwards) also counts as a replay.
    pub fn first_use(&mut self, key: &[u8; 32], now_s: i64) -> bool {
        self.expire(now_s);
        if let Some(&at) = self.seen.get(key) {
            if now_s.saturating_sub(at) <= KEEP_S {
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

    /// Forgets `key` if it was accepted at `accepted_s` (the claim a call made, by
    /// [`ReplayGuard::first_use`] at that second), so that the same call can be accepted
    /// again: only for a call refused before any of it was acted on (the shared guard
    /// unreachable, the queue taking none of it). A claim of another second (a later
    /// call's) stays. True when it was forgotten.
    pub fn release(&mut self, key: &[u8; 32], accepted_s: i64) -> bool {
        if self.seen.get(key) != Some(&accepted_s) {
            return false;
        }
        self.seen.remove(key);
        // Claimed just now, so found from the back at once, as a rule.
        if let Some(at) = self
            .order
            .iter()
            .rposition(|(at, k)| *at == accepted_s && k == key)
        {
            self.order.remove(at);
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

    /// Drops the entries, from the oldest, that are more than [`KEEP_S`] old.
    fn expire(&mut self, now_s: i64) {
        while let Some(&(at, _)) = self.order.front() {
            if now_s.saturating_sub(at) <= KEEP_S {
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
#[path = "auth_tests.rs"]
mod tests;
