//! Which answers are retried, and how long to wait before the next attempt.
//!
//! Retry network errors, timeouts, 408, 429 and every 5xx; every other 4xx is permanent.
//! Wait `max(Retry-After, min(base * 2^attempt, cap))` plus jitter, so a fleet of
//! browsers coming back online does not hit Klaviyo in lock-step.

/// What the adapter saw when it sent a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer. `retry_after_s` is `None` when the header is absent or, for a
    /// cross-origin answer, not exposed to the page.
    Status {
        status: u16,
        retry_after_s: Option<u32>,
        body: String,
    },
    /// No answer at all: offline, DNS, connection dropped, timeout, CORS failure.
    Network,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Klaviyo refused the body: sending it again would fail again.
    Rejected,
    Retry,
}

pub fn verdict(outcome: &Outcome) -> Verdict {
    match outcome {
        Outcome::Network => Verdict::Retry,
        Outcome::Status { status, .. } => match status {
            200..=299 => Verdict::Delivered,
            408 | 429 | 500..=599 => Verdict::Retry,
            _ => Verdict::Rejected,
        },
    }
}

pub const BASE_MS: u64 = 1_000;
pub const CAP_MS: u64 = 300_000;
/// A 429 whose `Retry-After` the page cannot read (not exposed by CORS) waits at least this.
pub const UNREADABLE_429_MS: u64 = 10_000;

/// Delay before attempt `attempt + 1`, given the answer to attempt `attempt` (0-based)
/// and `jitter` in `0..=u16::MAX` from the injected random source.
pub fn delay_ms(attempt: u32, outcome: &Outcome, jitter: u16) -> u64 {
    let exp = BASE_MS.saturating_mul(1u64 << attempt.min(20)).min(CAP_MS);
    let server = match outcome {
        Outcome::Status {
            status: 429,
            retry_after_s: None,
            ..
        } => UNREADABLE_429_MS,
        Outcome::Status {
            retry_after_s: Some(s),
            ..
        } => u64::from(*s) * 1000,
        _ => 0,
    };
    // Up to a quarter of the backoff on top; never subtracted, so Retry-After holds.
    let spread = exp / 4 * u64::from(jitter) / u64::from(u16::MAX);
    server.max(exp) + spread
}

/// `Retry-After` in seconds, from the header as received ("" when absent or hidden by
/// CORS). The delay-seconds form; an HTTP-date counts as absent.
pub fn retry_after_secs(header: &str, _now_ms: u64) -> Option<u32> {
    super::text::parse_u64(header.trim_ascii()).map(|s| s.min(u64::from(u32::MAX)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, retry_after_s: Option<u32>) -> Outcome {
        Outcome::Status {
            status,
            retry_after_s,
            body: String::new(),
        }
    }

    #[test]
    fn classifies_answers() {
        assert_eq!(verdict(&status(202, None)), Verdict::Delivered);
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(verdict(&status(s, None)), Verdict::Retry, "{s}");
        }
        for s in [400, 401, 403, 404, 409, 413, 422] {
            assert_eq!(verdict(&status(s, None)), Verdict::Rejected, "{s}");
        }
        assert_eq!(verdict(&Outcome::Network), Verdict::Retry);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let n = Outcome::Network;
        assert_eq!(delay_ms(0, &n, 0), 1_000);
        assert_eq!(delay_ms(1, &n, 0), 2_000);
        assert_eq!(delay_ms(8, &n, 0), 256_000);
        assert_eq!(delay_ms(9, &n, 0), 300_000);
        assert_eq!(delay_ms(60, &n, 0), 300_000);
    }

    #[test]
    fn jitter_adds_at_most_a_quarter() {
        let n = Outcome::Network;
        assert_eq!(delay_ms(2, &n, u16::MAX), 5_000);
        assert!(delay_ms(2, &n, 1000) > 4_000);
    }

    #[test]
    fn retry_after_wins_when_longer_and_an_unreadable_429_waits_10_s() {
        assert_eq!(delay_ms(0, &status(429, Some(3)), 0), 3_000);
        assert_eq!(delay_ms(0, &status(503, Some(120)), 0), 120_000);
        assert_eq!(delay_ms(5, &status(429, Some(3)), 0), 32_000);
        assert_eq!(delay_ms(0, &status(429, None), 0), 10_000);
        assert!(delay_ms(0, &status(429, Some(3)), u16::MAX) >= 3_000);
    }
}
