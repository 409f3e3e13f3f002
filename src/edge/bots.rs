//! Bots on the storefront: crawlers and monitors that run the shop's JavaScript fill the
//! queue with `Active on Site` and `Viewed Product` events that spend Klaviyo's rate
//! limits and skew segments. A `/client` call is a bot's when its user agent matches an
//! entry of `bots.txt` (data, one test per entry), or when Cloudflare's bot score (Bot
//! Management, where the request carries one) is below `BOT_SCORE_MIN`. The worker then
//! answers 202, as Klaviyo would, and sends nothing on. Decided from the head alone.

/// The patterns of `bots.txt`, lower-case: a user agent containing one is a bot's.
const LIST: &str = include_str!("bots.txt");

/// Why a call counts as a bot's (the `x-klaviyo-edge-bot` answer header says it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bot {
    UserAgent,
    Score,
}

impl Bot {
    pub fn name(self) -> &'static str {
        match self {
            Bot::UserAgent => "user-agent",
            Bot::Score => "score",
        }
    }
}

/// Each entry of the list: (pattern, a user agent it matches).
pub fn entries() -> impl Iterator<Item = (&'static str, &'static str)> {
    LIST.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
}

/// Whether a call with this user agent and bot score (1 to 99) is a bot's; `score_min`
/// `None`: scores are not used.
pub fn check(user_agent: Option<&str>, score: Option<u8>, score_min: Option<u8>) -> Option<Bot> {
    if matches!((score, score_min), (Some(s), Some(min)) if s < min) {
        return Some(Bot::Score);
    }
    let ua = user_agent?.as_bytes();
    patterns()
        .iter()
        .any(|pattern| contains_ignoring_case(ua, pattern.as_bytes()))
        .then_some(Bot::UserAgent)
}

/// The patterns of the list, read from its text once per isolate rather than on every
/// `/client` call.
fn patterns() -> &'static [&'static str] {
    static PATTERNS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    PATTERNS.get_or_init(|| entries().map(|(pattern, _)| pattern).collect())
}

/// Whether `hay` holds `needle` (lower-case ASCII), letter case ignored. A plain scan:
/// `str::contains` builds a searcher per pattern, which costs more than the search on a
/// user agent's hundred-odd bytes, and this runs on every `/client` call.
fn contains_ignoring_case(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    hay.len() >= needle.len()
        && (0..=hay.len() - needle.len()).any(|i| {
            hay[i].to_ascii_lowercase() == first
                && hay[i + 1..i + needle.len()]
                    .iter()
                    .zip(rest)
                    .all(|(h, n)| h.to_ascii_lowercase() == *n)
        })
}

#[cfg(test)]
#[path = "bots_tests.rs"]
mod tests;
