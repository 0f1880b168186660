//! The bodies of the control API: what the agent answers, and what `pcapctl` and the tests
//! read back. One type per body; nothing on either side walks JSON by hand.

use std::path::PathBuf;

use jiff::Timestamp;
use pcap_protocol::store::{Channel, Incident, SpoolSummary, UploadStatus};
use pcap_protocol::{AuthState, CaptureId, FileName, Serial};
use pcap_spool::State;
use pcap_uploader::reaper::ReapReport;
use serde::{Deserialize, Serialize};

use crate::captures::CaptureRecord;

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub serial: Serial,
    pub name: Option<String>,
    pub pid: u32,
    pub started_at: Timestamp,
    pub uptime_seconds: i64,
    pub authorization: StatusAuthorization,
    pub captures: StatusCaptures,
    /// The store URL.
    pub store: String,
    pub spool: SpoolUsage,
    pub uploads: UploadStatus,
    /// How the agent hears of grants and requests: polling, and the doorbell if configured.
    pub channel: Channel,
    /// Newest first.
    pub last_errors: Vec<Incident>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusAuthorization {
    pub state: AuthState,
    pub since: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCaptures {
    pub running: usize,
    pub total: usize,
    pub max_concurrent: usize,
    pub interfaces: Vec<String>,
}

/// The spool directory and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolUsage {
    pub dir: PathBuf,
    #[serde(flatten)]
    pub summary: SpoolSummary,
}

/// `GET /v1/spool`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spool {
    #[serde(flatten)]
    pub usage: SpoolUsage,
    /// Free space of the spool's file system, in percent.
    pub free_percent: Option<u8>,
    pub uploads: UploadStatus,
    pub last_reap: ReapReport,
    pub files: Vec<SpoolFile>,
}

/// One file the spool journal knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolFile {
    pub capture: CaptureId,
    pub name: FileName,
    pub state: State,
    pub size: u64,
    /// Seconds since it was sealed.
    pub age_seconds: Option<i64>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc64nvme: Option<String>,
    pub uploaded_at: Option<Timestamp>,
}

/// `GET /v1/captures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureList {
    /// Newest first.
    pub captures: Vec<CaptureRecord>,
}

/// `POST /v1/reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reloaded {
    pub reloaded: bool,
    pub report: ReloadReport,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    pub config: String,
    /// Settings that changed but take effect only after a restart.
    pub needs_restart: Vec<String>,
}

/// Every error answer: `{"error": {"code": "filter_invalid", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable, for scripts: a refusal code (`filter_invalid`) or an API error (`not_found`).
    pub code: String,
    /// For people: what is wrong and what to do.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<ErrorDetails>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetails {
    /// A refused config's problems, one per line.
    pub problems: Vec<String>,
}
