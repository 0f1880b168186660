//! Spool admission: whether a new segment may start. Two things say no: the reaper's verdict
//! after its last run (the spool is over `spool.max_bytes` or its file system under
//! `spool.min_free_percent`, and only uploads can free it), and the quota itself, checked
//! against the journal each time a segment would start, so that unuploaded data stays within
//! the quota plus the segments being written, whenever the reaper last ran.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::journal::Journal;

/// Shared between the reaper (which sets it) and every capture's spool (which asks it).
#[derive(Debug, Clone)]
pub struct SpoolGate {
    refusing: Arc<AtomicBool>,
    /// Most unuploaded bytes before new segments are refused; `u64::MAX`: no such limit.
    limit: Arc<AtomicU64>,
}

impl Default for SpoolGate {
    fn default() -> Self {
        SpoolGate {
            refusing: Arc::default(),
            limit: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }
}

impl SpoolGate {
    /// Whether the reaper's last run found the spool full.
    pub fn is_refusing(&self) -> bool {
        self.refusing.load(Ordering::Acquire)
    }

    /// Why a new segment cannot start, if it cannot.
    pub fn refusal(&self, journal: Option<&Journal>) -> Option<String> {
        if self.is_refusing() {
            return Some(
                "the spool is over spool.max_bytes or under spool.min_free_percent, and only uploads can free it"
                    .to_owned(),
            );
        }
        let limit = self.limit.load(Ordering::Acquire);
        let pending = journal.map_or(0, Journal::unuploaded_bytes);
        (pending >= limit).then(|| {
            format!("{pending} bytes in the spool wait for upload, spool.max_bytes is {limit}")
        })
    }

    /// The reaper's verdict, and the limit on unuploaded bytes (`u64::MAX`: none, when the
    /// reaper makes room by dropping the oldest files instead).
    pub fn set(&self, refusing: bool, unuploaded_limit: u64) {
        self.refusing.store(refusing, Ordering::Release);
        self.limit.store(unuploaded_limit, Ordering::Release);
    }
}
