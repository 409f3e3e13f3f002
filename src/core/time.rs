//! Event time: UTC seconds <-> ISO 8601, without a date library.
//!
//! Klaviyo truncates `time` to the second and accepts 1990 up to one year ahead.
//! The core never reads a clock: callers pass `now_ms`.

/// 1990-01-01T00:00:00Z, the earliest time Klaviyo accepts.
pub const MIN_TIME_S: i64 = 631_152_000;
/// Klaviyo accepts times up to one year in the future.
pub const MAX_AHEAD_S: i64 = 366 * 86_400;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian), for years 0..=9999.
fn days_from_civil(y: u32, m: u32, d: u32) -> i64 {
    // One 400-year era later, so that the year before year 0 (for January and February,
    // counted with the year before) is no negative number: all unsigned.
    let y = y + 400 - u32::from(m <= 2);
    let (era, yoe) = (y / 400, y % 400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i64::from(era * 146_097 + doe) - 719_468 - 146_097
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn push_2(out: &mut String, v: u32) {
    out.push((b'0' + (v / 10 % 10) as u8) as char);
    out.push((b'0' + (v % 10) as u8) as char);
}

/// `2026-11-26T05:02:19Z` for a time in seconds since the epoch (years 0..=9999).
pub fn iso_from_secs(secs: i64) -> String {
    let mut out = String::with_capacity(20);
    push_iso(&mut out, secs);
    out
}

/// Appends [`iso_from_secs`] of `secs` to `out`.
pub fn push_iso(out: &mut String, secs: i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    let y = y.clamp(0, 9999) as u32;
    push_2(out, y / 100);
    push_2(out, y % 100);
    out.push('-');
    push_2(out, m);
    out.push('-');
    push_2(out, d);
    out.push('T');
    push_2(out, rem / 3600);
    out.push(':');
    push_2(out, rem / 60 % 60);
    out.push(':');
    push_2(out, rem % 60);
    out.push('Z');
}

/// Parses `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS[.fff]](Z|+HH:MM|-HH:MM|+HHMM)` into
/// UTC seconds (fractions truncated). A date-time without an offset is refused: its
/// meaning would depend on the visitor's time zone.
pub fn secs_from_iso(s: &str) -> Option<i64> {
    secs_from_iso_bytes(s.as_bytes())
}

/// [`secs_from_iso`] for a date-time alone: a date without a time is refused (it would
/// be midnight UTC, the evening before west of Greenwich).
pub fn secs_from_iso_date_time(s: &str) -> Option<i64> {
    secs_from_iso(s).filter(|_| s.len() > "YYYY-MM-DD".len())
}

/// [`secs_from_iso`] of ASCII bytes.
pub(crate) fn secs_from_iso_bytes(b: &[u8]) -> Option<i64> {
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        let mut v = 0u32;
        for &c in part {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    let [_, _, _, _, b'-', _, _, b'-', _, _, time @ ..] = b else {
        return None;
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
        return None;
    }
    let day = days_from_civil(y, mo, d) * 86_400;
    match time {
        [] => return Some(day),
        [b'T' | b't' | b' ', _, _, b':', ..] => {}
        _ => return None,
    }
    let (h, mi) = (num(11, 2)?, num(14, 2)?);
    let mut i = 16;
    let mut sec = 0;
    if b.get(i) == Some(&b':') {
        sec = num(17, 2)?;
        i = 19;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return None;
            }
        }
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let local = day + i64::from(h * 3600 + mi * 60 + sec.min(59));
    match b.get(i..)? {
        [b'Z' | b'z'] => Some(local),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            // `+HH:MM` or `+HHMM`, and nothing after it.
            let colon = usize::from(rest.get(2) == Some(&b':'));
            if rest.len() != 4 + colon {
                return None;
            }
            let (oh, om) = (num(i + 1, 2)?, num(i + 3 + colon, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = i64::from(oh * 3600 + om * 60);
            Some(if *sign == b'+' {
                local - off
            } else {
                local + off
            })
        }
        _ => None,
    }
}

fn days_in_month(y: u32, m: u32) -> u32 {
    if m == 2 {
        28 + u32::from((y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400))
    } else {
        // 31 for odd months up to July and even ones from August on.
        30 | ((m ^ (m >> 3)) & 1)
    }
}

#[cfg(test)]
#[path = "time_tests.rs"]
mod tests;
