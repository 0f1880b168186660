//! The upload bandwidth cap: a token bucket in bytes per second shared by every upload, so
//! uploads do not crowd the host's link.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// At most `rate` bytes per second, with a burst of one second's worth.
#[derive(Debug)]
pub struct Bandwidth {
    rate: Option<u64>,
    state: Mutex<(f64, Instant)>,
}

impl Bandwidth {
    /// `None`: no cap.
    pub fn new(rate: Option<u64>) -> Self {
        let burst = rate.unwrap_or(0) as f64;
        Bandwidth {
            rate: rate.filter(|r| *r > 0),
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits until `bytes` may be sent.
    pub async fn take(&self, bytes: u64) {
        let Some(rate) = self.rate else {
            return;
        };
        let wait = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let refill = now.duration_since(s.1).as_secs_f64() * rate as f64;
            s.0 = (s.0 + refill).min(rate as f64);
            s.1 = now;
            s.0 -= bytes as f64;
            if s.0 >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-s.0 / rate as f64)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_cap_holds_over_time() {
        let b = Bandwidth::new(Some(1_000_000));
        let start = Instant::now();
        for _ in 0..50 {
            b.take(100_000).await;
        }
        // 5 MB at 1 MB/s with a 1 MB burst: 4 s.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(3990) && took <= Duration::from_millis(4100),
            "{took:?}"
        );
        let free = Bandwidth::new(None);
        let start = Instant::now();
        free.take(u64::MAX).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
