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

    // 1994-11-06T08:49:37Z, the RFC's example date.
    const RFC_S: u64 = 784_111_777;
    const IMF: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const RFC850: &str = "Sunday, 06-Nov-94 08:49:37 GMT";
    const ASCTIME: &str = "Sun Nov  6 08:49:37 1994";

    #[test]
    fn retry_after_reads_delay_seconds() {
        assert_eq!(retry_after_secs("120", 0), Some(120));
        assert_eq!(retry_after_secs("0", 5_000), Some(0));
        assert_eq!(retry_after_secs(" 7\t", 0), Some(7));
        assert_eq!(retry_after_secs("99999999999", 0), Some(u32::MAX));
        assert_eq!(retry_after_secs("99999999999999999999999", 0), None);
        for bad in ["", "  ", "-1", "+1", "1.5", "1e3", "12 s", "١٢"] {
            assert_eq!(retry_after_secs(bad, 0), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_reads_each_http_date_form() {
        let now = (RFC_S - 90) * 1000;
        assert_eq!(retry_after_secs(IMF, now), Some(90));
        assert_eq!(retry_after_secs(RFC850, now), Some(90));
        assert_eq!(retry_after_secs(ASCTIME, now), Some(90));
        // Two-digit days in asctime, other weekdays and months.
        let at = RFC_S + 10 * 86_400; // Wed, 16 Nov 1994
        assert_eq!(
            retry_after_secs("Wed Nov 16 08:49:37 1994", now),
            Some(90 + 10 * 86_400)
        );
        assert_eq!(
            retry_after_secs("Wednesday, 16-Nov-94 08:49:37 GMT", now),
            Some((at - RFC_S + 90) as u32)
        );
        // Python: calendar.timegm((1994, 12, 1, 0, 0, 0)) - 784111777 + 90
        assert_eq!(
            retry_after_secs("Thu, 01 Dec 1994 00:00:00 GMT", now),
            Some(2_128_313)
        );
        // Leap days exist in leap years only; a leap second counts as :59.
        assert!(retry_after_secs("Thu, 29 Feb 1996 00:00:00 GMT", now).is_some());
        assert_eq!(
            retry_after_secs("Sun, 06 Nov 1994 08:49:60 GMT", now),
            Some(112)
        );
    }

    #[test]
    fn retry_after_rounds_up_and_a_past_date_is_zero() {
        let at_ms = RFC_S * 1000;
        assert_eq!(retry_after_secs(IMF, at_ms - 1), Some(1));
        assert_eq!(retry_after_secs(IMF, at_ms - 1_001), Some(2));
        assert_eq!(retry_after_secs(IMF, at_ms - 1_000), Some(1));
        assert_eq!(retry_after_secs(IMF, at_ms), Some(0));
        assert_eq!(retry_after_secs(IMF, at_ms + 1), Some(0));
        assert_eq!(retry_after_secs(IMF, 1_795_669_339_000), Some(0));
        assert_eq!(
            retry_after_secs("Mon, 01 Jan 0001 00:00:00 GMT", 0),
            Some(0)
        );
        assert_eq!(retry_after_secs(IMF, u64::MAX), Some(0));
    }

    #[test]
    fn retry_after_caps_a_far_future_date() {
        assert_eq!(
            retry_after_secs("Fri, 31 Dec 9999 23:59:59 GMT", 0),
            Some(u32::MAX)
        );
        // 2106-02-07T06:28:15Z is u32::MAX seconds after the epoch; a second later is capped.
        assert_eq!(
            retry_after_secs("Sun, 07 Feb 2106 06:28:15 GMT", 0),
            Some(u32::MAX)
        );
        assert_eq!(
            retry_after_secs("Sun, 07 Feb 2106 06:28:14 GMT", 0),
            Some(u32::MAX - 1)
        );
        assert_eq!(
            retry_after_secs("Sun, 07 Feb 2106 06:28:16 GMT", 0),
            Some(u32::MAX)
        );
    }

    #[test]
    fn retry_after_reads_two_digit_years_within_50_years_ahead() {
        // 2026-11-26T05:02:19Z
        let now = 1_795_669_339_000;
        // 94 -> 1994 (2094 is more than 50 years ahead): past.
        assert_eq!(retry_after_secs(RFC850, now), Some(0));
        // 27 -> 2027: 2027-01-01 is 35 days and 18:57:41 ahead.
        assert_eq!(
            retry_after_secs("Friday, 01-Jan-27 00:00:00 GMT", now),
            Some(3_092_261)
        );
        // 76 -> 2076 (50 years ahead, not more); 77 -> 1977.
        assert!(
            retry_after_secs("Wednesday, 01-Jan-76 00:00:00 GMT", now).unwrap() > 1_500_000_000
        );
        assert_eq!(
            retry_after_secs("Saturday, 01-Jan-77 00:00:00 GMT", now),
            Some(0)
        );
    }

    #[test]
    fn retry_after_ignores_surrounding_whitespace() {
        let now = (RFC_S - 90) * 1000;
        for h in [
            " Sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT  ",
            "\t Sunday, 06-Nov-94 08:49:37 GMT \t",
            "  Sun Nov  6 08:49:37 1994 ",
        ] {
            assert_eq!(retry_after_secs(h, now), Some(90), "{h:?}");
        }
    }

    #[test]
    fn retry_after_refuses_other_cases_like_the_rfc() {
        // RFC 9110 5.6.7: "HTTP-date is case sensitive".
        let now = (RFC_S - 90) * 1000;
        for h in [
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun, 06 NOV 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 gmt",
            "sun, 06 Nov 1994 08:49:37 GMT",
            "SUN, 06 Nov 1994 08:49:37 GMT",
            "sunday, 06-Nov-94 08:49:37 GMT",
            "Sunday, 06-nov-94 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 Gmt",
            "Sun nov  6 08:49:37 1994",
        ] {
            assert_eq!(retry_after_secs(h, now), None, "{h:?}");
        }
    }

    #[test]
    fn retry_after_needs_a_real_weekday_but_not_the_right_one() {
        let now = (RFC_S - 90) * 1000;
        // The weekday is not checked against the date (6 Nov 1994 was a Sunday).
        for h in [
            "Mon, 06 Nov 1994 08:49:37 GMT",
            "Wednesday, 06-Nov-94 08:49:37 GMT",
            "Thu Nov  6 08:49:37 1994",
        ] {
            assert_eq!(retry_after_secs(h, now), Some(90), "{h:?}");
        }
        for h in [
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "S0n, 06 Nov 1994 08:49:37 GMT",
            "Su, 06 Nov 1994 08:49:37 GMT",
            "Sund, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Sundae, 06-Nov-94 08:49:37 GMT",
            "Someday, 06-Nov-94 08:49:37 GMT",
            "MondayTuesday, 06-Nov-94 08:49:37 GMT",
            "Sunday Nov  6 08:49:37 1994",
            "Jan, 06 Nov 1994 08:49:37 GMT",
            "\u{e9}t\u{e9}, 06 Nov 1994 08:49:37 GMT",
            ", 06-Nov-94 08:49:37 GMT",
        ] {
            assert_eq!(retry_after_secs(h, now), None, "{h:?}");
        }
    }

    #[test]
    fn retry_after_refuses_garbage() {
        let now = (RFC_S - 90) * 1000;
        for h in [
            "soon",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37 +0000",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun,  6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06-Nov-1994 08:49:37 GMT",
            "Sun 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMTx",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 1995 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06 Nov 19-4 08:49:37 GMT",
            "Sun, 06 N\u{f6}v 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GM\u{e9}",
            "Sun, 06 Nov 1994\u{a0}08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
            "Sun,, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT\0",
            "Sunday, 06-Nov-94 08:49:37",
            "Sunday,06-Nov-94 08:49:37 GMT ",
            "Sunday, 06-Nov-9x 08:49:37 GMT",
            ",",
            "Sun Nov 6 08:49:37 1994",
            "Sun Nov  6 08:49:37 94",
            "Sun Nov 06 08:49:37 1994 GMT",
            "Sun Nov  0 08:49:37 1994",
            "Sun Nov 0  08:49:37 1994",
            "Sun  Nov 6 08:49:37 1994",
        ] {
            assert_eq!(retry_after_secs(h, now), None, "{h:?}");
        }
    }
}

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
