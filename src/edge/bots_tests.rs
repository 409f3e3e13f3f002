use super::*;

/// Browsers people shop with: none may be taken for a bot.
const BROWSERS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/440.0]",
    "Mozilla/5.0 (Linux; Android 12; Cubot KingKong) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
];

#[test]
fn every_entry_matches_its_user_agent_and_is_lower_case() {
    let mut n = 0;
    for (pattern, example) in entries() {
        assert_eq!(pattern, pattern.to_ascii_lowercase(), "{pattern}");
        assert!(!pattern.trim().is_empty() && pattern == pattern.trim());
        assert_eq!(
            check(Some(example), None, Some(30)),
            Some(Bot::UserAgent),
            "{pattern}: {example}"
        );
        // In any letter case.
        assert_eq!(
            check(Some(&example.to_ascii_uppercase()), None, Some(30)),
            Some(Bot::UserAgent)
        );
        n += 1;
    }
    assert!(n >= 40, "{n} entries");
}

#[test]
fn the_scan_finds_what_str_contains_finds() {
    for (hay, needle) in [
        ("GoogleBot/2.1", "googlebot"),
        ("xx", "xxx"),
        ("abc", ""),
        ("", "a"),
        ("aaab", "aab"),
        ("ÉgoogleBOT", "googlebot"),
    ] {
        assert_eq!(
            contains_ignoring_case(hay.as_bytes(), needle.as_bytes()),
            hay.to_ascii_lowercase().contains(needle),
            "{hay} {needle}"
        );
    }
}

#[test]
fn no_browser_is_a_bot() {
    for ua in BROWSERS {
        assert_eq!(check(Some(ua), None, Some(30)), None, "{ua}");
        assert_eq!(
            check(Some(ua), Some(30), Some(30)),
            None,
            "a score at the bar passes"
        );
    }
    assert_eq!(check(None, None, Some(30)), None);
}

#[test]
fn a_bot_score_below_the_bar_is_a_bot_whatever_its_user_agent() {
    assert_eq!(
        check(Some(BROWSERS[0]), Some(29), Some(30)),
        Some(Bot::Score)
    );
    assert_eq!(check(None, Some(1), Some(30)), Some(Bot::Score));
    assert_eq!(check(Some(BROWSERS[0]), Some(99), Some(30)), None);
    assert_eq!(
        check(Some(BROWSERS[0]), Some(1), Some(0)),
        None,
        "none is below 0"
    );
    assert_eq!(
        check(Some(BROWSERS[0]), Some(1), None),
        None,
        "unset: scores not used"
    );
}
