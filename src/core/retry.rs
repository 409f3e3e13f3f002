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
    // Up to a quarter of the backoff on top; never subtracted, so Retry-After holds.
    let spread = exp / 4 * u64::from(jitter) / u64::from(u16::MAX);
    server_ms(outcome).max(exp) + spread
}

/// The longest wait a server's `Retry-After` gets (one of days would hold the calls,
/// and with a 429 every page of the shop, that long): then one request asks again.
pub const MAX_SERVER_WAIT_MS: u64 = 3_600_000;

/// The wait the server asked for (`Retry-After`, at most [`MAX_SERVER_WAIT_MS`]; a 429
/// whose header the page cannot read gets [`UNREADABLE_429_MS`]), 0 when it asked for
/// none.
pub fn server_ms(outcome: &Outcome) -> u64 {
    let asked = match outcome {
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
    asked.min(MAX_SERVER_WAIT_MS)
}

/// `Retry-After` in seconds, from the header as received ("" when absent or hidden by
/// CORS), `now_ms` being the time the answer came. Either form of RFC 9110 §10.2.3:
/// delay-seconds, or an HTTP-date (§5.6.7), which gives the seconds from `now_ms` until
/// that date, rounded up (0 for a date already past). Capped at `u32::MAX`; anything
/// else is `None`. Surrounding whitespace is ignored.
///
/// The date is read as RFC 9110 writes it: each form exactly, names and `GMT`
/// case-sensitively (`sun, 06 nov 1994 …` and `… gmt` are `None`), every field in range
/// (`31 Feb` and `24:00:00` are `None`). The weekday must be a real one (`Sun` in
/// IMF-fixdate and asctime, `Sunday` in RFC 850) but is not checked against the date. A
/// two-digit RFC 850 year is the latest year with those digits at most 50 years after
/// `now_ms`'s year.
///
/// The edge and native builds read dates here; the browser reads them with its own `Date`
/// (js/runtime.js) and passes seconds.
pub fn retry_after_secs(header: &str, now_ms: u64) -> Option<u32> {
    let h = header.trim_ascii();
    let secs = match super::text::parse_u64(h) {
        Some(s) => s,
        // Whole seconds from the second `now_ms` is in: the date is a whole second, so
        // this is the wait rounded up. A date before 1970 is past as well.
        None => u64::try_from(http_date_secs(h.as_bytes(), now_ms)? - (now_ms / 1000) as i64)
            .unwrap_or(0),
    };
    Some(secs.min(u64::from(u32::MAX)) as u32)
}

const MONTHS: &[u8; 36] = b"JanFebMarAprMayJunJulAugSepOctNovDec";
/// RFC 850 spells the weekday out; the other forms use its first three letters.
const DAYS: [&[u8]; 7] = [
    b"Monday",
    b"Tuesday",
    b"Wednesday",
    b"Thursday",
    b"Friday",
    b"Saturday",
    b"Sunday",
];
// What follows the weekday in each form, as a pattern: `a`..`s` is a digit, copied to
// that place of `YYYY-MM-DDThh:mm:ssZ`; `~` a space or the tens digit of the day (asctime
// pads the day with a space); `*` a letter of the month name; anything else is itself.
const IMF_FIXDATE: &[u8] = b", ij *** abcd lm:op:rs GMT";
const RFC850: &[u8] = b", ij-***-cd lm:op:rs GMT";
const ASCTIME: &[u8] = b" *** ~j lm:op:rs abcd";

/// An HTTP-date in seconds since the epoch (UTC): IMF-fixdate
/// `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT` or asctime
/// `Sun Nov  6 08:49:37 1994`. One table-driven loop rewrites it as ISO 8601, which
/// [`super::time`] already checks (month, day of that month, time) and converts.
fn http_date_secs(b: &[u8], now_ms: u64) -> Option<i64> {
    // The weekday ends at the first comma or space; three letters are IMF-fixdate or
    // asctime, any other number RFC 850.
    let n = b.iter().position(|&c| c == b',' || c == b' ')?;
    let (weekday, rest) = b.split_at(n);
    if !DAYS
        .iter()
        .any(|&d| weekday == if n == 3 { &d[..3] } else { d })
    {
        return None;
    }
    let (form, month_at) = match (n, rest.first()) {
        (3, Some(b',')) => (IMF_FIXDATE, 5),
        (3, _) => (ASCTIME, 1),
        _ => (RFC850, 5),
    };
    if rest.len() != form.len() {
        return None;
    }
    let mut iso = *b"0000-00-00T00:00:00Z";
    for (&f, &c) in form.iter().zip(rest) {
        let i = match f {
            b'a'..=b's' => f - b'a',
            b'~' if c == b' ' => continue,
            b'~' => 8,
            b'*' => continue,
            _ if f == c => continue,
            _ => return None,
        };
        if !c.is_ascii_digit() {
            return None;
        }
        iso[usize::from(i)] = c;
    }
    // Every form is exact: the loop above has checked the other bytes.
    let name = rest.get(month_at..month_at + 3)?;
    let m = MONTHS.chunks_exact(3).position(|m| m == name)? as u8 + 1;
    iso[5] += m / 10;
    iso[6] += m % 10;
    if n != 3 {
        // The latest year ending in those two digits that is at most 50 years ahead (RFC
        // 9110 5.6.7). The current year is taken as 1970 + whole average Gregorian years,
        // which is off by a day at most, around New Year.
        let latest = 2020 + (now_ms / 31_556_952_000) as u32;
        let yy = u32::from(iso[2] - b'0') * 10 + u32::from(iso[3] - b'0');
        // The century's two digits (capped: past year 9999 the clock is wrong anyway).
        let c = ((latest - (latest - yy) % 100) / 100).min(99) as u8;
        iso[0] += c / 10;
        iso[1] += c % 10;
    }
    super::time::secs_from_iso_bytes(&iso)
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLES: [&str; 3] = [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    ];

    proptest! {
        #[test]
        fn never_panics_on_any_string(h in any::<String>(), now in any::<u64>()) {
            let _ = retry_after_secs(&h, now);
        }

        #[test]
        fn never_panics_on_near_dates(
            which in 0..3usize,
            at in 0..40usize,
            with in any::<char>(),
            cut in any::<bool>(),
            now in any::<u64>(),
        ) {
            // A valid date with one character replaced, or cut short there.
            let mut h: String = SAMPLES[which].chars().take(at).collect();
            if !cut {
                h.push(with);
                h.extend(SAMPLES[which].chars().skip(at + 1));
            }
            let _ = retry_after_secs(&h, now);
        }

        #[test]
        fn an_imf_fixdate_gives_the_seconds_until_it(
            secs in 0i64..253_402_300_800, // up to 9999-12-31T23:59:59Z
            now in 0u64..300_000_000_000_000,
        ) {
            // Formatted from the ISO form the core already writes and reads.
            let iso = crate::core::time::iso_from_secs(secs);
            let month = &"JanFebMarAprMayJunJulAugSepOctNovDec"
                [(iso[5..7].parse::<usize>().unwrap() - 1) * 3..][..3];
            let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
                [secs.div_euclid(86_400).rem_euclid(7) as usize];
            let h = format!("{weekday}, {} {month} {} {} GMT", &iso[8..10], &iso[..4], &iso[11..19]);
            let expected = ((secs as u64 * 1000).saturating_sub(now)).div_ceil(1000);
            prop_assert_eq!(
                retry_after_secs(&h, now),
                Some(expected.min(u64::from(u32::MAX)) as u32),
                "{}", h
            );
        }
    }
}
