//! The session side of a live capture: the flow table fed with every packet the capture
//! receives whole, and the session records written, encrypted, to `sessions.json.age` in the
//! capture's spool directory (JSON lines) as sessions finish, sealed when the capture ends.

// Sessions are large; boxed, they move as pointers when the table grows, sorts and hands
// them over.
#![allow(clippy::vec_box)]

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use pcap_config::Sharing;
use pcap_protocol::CaptureId;
use pcap_spool::{SealedSegment, SegmentWriter, Spool, SpoolError};
use serde::Serialize;
use tracing::warn;

use crate::session::{
    RecordContext, Session, SessionTable, UserMapFile, count_by_application, record,
};

/// How a capture's sessions are recorded.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// The config's `[sessions]`: the table's bounds, tunnels, the user map, the virtual
    /// systems map (its `vni:N`, `gre:N` keys for sessions inside tunnels).
    pub settings: pcap_config::Sessions,
    /// The sharing switches, read each time records are written: a reload applies to what
    /// leaves the host from then on, also from captures already running.
    pub sharing: SharedSharing,
    /// The virtual system of the capture's interface.
    pub virtual_system: Option<String>,
}

/// Sharing switches that the agent updates on reload while captures read them.
pub type SharedSharing = Arc<RwLock<Sharing>>;

/// What the capture's record shows of its sessions: counts only, never field values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SessionsSummary {
    pub total: u64,
    /// Sessions recorded before the end because they went idle or the table was full.
    pub evicted: u64,
    pub by_application: BTreeMap<String, u64>,
    /// IP fragments whose datagram never came whole (not in any session).
    #[serde(default)]
    pub fragments_given_up: u64,
    /// Sessions whose inspection stopped early, and sessions recorded early, because the flow
    /// table reached `[sessions] max_bytes`.
    #[serde(default)]
    pub inspection_stopped: u64,
    #[serde(default)]
    pub evicted_memory: u64,
    /// Size of the sealed `sessions.json.age`.
    pub file_size: Option<u64>,
    pub error: Option<String>,
}

/// The flow table and its output.
#[derive(Debug)]
pub struct Recorder {
    table: SessionTable,
    spec: SessionSpec,
    users: Option<UserMapFile>,
    spool: Spool,
    capture_id: CaptureId,
    file: Option<SegmentWriter>,
    summary: SessionsSummary,
}

impl Recorder {
    pub fn new(spec: SessionSpec, spool: Spool, capture_id: &CaptureId) -> Self {
        Recorder {
            table: SessionTable::configured(&spec.settings),
            users: spec.settings.users.as_deref().map(UserMapFile::new),
            spec,
            spool,
            capture_id: capture_id.clone(),
            file: None,
            summary: SessionsSummary::default(),
        }
    }

    /// Accounts one captured frame.
    pub fn packet(&mut self, linktype: u32, ts_ns: u64, data: &[u8], wire_len: u32) {
        self.table.packet(linktype, ts_ns, data, wire_len);
    }

    /// Writes the records of sessions that left the table.
    pub fn flush(&mut self) {
        self.note_memory_pressure();
        let finished = self.table.take_finished();
        if !finished.is_empty() {
            self.summary.evicted += finished.len() as u64;
            self.write(&finished);
        }
    }

    /// Says once, when the flow table first reaches its memory budget, what that costs and
    /// what to do; the summary counts it from then on.
    fn note_memory_pressure(&mut self) {
        let stats = &self.table.stats;
        if self.summary.inspection_stopped == 0
            && self.summary.evicted_memory == 0
            && (stats.inspection_stopped > 0 || stats.evicted_memory > 0)
        {
            tracing::warn!(
                capture = %self.capture_id,
                max_bytes = self.spec.settings.max_bytes,
                "the capture's sessions reached [sessions] max_bytes: the sessions longest \
                 without a packet stop being inspected (their fields may be incomplete), then \
                 leave the table early; raise max_bytes or narrow the capture's filter"
            );
        }
        self.summary.inspection_stopped = stats.inspection_stopped;
        self.summary.evicted_memory = stats.evicted_memory;
    }

    /// Writes every remaining session and seals the file.
    pub fn finish(mut self) -> (SessionsSummary, Option<SealedSegment>) {
        self.flush();
        self.table.end_fragments();
        self.summary.fragments_given_up = self.table.stats.reassembly.fragments_given_up;
        let rest =
            std::mem::replace(&mut self.table, SessionTable::new(1, Duration::ZERO)).finish();
        self.write(&rest);
        let sealed = match self.file.take() {
            Some(f) => match f.seal() {
                Ok(s) => Some(s),
                Err(e) => {
                    self.fail(e);
                    None
                }
            },
            None => self.empty_file(),
        };
        self.summary.file_size = sealed.as_ref().map(|s| s.size);
        (self.summary, sealed)
    }

    /// A capture without sessions still leaves a (empty) records file.
    fn empty_file(&mut self) -> Option<SealedSegment> {
        if self.summary.error.is_some() {
            return None;
        }
        match self
            .spool
            .create_sessions(&self.capture_id)
            .and_then(SegmentWriter::seal)
        {
            Ok(s) => Some(s),
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn write(&mut self, sessions: &[Box<Session>]) {
        count_by_application(sessions, &mut self.summary.by_application);
        self.summary.total += sessions.len() as u64;
        if self.summary.error.is_some() {
            return;
        }
        let users = self.users.as_mut().map(|u| u.refresh().clone());
        let sharing = *self.spec.sharing.read().unwrap_or_else(|p| p.into_inner());
        let ctx = RecordContext {
            sharing: &sharing,
            virtual_system: self.spec.virtual_system.as_deref(),
            virtual_systems: Some(&self.spec.settings.virtual_systems),
            users: users.as_ref(),
            community_id_seed: self.spec.settings.community_id_seed,
        };
        let mut text = Vec::with_capacity(sessions.len() * 256);
        for s in sessions {
            record(s, &ctx).write_json(&mut text);
            text.push(b'\n');
        }
        let result = match &mut self.file {
            Some(f) => f.write_all(&text),
            None => self
                .spool
                .create_sessions(&self.capture_id)
                .and_then(|mut f| f.write_all(&text).map(|()| f))
                .map(|f| self.file = Some(f)),
        };
        if let Err(e) = result {
            self.fail(e);
        }
    }

    fn fail(&mut self, e: SpoolError) {
        warn!(capture = %self.capture_id, error = %e, "Cannot write the session records.");
        if let Some(f) = self.file.take() {
            f.abandon();
        }
        self.summary.error = Some(e.to_string());
    }
}
