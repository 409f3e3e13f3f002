//! Tiny text helpers used across the core instead of `str::parse`, substring search
//! and char patterns: each generic `parse::<T>`, the two-way searcher behind
//! `str::find(&str)` and the char searcher behind `split(',')`, `split_once(' ')` or
//! `contains('\\')` add their own code to the wasm, and these inputs are short. Every
//! separator we cut at is ASCII, so a byte search finds exactly what the char search
//! would (no byte of a multi-byte UTF-8 character is ASCII) and both halves stay whole.

/// A non-negative decimal integer (digits only, no sign), `None` on overflow.
pub fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    // `n * 10 + d` fits exactly when `n <= (MAX - d) / 10`: checked arithmetic's
    // answer without its 128-bit multiply on wasm32.
    s.bytes().try_fold(0u64, |n, b| {
        let d = u64::from(b.wrapping_sub(b'0'));
        (d <= 9 && n <= (u64::MAX - d) / 10).then(|| n * 10 + d)
    })
}

/// An optionally signed decimal integer.
pub fn parse_i64(s: &str) -> Option<i64> {
    match s.strip_prefix("-") {
        Some(rest) => parse_u64(rest)
            .and_then(|n| i64::try_from(n).ok())
            .map(|n| -n),
        None => parse_u64(s.strip_prefix("+").unwrap_or(s)).and_then(|n| i64::try_from(n).ok()),
    }
}

/// `s` cut at its first `b` (an ASCII byte), without it: `str::split_once` for ASCII.
pub fn cut(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|c| c == b)?;
    Some((&s[..i], &s[i + 1..]))
}

/// The parts of `s` between its `b`s (an ASCII byte): `str::split` for ASCII.
pub fn parts(s: &str, b: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let s = rest?;
        Some(match cut(s, b) {
            Some((part, tail)) => {
                rest = Some(tail);
                part
            }
            None => {
                rest = None;
                s
            }
        })
    })
}

/// Whether `s` holds the byte `b` (ASCII): `str::contains` for ASCII.
pub fn has(s: &str, b: u8) -> bool {
    s.bytes().any(|c| c == b)
}

/// Byte offset of the first `needle` in `hay` (naive search: our texts are small).
pub fn find(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return Some(0);
    }
    h.windows(n.len()).position(|w| w == n)
}

/// Appends `n` in decimal (no `format!`: keeps formatting code out of the wasm).
pub fn push_u64(out: &mut String, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    // u64 division by 10 needs a 128-bit multiply on wasm32 (a libcall): take nine
    // digits at a time and divide those as u32.
    let mut rest = n;
    loop {
        let mut chunk = (rest % 1_000_000_000) as u32;
        rest /= 1_000_000_000;
        let start = i.saturating_sub(9); // a lower chunk keeps all nine digits
        loop {
            i -= 1;
            buf[i] = b'0' + (chunk % 10) as u8;
            chunk /= 10;
            if chunk == 0 && (rest == 0 || i == start) {
                break;
            }
        }
        if rest == 0 {
            break;
        }
    }
    // ASCII digits: whole, not one char (and its UTF-8 encoding) at a time.
    out.push_str(utf8(&buf[i..]).unwrap_or_default());
}

/// `b` as text when it is well-formed UTF-8 (RFC 3629), as `str::from_utf8` says. std's
/// check reads a word at a time and is 0.6 KB of wasm; these inputs are short.
pub fn utf8(b: &[u8]) -> Option<&str> {
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        // How many continuation bytes follow, and the range of the first: the ranges
        // refuse overlong forms, surrogates and anything past U+10FFFF.
        let (n, lo, hi) = match c {
            0x00..=0x7F => (0, 0, 0),
            0xC2..=0xDF => (1, 0x80, 0xBF),
            0xE0 => (2, 0xA0, 0xBF),
            0xED => (2, 0x80, 0x9F),
            0xE1..=0xEF => (2, 0x80, 0xBF),
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            0xF4 => (3, 0x80, 0x8F),
            _ => return None,
        };
        for k in 1..=n {
            let (lo, hi) = if k == 1 { (lo, hi) } else { (0x80, 0xBF) };
            match b.get(i + k) {
                Some(&x) if (lo..=hi).contains(&x) => {}
                _ => return None,
            }
        }
        i += n + 1;
    }
    // SAFETY: every byte sequence of `b` was checked above to be well-formed UTF-8.
    Some(unsafe { std::str::from_utf8_unchecked(b) })
}

/// [`utf8`] of owned bytes, without a copy.
pub fn utf8_string(b: Vec<u8>) -> Option<String> {
    utf8(&b)?;
    // SAFETY: `utf8` has just checked these bytes.
    Some(unsafe { String::from_utf8_unchecked(b) })
}

/// Appends `n` in decimal, with its sign.
pub fn push_i64(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_u64(out, n.unsigned_abs());
}

/// The value of `name` in a URL query string (`?a=1&_kx=...`), percent-decoded.
pub fn query_param(search: &str, name: &str) -> Option<String> {
    let search = search.strip_prefix("?").unwrap_or(search);
    parts(search, b'&').find_map(|pair| {
        let (k, v) = cut(pair, b'=').unwrap_or((pair, ""));
        (percent_decode(k, true)? == name)
            .then(|| percent_decode(v, true))
            .flatten()
    })
}

/// Percent-decoding: `%XX` is a byte, and `+` a space when `plus_is_space` (a query
/// string, `application/x-www-form-urlencoded`; a cookie keeps its `+`). `None` for a
/// broken escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    utf8_string(percent_bytes(s, plus_is_space)?)
}

/// [`percent_decode`] without the UTF-8 check: the bytes.
pub fn percent_bytes(s: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => {
                // Two hex digits exactly (`from_str_radix` would also take "+1").
                let hi = hex_digit(*b.get(i + 1)?)?;
                let lo = hex_digit(*b.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The length of the space or control character starting at byte `i` of `b`, if that
/// is what it is: ASCII whitespace and controls, C1 controls, and Unicode's other
/// spaces (the `White_Space` set), matched on their UTF-8 bytes (no Unicode tables).
fn blank_at(b: &[u8], i: usize) -> Option<usize> {
    // Past the end reads as 0, which no multi-byte pattern below matches.
    let at = |k: usize| b.get(i + k).copied().unwrap_or(0);
    match (at(0), at(1), at(2)) {
        (0..=0x20 | 0x7F, ..) => Some(1),
        (0xC2, 0x80..=0xA0, _) => Some(2),
        (0xE1, 0x9A, 0x80) | (0xE3, 0x80, 0x80) => Some(3),
        (0xE2, 0x80, 0x80..=0x8A | 0xA8 | 0xA9 | 0xAF) => Some(3),
        (0xE2, 0x81, 0x9F) => Some(3),
        _ => None,
    }
}

/// Whether `s` holds nothing but spaces and control characters (or nothing).
pub fn is_blank(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match blank_at(b, i) {
            Some(n) => i += n,
            None => return false,
        }
    }
    true
}

/// Whether `s` holds any space or control character.
pub fn has_blank(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len()).any(|i| blank_at(b, i).is_some())
}

/// Whether `s` holds a control character (C0, DEL or C1).
pub fn has_control(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len()).any(|i| {
        matches!(
            (b[i], b.get(i + 1)),
            (0..=0x1F | 0x7F, _) | (0xC2, Some(0x80..=0x9F))
        )
    })
}

/// The number of characters (not bytes) of `s`.
pub fn char_count(s: &str) -> usize {
    s.bytes().filter(|b| b & 0xC0 != 0x80).count()
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
