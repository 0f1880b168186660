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
    /// How the device hears of new documents (from schema 1.1; absent from older agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
}

impl Heartbeat {
    /// Whether `other` says the same as this heartbeat in what an administrator or the portal
    /// acts on (everything but the time and the byte and file counters, which change with
    /// every upload and are refreshed on the heartbeat interval).
    pub fn same_state(&self, other: &Heartbeat) -> bool {
        fn key(h: &Heartbeat) -> impl PartialEq + '_ {
            (
                (
                    &h.name,
                    &h.agent_version,
                    &h.libpcap_version,
                    &h.authorization,
                ),
                (h.captures, h.spool.refusing_new_segments),
                (&h.uploads.permanent_error, &h.last_error, &h.channel),
            )
        }
        key(self) == key(other)
    }
}

/// How the device hears of new grants and requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// The agent takes capture requests from the store (its config has `[requests]`).
    pub requests: bool,
    /// Seconds between two reads of the store while no doorbell rings (as of now).
    pub poll_interval_seconds: u64,
    /// Longest time between two heartbeats; a device silent for several is not running.
    pub heartbeat_interval_seconds: u64,
    /// The doorbell, if the agent has one configured.
    #[serde(default)]
    pub doorbell: Option<DoorbellReport>,
}

/// The doorbell's connection as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorbellReport {
    /// The broker (`mqtts://host:port`).
    pub broker: String,
    pub state: DoorbellState,
    /// Since when it is in this state.
    pub since: Timestamp,
    /// Why it is not connected, if it is not.
    #[serde(default)]
    pub error: Option<String>,
}

/// Where the doorbell's connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorbellState {
    /// Connecting for the first time.
    Connecting,
    /// Subscribed to the device's topic: the store is read when it rings.
    Connected,
    /// Not connected (broker down, refused, unreachable): the agent polls the store at its
    /// short interval until it reconnects.
    Down,
}

impl DoorbellState {
    pub fn as_str(self) -> &'static str {
        match self {
            DoorbellState::Connecting => "connecting",
            DoorbellState::Connected => "connected",
            DoorbellState::Down => "down",
        }
    }
}

impl Document for Heartbeat {
    const KIND: &'static str = "heartbeat";
    const SCHEMA: Schema = Schema::V1_1;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn beat() -> Heartbeat {
        Heartbeat {
            schema: Heartbeat::SCHEMA,
            serial: Serial::parse("PA-1").unwrap(),
            name: None,
            agent_version: "0.1.0".to_owned(),
            libpcap_version: "libpcap version 1.10.3".to_owned(),
            authorization: HeartbeatAuthorization {
                state: AuthState::Authorized,
                expires_at: None,
                period: None,
                sequence: Some(1),
                reason: None,
            },
            captures: CaptureCounts::default(),
            spool: SpoolSummary::default(),
            uploads: UploadStatus::default(),
            last_error: None,
            time: Timestamp::UNIX_EPOCH,
            channel: None,
        }
    }

    #[test]
    fn the_state_ignores_time_and_counters_but_not_what_the_portal_acts_on() {
        let a = beat();
        let mut b = beat();
        b.time = Timestamp::now();
        b.spool.capture_bytes = 1 << 20;
        b.uploads.uploaded_files = 3;
        assert!(a.same_state(&b));
        b.authorization.state = AuthState::Revoked;
        assert!(!a.same_state(&b));
        let mut c = beat();
        c.captures.running = 1;
        assert!(!a.same_state(&c));
        let mut d = beat();
        d.channel = Some(Channel {
            requests: true,
            poll_interval_seconds: 30,
            heartbeat_interval_seconds: 30,
            doorbell: None,
        });
        assert!(!a.same_state(&d));
    }

    #[test]
    fn a_heartbeat_of_schema_1_0_without_a_channel_still_reads() {
        let mut text = String::from_utf8(crate::schema::encode(&beat())).unwrap();
        text = text.replace("\"schema\": \"1.1\"", "\"schema\": \"1.0\"");
        assert!(text.contains("\"1.0\""), "{text}");
        let read: Heartbeat = crate::schema::decode(text.as_bytes()).unwrap();
        assert!(read.channel.is_none());
    }
}
