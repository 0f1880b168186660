//! Wall-clock time, injectable. Grants are about calendar time, so the authorization state
//! machine asks a [`Clock`]; tests use [`TokioClock`], which follows tokio's (pausable) time.

use std::fmt::Debug;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

/// A source of the current wall-clock time.
pub trait Clock: Send + Sync + Debug {
    fn now(&self) -> Timestamp;
}

/// The system's real-time clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A wall clock that starts at `base` and advances with tokio's clock, so that
/// `tokio::time::pause()` and `advance()` move it too.
#[derive(Debug, Clone)]
pub struct TokioClock {
    base: Timestamp,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(base: Timestamp) -> Arc<Self> {
        Arc::new(TokioClock {
            base,
            start: tokio::time::Instant::now(),
        })
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.start.elapsed()).unwrap_or(SignedDuration::MAX);
        self.base.saturating_add(elapsed).unwrap_or(Timestamp::MAX)
    }
}

/// `interval` with up to ±10% jitter, so that a fleet does not poll the store in step.
pub fn jittered(interval: std::time::Duration) -> std::time::Duration {
    let mut byte = [0u8; 1];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte);
    // Whole milliseconds: the timer's resolution.
    let ms = interval.as_millis() as f64 * (0.9 + f64::from(byte[0]) / 255.0 * 0.2);
    std::time::Duration::from_millis(ms as u64)
}
