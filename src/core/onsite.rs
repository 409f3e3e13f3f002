//! What Klaviyo's own onsite script (`klaviyo.js`) knows of the visitor, read from the
//! first-party cookies it keeps, so that one visitor is one profile for both scripts.
//!
//! - `__kla_id`: base64 of a JSON object. Klaviyo does not document its format, so only
//!   the fields used here are read, and anything else about it is tolerated: `cid`
//!   (its own browser id, unused), `$exchange_id` (the visitor once known: an email
//!   click, a signup form), and `$email` / `$phone_number`, which Klaviyo says the
//!   cookie may hold for 24 hours. A cookie that is missing, too long, not base64, not
//!   JSON or of another shape is ignored, never an error.
//! - `__kla_off=true`: Klaviyo's documented switch to stop tracking a visitor. While it
//!   is set, this tracker acts as if consent were denied (`client/`).
//!
//! Nothing here is ever written back: the cookies are Klaviyo's. What is read is held in
//! memory for the page (`identity.rs`), under what our own calls say.

use super::jsontext::{self as jt, Kind, ObjWriter};
use super::text;
use super::validate;

/// Longer cookie values are not Klaviyo's (browsers keep about 4 KB per cookie).
const MAX_COOKIE: usize = 4096;
/// Longer exchange ids are not Klaviyo's.
const MAX_EXCHANGE_ID: usize = 256;

/// What the onsite script's cookies say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Onsite {
    /// What its `__kla_id` names, as the profile attributes it gives: a JSON object of
    /// `_kx` (its `$exchange_id`), `email` and `phone_number` (when valid).
    pub visitor: String,
    /// `__kla_off=true`.
    pub off: bool,
}

/// Reads `document.cookie` (`name=value; name=value`). The first cookie of a name wins
/// (the browser lists the most specific path first).
pub fn read(cookies: &str) -> Onsite {
    // The first of a name wins, as browsers list the most specific cookie first.
    let cookie = |name| {
        text::parts(cookies, b';').find_map(|pair| {
            let (k, v) = text::cut(pair.strip_prefix(" ").unwrap_or(pair), b'=')?;
            (k == name).then_some(v)
        })
    };
    Onsite {
        visitor: cookie("__kla_id").map_or_else(|| String::from("{}"), visitor),
        off: cookie("__kla_off") == Some("true"),
    }
}

/// The profile attributes a `__kla_id` value names (`{}` when it cannot be read).
fn visitor(value: &str) -> String {
    let mut w = ObjWriter::new();
    let bytes = (value.len() <= MAX_COOKIE)
        .then(|| text::percent_bytes(value, false))
        .flatten()
        .and_then(base64)
        .unwrap_or_default();
    // Anything but an object has none of these fields.
    if let Some(Ok(obj)) = text::utf8(&bytes).map(jt::check) {
        for &(from, to) in &[
            ("$exchange_id", "_kx"),
            ("$email", "email"),
            ("$phone_number", "phone_number"),
        ] {
            // Plain strings only (an escape is not what the onsite script writes).
            let Some(v) =
                jt::get(&obj, from).filter(|v| jt::kind(v) == Kind::Str && !text::has(v, b'\\'))
            else {
                continue;
            };
            let inner = &v[1..v.len() - 1];
            let ok = match to {
                "_kx" => inner.len() <= MAX_EXCHANGE_ID && !text::is_blank(inner),
                "email" => validate::email(to, inner).is_ok(),
                _ => validate::phone(to, inner).is_ok(),
            };
            if ok {
                w.raw(to, v);
            }
        }
    }
    w.finish()
}

/// Base64, standard or URL-safe alphabet, padding optional (`=` is skipped), decoded
/// in place: the bytes come out shorter than they went in.
fn base64(mut b: Vec<u8>) -> Option<Vec<u8>> {
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0);
    for i in 0..b.len() {
        let c = b[i];
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            b[n] = (acc >> bits) as u8;
            n += 1;
        }
    }
    b.truncate(n);
    Some(b)
}

#[cfg(test)]
#[path = "onsite_tests.rs"]
mod tests;
