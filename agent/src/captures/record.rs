//! The record of each capture: what was asked, what ran, how it ended, and its segments. Kept
//! in `<state_dir>/captures/<id>.json` (atomic writes), so it survives restarts and a crashed
//! capture can be marked as such.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use pcap_capture::{Outcome, SegmentInfo, SessionsSummary};
use pcap_protocol::{CaptureId, CaptureRequest, CaptureStats, EffectiveLimits, StopReason};
pub use pcap_protocol::{CaptureState, Origin};
use serde::{Deserialize, Serialize};
use tracing::warn;
use uuid::Uuid;

use crate::fsutil::{read_limited, write_atomic};

/// Largest record file read back.
const MAX_RECORD_LEN: usize = 4 << 20;

/// One sealed segment, as the record lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentSummary {
    pub seq: u32,
    /// Bytes of the encrypted file.
    pub size: u64,
    pub packets: u64,
    pub plaintext_bytes: u64,
    pub sealed_at: Timestamp,
}

impl From<&SegmentInfo> for SegmentSummary {
    fn from(s: &SegmentInfo) -> Self {
        SegmentSummary {
            seq: s.sealed.seq,
            size: s.sealed.size,
            packets: s.packets,
            plaintext_bytes: s.sealed.plaintext_bytes,
            sealed_at: s.sealed.sealed_at,
        }
    }
}

/// What the agent knows of one capture: kept in the state directory, served by the control
/// API (`GET /v1/captures/{id}`), and the source of its manifest and its request's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureRecord {
    pub id: CaptureId,
    pub state: CaptureState,
    pub origin: Origin,
    pub request: CaptureRequest,
    pub interface: String,
    /// The filter installed: the request's, minus the agent's own traffic.
    pub effective_filter: String,
    /// A request scoped to a tunnel: its filter, applied to the frames inside the carrier
    /// packets `effective_filter` selects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_filter: Option<String>,
    pub limits: EffectiveLimits,
    pub link_type: String,
    pub grant_id: Option<Uuid>,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub stop_reason: Option<StopReason>,
    pub error: Option<String>,
    pub stats: CaptureStats,
    pub segments: Vec<SegmentSummary>,
    /// Segments that were being written when the agent died, discarded at restart.
    pub segments_lost: u64,
    /// Session counts per application (the records themselves are in `sessions.json.age`).
    #[serde(default)]
    pub sessions: Option<SessionsSummary>,
}

impl CaptureRecord {
    /// Records how the capture ended.
    pub fn end(&mut self, outcome: &Outcome) {
        self.state = if outcome.reason == StopReason::Error {
            CaptureState::Failed
        } else {
            CaptureState::Stopped
        };
        self.ended_at = Some(outcome.ended_at);
        self.stop_reason = Some(outcome.reason);
        self.error = outcome.error.clone();
        self.stats = outcome.stats;
        self.stats.segments = self.segments.len() as u64;
        self.sessions = outcome.sessions.clone();
    }
}

/// Every capture record, in memory and on disk.
#[derive(Debug)]
pub struct RecordStore {
    dir: PathBuf,
    records: BTreeMap<CaptureId, CaptureRecord>,
}

impl RecordStore {
    /// Loads the records in `<state_dir>/captures/`; an unreadable one is logged and skipped.
    pub fn open(state_dir: &Path) -> std::io::Result<Self> {
        let dir = state_dir.join("captures");
        std::fs::create_dir_all(&dir)?;
        let mut records = BTreeMap::new();
        for entry in std::fs::read_dir(&dir)?.filter_map(Result::ok) {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match read_limited(&path, MAX_RECORD_LEN)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    serde_json::from_slice::<CaptureRecord>(&b).map_err(|e| e.to_string())
                }) {
                Ok(r) => {
                    records.insert(r.id.clone(), r);
                }
                Err(e) => {
                    warn!(file = %path.display(), error = %e, "Skipping an unreadable capture record.")
                }
            }
        }
        Ok(RecordStore { dir, records })
    }

    /// Stores `record` (on disk first).
    pub fn save(&mut self, record: CaptureRecord) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(&record).unwrap_or_default();
        write_atomic(&self.dir.join(format!("{}.json", record.id)), &bytes)?;
        self.records.insert(record.id.clone(), record);
        Ok(())
    }

    pub fn get(&self, id: &CaptureId) -> Option<&CaptureRecord> {
        self.records.get(id)
    }

    /// Every record, newest first (ids are UUID v7, which sort by time).
    pub fn list(&self) -> impl Iterator<Item = &CaptureRecord> {
        self.records.values().rev()
    }

    pub fn running(&self) -> impl Iterator<Item = &CaptureRecord> {
        self.records
            .values()
            .filter(|r| r.state == CaptureState::Running)
    }
}
