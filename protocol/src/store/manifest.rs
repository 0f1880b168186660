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
    /// A request scoped to a tunnel: its filter, applied by the agent to the frames inside the
    /// carrier packets `effective_filter` selects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_filter: Option<String>,
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
    /// 1.1: files carry `crc64nvme` (or `sha256`).
    const SCHEMA: Schema = Schema::V1_1;
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
    /// Lowercase hex SHA-256 of the encrypted file, recorded when it was sealed (by agents
    /// configured with `upload.checksum = "sha256"`, and by every agent before 0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// CRC-64/NVME of the encrypted file (16 lowercase hex digits), recorded when it was
    /// sealed (`upload.checksum = "crc64nvme"`, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc64nvme: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

impl ManifestFile {
    /// The checksum recorded at sealing, if any: the kind and its value.
    pub fn checksum(&self) -> Option<(Checksum, &str)> {
        match (&self.sha256, &self.crc64nvme) {
            (Some(v), _) => Some((Checksum::Sha256, v)),
            (None, Some(v)) => Some((Checksum::Crc64Nvme, v)),
            (None, None) => None,
        }
    }
}

/// The checksum a spool file gets when it is sealed, checked when it is uploaded (unless the
/// upload is a hard link) and when it is fetched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Checksum {
    /// CRC-64/NVME: catches any accidental change; S3 verifies it natively. About a tenth of a
    /// CPU cycle per byte with carry-less multiplication.
    #[default]
    Crc64Nvme,
    /// SHA-256: a cryptographic fingerprint of each file in the manifest, at about 1.5 cycles
    /// per byte more on every captured byte.
    Sha256,
}

impl Checksum {
    pub fn as_str(self) -> &'static str {
        match self {
            Checksum::Crc64Nvme => "crc64nvme",
            Checksum::Sha256 => "sha256",
        }
    }
}

/// Session counts of a capture (the records themselves are in `sessions.json.age`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCounts {
    pub total: u64,
    pub by_application: BTreeMap<String, u64>,
}
