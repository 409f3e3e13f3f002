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
    assert!(retry_after_secs("Wednesday, 01-Jan-76 00:00:00 GMT", now).unwrap() > 1_500_000_000);
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
