//! Doorbell rings as store reads: a ring makes the reader look at the store now, but a flood
//! of rings (from a broker that is not trusted) costs at most one read per [`MIN_RING_GAP`].

use std::time::Duration;

use pcap_doorbell::Doorbell;
use tokio::time::Instant;

/// Shortest time between two store reads caused by rings.
pub const MIN_RING_GAP: Duration = Duration::from_secs(1);

/// Rings, coalesced; see the module docs.
#[derive(Debug)]
pub struct Wake {
    doorbell: Doorbell,
    pending: bool,
    last: Option<Instant>,
}

impl Wake {
    pub fn new(doorbell: Doorbell) -> Self {
        Wake {
            doorbell,
            pending: false,
            last: None,
        }
    }

    /// Resolves when the store should be read because of a ring: at once for the first ring,
    /// then at most once per [`MIN_RING_GAP`]. Cancel-safe: a ring seen before the future
    /// is dropped is kept for the next call.
    pub async fn next(&mut self) {
        loop {
            if self.pending {
                let at = self
                    .last
                    .map_or_else(Instant::now, |last| last + MIN_RING_GAP);
                tokio::time::sleep_until(at).await;
                self.pending = false;
                self.last = Some(Instant::now());
                return;
            }
            self.doorbell.rung().await;
            self.pending = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many reads `wake` allows within `window` while `rings` rings are sent at `every`.
    async fn reads(rings: u32, every: Duration, window: Duration) -> u32 {
        let (doorbell, bell) = Doorbell::manual();
        let mut wake = Wake::new(doorbell);
        let reader = tokio::spawn(async move {
            let mut n = 0;
            let end = Instant::now() + window;
            loop {
                tokio::select! {
                    _ = wake.next() => n += 1,
                    _ = tokio::time::sleep_until(end) => return n,
                }
            }
        });
        for _ in 0..rings {
            bell.ring();
            tokio::time::sleep(every).await;
        }
        reader.await.unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_rings_is_at_most_one_read_a_second() {
        // 10,000 rings, one every millisecond, over 10 seconds, counted for 11 seconds: at
        // most one read a second means at most 12 (at 0, 1, ..., 11 s).
        let n = reads(10_000, Duration::from_millis(1), Duration::from_secs(11)).await;
        assert!((10..=12).contains(&n), "{n} reads");
    }

    #[tokio::test(start_paused = true)]
    async fn a_ring_after_a_quiet_second_is_read_at_once() {
        let (doorbell, bell) = Doorbell::manual();
        let mut wake = Wake::new(doorbell);
        bell.ring();
        let start = Instant::now();
        wake.next().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        // The next ring, half a second later, waits for the second to pass; one after that
        // is not lost while it waits.
        tokio::time::sleep(Duration::from_millis(500)).await;
        bell.ring();
        wake.next().await;
        assert_eq!(start.elapsed(), MIN_RING_GAP);
        bell.ring();
        tokio::time::timeout(Duration::from_secs(2), wake.next())
            .await
            .expect("the ring during the wait is read");
    }

    #[tokio::test(start_paused = true)]
    async fn without_rings_there_are_no_reads() {
        let (doorbell, _bell) = Doorbell::manual();
        let mut wake = Wake::new(doorbell);
        let waited = tokio::time::timeout(Duration::from_secs(3600), wake.next()).await;
        assert!(waited.is_err());
    }
}
