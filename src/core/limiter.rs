//! Client-side rate limits: Klaviyo's published burst (per second) and steady (per
//! minute) limits for each `/client` endpoint, as two token buckets. Staying inside
//! them avoids 429s instead of reacting to them.

/// Two token buckets; both must have a token for a request to go.
#[derive(Clone, Debug)]
pub struct Limiter {
    burst: Bucket,
    steady: Bucket,
}

#[derive(Clone, Debug)]
struct Bucket {
    capacity: u32,
    period_ms: u64,
    /// Tokens scaled by `period_ms`, so refill is exact integer arithmetic.
    level: u64,
    at_ms: u64,
}

impl Bucket {
    fn new(capacity: u32, period_ms: u64) -> Bucket {
        Bucket {
            capacity,
            period_ms,
            level: u64::from(capacity) * period_ms,
            at_ms: 0,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let full = u64::from(self.capacity) * self.period_ms;
        let gained = now_ms.saturating_sub(self.at_ms) * u64::from(self.capacity);
        self.level = (self.level + gained).min(full);
        self.at_ms = self.at_ms.max(now_ms);
    }

    /// When one whole token is available (never before the last use).
    fn ready_at(&self, now_ms: u64) -> u64 {
        let now_ms = now_ms.max(self.at_ms);
        let mut b = self.clone();
        b.refill(now_ms);
        if b.level >= self.period_ms {
            now_ms
        } else {
            let missing = self.period_ms - b.level;
            now_ms + missing.div_ceil(u64::from(self.capacity.max(1)))
        }
    }
}

impl Limiter {
    /// `burst` requests per second and `steady` per minute.
    pub fn new(burst: u32, steady: u32) -> Limiter {
        Limiter {
            burst: Bucket::new(burst, 1_000),
            steady: Bucket::new(steady, 60_000),
        }
    }

    pub fn ready_at(&self, now_ms: u64) -> u64 {
        self.burst
            .ready_at(now_ms)
            .max(self.steady.ready_at(now_ms))
    }

    /// Takes a token from both buckets if both have one.
    pub fn try_take(&mut self, now_ms: u64) -> bool {
        if self.ready_at(now_ms) > now_ms {
            return false;
        }
        for b in [&mut self.burst, &mut self.steady] {
            b.refill(now_ms);
            b.level -= b.period_ms;
        }
        true
    }
}

#[cfg(test)]
#[path = "limiter_tests.rs"]
mod tests;
