//! The agent's heartbeat, `devices/<serial>/status.json`: what the device is, whether it may
//! capture as it sees it, and how its spool and uploads are doing. The portal lists devices
//! from it and continues a device's grant sequence above the one it reports.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::authorization::{AuthState, Period};
use crate::ids::Serial;
use crate::schema::{Document, Schema};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    #[serde(default)]
    pub schema: Schema,
    pub serial: Serial,
    #[serde(default)]
    pub name: Option<String>,
    pub agent_version: String,
    pub libpcap_version: String,
    pub authorization: HeartbeatAuthorization,
    pub captures: CaptureCounts,
    pub spool: SpoolSummary,
    pub uploads: UploadStatus,
    /// The newest incident the agent recorded.
    #[serde(default)]
    pub last_error: Option<Incident>,
    /// When the agent wrote this heartbeat.
    pub time: Timestamp,
}

impl Document for Heartbeat {
    const KIND: &'static str = "heartbeat";
    const SCHEMA: Schema = Schema::V1_0;
}

/// The authorization as the device sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAuthorization {
    pub state: AuthState,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    #[serde(default)]
    pub period: Option<Period>,
    /// The highest sequence the device has accepted: the next document must be above it.
    #[serde(default)]
    pub sequence: Option<u64>,
    /// Why the device is not authorized, or why it refused the last document.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureCounts {
    pub running: u64,
    /// Captures the agent keeps records of.
    pub total: u64,
}

/// The spool's usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolSummary {
    /// Bytes of capture files in the spool (sealed, being written, or kept after upload).
    pub capture_bytes: u64,
    /// Bytes of sealed files waiting for upload.
    pub unuploaded_bytes: u64,
    /// Bytes of the spool journal.
    pub journal_bytes: u64,
    /// The spool is full: new segments are refused until uploads free it.
    pub refusing_new_segments: bool,
}

/// What the uploader has done since the agent started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadStatus {
    pub uploaded_files: u64,
    pub uploaded_bytes: u64,
    pub failed_attempts: u64,
    /// Captures completed in the store (their manifest uploaded).
    pub manifests: u64,
    /// A failure that retrying cannot fix, until an operator acts.
    #[serde(default)]
    pub permanent_error: Option<String>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub last_upload: Option<Timestamp>,
}

/// Something that went wrong, with the part of the agent that reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub time: Timestamp,
    /// `authorization`, `config`, `capture`, `requests`, ...
    pub source: String,
    pub message: String,
}
