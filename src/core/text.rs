//! Two tiny text helpers used across the core instead of `str::parse` and substring
//! search: each generic `parse::<T>` and the two-way searcher behind `str::find(&str)`
//! add their own code to the wasm, and these inputs are short.

/// A non-negative decimal integer (digits only, no sign), `None` on overflow.
pub fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |n, b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// An optionally signed decimal integer.
pub fn parse_i64(s: &str) -> Option<i64> {
    match s.strip_prefix('-') {
        Some(rest) => parse_u64(rest)
            .and_then(|n| i64::try_from(n).ok())
            .map(|n| -n),
        None => parse_u64(s.strip_prefix('+').unwrap_or(s)).and_then(|n| i64::try_from(n).ok()),
    }
}

/// Byte offset of the first `needle` in `hay` (naive search: our texts are small).
pub fn find(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return Some(0);
    }
    h.windows(n.len()).position(|w| w == n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_integers_and_refuses_the_rest() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64("18446744073709551616"), None);
        for bad in ["", "-1", "1.5", " 1", "1e3", "+"] {
            assert_eq!(parse_u64(bad), None, "{bad}");
        }
        assert_eq!(parse_i64("-42"), Some(-42));
        assert_eq!(parse_i64("+7"), Some(7));
        assert_eq!(parse_i64("-"), None);
    }

    #[test]
    fn finds_substrings() {
        assert_eq!(find("a:::b", ":::"), Some(1));
        assert_eq!(find("abc", "d"), None);
        assert_eq!(find("ab", "abc"), None);
        assert_eq!(find("x", ""), Some(0));
    }
}
