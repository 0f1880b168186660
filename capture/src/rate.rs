//! Rate limits: token buckets for packets per second and bytes per second, driven by packet
//! timestamps, so that the decision for each packet is exact and repeatable. Integer
//! arithmetic throughout: a bucket's level is kept in token-nanoseconds.

/// How much burst a bucket allows: this fraction of a second's worth of tokens.
const BURST_DIVISOR: u64 = 10;
const NANOS: u128 = 1_000_000_000;

/// A token bucket refilled at `rate` tokens per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u128,
    capacity: u128,
    level: u128,
    last_ns: Option<u64>,
}

impl TokenBucket {
    /// A bucket for `rate` tokens/s with a burst of a tenth of a second (at least
    /// `min_burst`). `None` for a rate of zero.
    pub fn try_new(rate: u64, min_burst: u64) -> Option<Self> {
        if rate == 0 {
            return None;
        }
        let burst = (rate / BURST_DIVISOR).max(min_burst).max(1);
        let capacity = u128::from(burst) * NANOS;
        Some(TokenBucket {
            rate: u128::from(rate),
            capacity,
            level: capacity,
            last_ns: None,
        })
    }

    fn refill(&mut self, now_ns: u64) {
        if let Some(last) = self.last_ns {
            // A timestamp going backwards adds nothing.
            let elapsed = u128::from(now_ns.saturating_sub(last));
            self.level = (self.level + elapsed * self.rate).min(self.capacity);
        }
        self.last_ns = Some(self.last_ns.map_or(now_ns, |l| l.max(now_ns)));
    }

    fn has(&self, cost: u64) -> bool {
        self.level >= u128::from(cost) * NANOS
    }

    fn take(&mut self, cost: u64) {
        self.level -= u128::from(cost) * NANOS;
    }

    /// Nanoseconds until the bucket is full again, from its last refill.
    fn until_full_ns(&self) -> u64 {
        ((self.capacity - self.level) / self.rate).min(u128::from(u64::MAX)) as u64
    }
}

/// The limits of one capture: a packet passes only if every configured bucket has room.
#[derive(Debug, Clone, Default)]
pub struct RateLimiter {
    packets: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
}

impl RateLimiter {
    /// `max_pps`/`max_bps` as configured; `snaplen` sets the least byte burst, so a full-size
    /// packet can always pass eventually.
    pub fn new(max_pps: Option<u64>, max_bps: Option<u64>, snaplen: u32) -> Self {
        RateLimiter {
            packets: max_pps.and_then(|r| TokenBucket::try_new(r, 1)),
            bytes: max_bps.and_then(|r| TokenBucket::try_new(r, u64::from(snaplen))),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.packets.is_none() && self.bytes.is_none()
    }

    /// How long until every bucket is full again (a full bucket passes at least one packet
    /// of the snaplen).
    pub fn until_full(&self) -> std::time::Duration {
        let ns = [&self.packets, &self.bytes]
            .into_iter()
            .flatten()
            .map(TokenBucket::until_full_ns)
            .max()
            .unwrap_or(0);
        std::time::Duration::from_nanos(ns)
    }

    /// Whether a packet of `bytes` captured at `ts_ns` may be written; if so, it is charged.
    pub fn allow(&mut self, ts_ns: u64, bytes: u64) -> bool {
        if let Some(b) = &mut self.packets {
            b.refill(ts_ns);
        }
        if let Some(b) = &mut self.bytes {
            b.refill(ts_ns);
        }
        let ok = self.packets.as_ref().is_none_or(|b| b.has(1))
            && self.bytes.as_ref().is_none_or(|b| b.has(bytes));
        if ok {
            if let Some(b) = &mut self.packets {
                b.take(1);
            }
            if let Some(b) = &mut self.bytes {
                b.take(bytes);
            }
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offers `pps` packets/s of `size` bytes for `secs` seconds; returns how many pass.
    fn offer(limiter: &mut RateLimiter, pps: u64, size: u64, secs: u64) -> u64 {
        let gap = 1_000_000_000 / pps;
        (0..pps * secs)
            .filter(|i| limiter.allow(1_000 + i * gap, size))
            .count() as u64
    }

    #[test]
    fn at_ten_times_the_packet_rate_the_limit_is_held_within_one_percent() {
        let mut l = RateLimiter::new(Some(1000), None, 65535);
        let passed = offer(&mut l, 10_000, 100, 10);
        // 10 s at 1000/s plus the 100-packet burst.
        assert!((10_000..=10_100).contains(&passed), "{passed}");
    }

    #[test]
    fn the_byte_rate_limit_holds_and_both_limits_combine() {
        let mut l = RateLimiter::new(None, Some(1_000_000), 1500);
        let passed = offer(&mut l, 20_000, 1000, 5);
        assert!((5_000..=5_100).contains(&passed), "{passed}");
        let mut both = RateLimiter::new(Some(100), Some(1_000_000), 1500);
        assert!(offer(&mut both, 1000, 1000, 5) <= 510);
    }

    #[test]
    fn below_the_limit_everything_passes_and_time_going_back_adds_nothing() {
        let mut l = RateLimiter::new(Some(1000), None, 65535);
        assert_eq!(offer(&mut l, 500, 100, 3), 1500);
        let mut l = RateLimiter::new(Some(10), None, 65535);
        assert!(l.allow(5_000_000_000, 1));
        let later: u64 = (0..100).filter(|_| l.allow(1_000, 1)).count() as u64;
        assert_eq!(later, 0, "nothing beyond the burst of 1 that was used");
        assert!(RateLimiter::new(None, None, 100).is_unlimited());
        assert!(TokenBucket::try_new(0, 1).is_none());
    }
}
