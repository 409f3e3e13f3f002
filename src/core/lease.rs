//! Which tab sends, where the browser has no Web Locks: a lease in storage
//! (`<tab id> <expires ms>`), renewed by its holder every second and taken over by
//! another tab once it has expired. Two tabs may both believe they hold it for one
//! heartbeat after a race; they then send different requests or, at worst, the same
//! one twice, which Klaviyo de-duplicates by `unique_id`.

use super::text;
use super::text::push_u64;

pub const TTL_MS: u64 = 3_000;
pub const HEARTBEAT_MS: u64 = 1_000;

/// Given the stored lease, whether tab `me` holds it now and the value to write
/// (renewed or taken), if any.
pub fn decide(stored: Option<&str>, me: &str, now_ms: u64) -> (bool, Option<String>) {
    let current = stored.and_then(|v| {
        let (tab, expires) = text::cut(v, b' ')?;
        Some((tab, text::parse_u64(expires)?))
    });
    match current {
        Some((tab, expires)) if tab != me && expires > now_ms => (false, None),
        _ => {
            let mut v = String::from(me);
            v.push(' ');
            push_u64(&mut v, now_ms + TTL_MS);
            (true, Some(v))
        }
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
