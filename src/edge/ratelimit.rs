//! A per-client rate limit for the unsigned browser path of `/api/events`, for workers
//! without Cloudflare's rate-limit binding: one token bucket per client key, kept in
//! the isolate (so it is per isolate, best-effort: a busy worker runs several).

use std::collections::{HashMap, VecDeque};

use crate::core::limiter::Limiter;

/// Buckets for at most `max_clients` keys; the least recently created go first.
pub struct ClientLimits {
    per_minute: u32,
    max_clients: usize,
    buckets: HashMap<String, Limiter>,
    order: VecDeque<String>,
}

impl ClientLimits {
    pub fn new(per_minute: u32, max_clients: usize) -> ClientLimits {
        ClientLimits {
            per_minute,
            max_clients: max_clients.max(1),
            buckets: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether `client` may make one more call now (and counts it).
    pub fn allow(&mut self, client: &str, per_minute: u32, now_ms: u64) -> bool {
        if per_minute != self.per_minute {
            // The setting changed (a new config): start over.
            self.per_minute = per_minute;
            self.buckets.clear();
            self.order.clear();
        }
        if !self.buckets.contains_key(client) {
            if self.buckets.len() >= self.max_clients {
                if let Some(old) = self.order.pop_front() {
                    self.buckets.remove(&old);
                }
            }
            // A minute's allowance, up to a tenth of it at once.
            let burst = (per_minute / 10).max(1);
            self.buckets
                .insert(client.to_string(), Limiter::new(burst, per_minute));
            self.order.push_back(client.to_string());
        }
        self.buckets
            .get_mut(client)
            .is_some_and(|b| b.try_take(now_ms))
    }
}

/// Who a browser call comes from: the connecting IP as Cloudflare reports it (the
/// client cannot set `cf-connecting-ip` through Cloudflare), else the first hop of
/// `x-forwarded-for`, and the origin; "unknown" when neither says.
pub fn client_key(cf_ip: Option<&str>, forwarded: Option<&str>, origin: Option<&str>) -> String {
    let ip = cf_ip
        .or_else(|| forwarded.and_then(|f| f.split(',').next()))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown");
    let mut k = String::from(ip);
    k.push(' ');
    k.push_str(origin.unwrap_or(""));
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_gets_its_own_allowance() {
        let mut l = ClientLimits::new(60, 100);
        let allowed = (0..20).filter(|_| l.allow("a", 60, 0)).count();
        assert_eq!(allowed, 6, "a tenth of the minute at once");
        assert!(l.allow("b", 60, 0), "another client is not affected");
        assert!(!l.allow("a", 60, 10));
        assert!(l.allow("a", 60, 1_000), "tokens come back over the minute");
    }

    #[test]
    fn memory_is_bounded_by_the_number_of_clients() {
        let mut l = ClientLimits::new(60, 3);
        for c in ["a", "b", "c", "d", "e"] {
            assert!(l.allow(c, 60, 0));
        }
        assert!(l.buckets.len() <= 3);
    }

    #[test]
    fn the_client_key_prefers_cloudflares_view() {
        assert_eq!(
            client_key(Some("1.2.3.4"), Some("9.9.9.9"), Some("https://o")),
            "1.2.3.4 https://o"
        );
        assert_eq!(
            client_key(None, Some(" 5.6.7.8 , 10.0.0.1"), None),
            "5.6.7.8 "
        );
        assert_eq!(client_key(None, None, None), "unknown ");
    }
}
