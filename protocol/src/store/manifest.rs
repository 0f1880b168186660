//! A capture's manifest, `captures/<serial>/<capture_id>/manifest.json`, uploaded after every
//! other file of the capture: its presence in the store means the capture is complete. It says
//! what was asked and what ran, and lists every file with its state, size and the SHA-256
//! recorded when it was sealed. It holds no packet content and no session field (only counts
//! per application).
//!
//! The agent writes the manifest's base (everything but `files` and `completed_at`) into the
//! spool when the capture ends; the uploader completes it from the journal when every other
//! file has settled.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::capture::{CaptureState, CaptureStats, EffectiveLimits, Origin, StopReason};
use crate::ids::{CaptureId, FileName, Serial};
use crate::request::CaptureRequest;
use crate::schema::{Document, Schema};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(default)]
    pub schema: Schema,
    pub capture_id: CaptureId,
    pub serial: Serial,
    #[serde(default)]
    pub device_name: Option<String>,
    pub agent_version: String,
    pub origin: Origin,
    pub request: CaptureRequest,
    /// The grant the capture ran under.
    #[serde(default)]
    pub grant_id: Option<Uuid>,
    pub interface: String,
    /// The filter installed: the request's, minus the agent's own traffic.
    pub effective_filter: String,
    pub limits: EffectiveLimits,
    pub link_type: String,
    pub started_at: Timestamp,
    #[serde(default)]
    pub ended_at: Option<Timestamp>,
    pub state: CaptureState,
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    #[serde(default)]
    pub error: Option<String>,
    pub stats: CaptureStats,
    /// The sealed segments, in order.
    pub segments: Vec<ManifestSegment>,
    /// Segments being written when the agent died, discarded at its restart.
    pub segments_lost: u64,
    #[serde(default)]
    pub sessions: Option<SessionCounts>,
    /// Every file of the capture and what became of it (set by the uploader).
    #[serde(default)]
    pub files: Vec<ManifestFile>,
    /// When the uploader completed the manifest.
    #[serde(default)]
    pub completed_at: Option<Timestamp>,
}

impl Document for Manifest {
    const KIND: &'static str = "manifest";
    const SCHEMA: Schema = Schema::V1_0;
}

impl Manifest {
    /// The files that reached the store.
    pub fn uploaded(&self) -> impl Iterator<Item = &ManifestFile> {
        self.files.iter().filter(|f| f.state == FileState::Uploaded)
    }

    /// The files lost on the device, never uploaded.
    pub fn lost(&self) -> impl Iterator<Item = &ManifestFile> {
        self.files.iter().filter(|f| f.state == FileState::Lost)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSegment {
    pub seq: u32,
    pub name: FileName,
    pub packets: u64,
    /// Bytes of the pcap inside the encrypted file.
    pub plaintext_bytes: u64,
}

/// What became of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// In the store, as sealed.
    Uploaded,
    /// Gone before it was uploaded (`reason` says how).
    Lost,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub name: FileName,
    pub state: FileState,
    /// Bytes of the encrypted file.
    pub size: u64,
    /// Lowercase hex SHA-256 of the encrypted file, recorded when it was sealed.
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Session counts of a capture (the records themselves are in `sessions.json.age`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCounts {
    pub total: u64,
    pub by_application: BTreeMap<String, u64>,
}
