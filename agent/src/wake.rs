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
