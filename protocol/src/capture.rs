//! What a capture is while it runs and when it has ended, as the agent reports it in its
//! control API, its request results and the manifest in the store: state, origin, the limits it
//! ran with, its counters and why it stopped.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where a capture stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureState {
    Running,
    /// Ended by one of its stop conditions, a stop request, the authorization or a shutdown.
    Stopped,
    /// Ended by an error (or the agent died while it ran).
    Failed,
}

impl CaptureState {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureState::Running => "running",
            CaptureState::Stopped => "stopped",
            CaptureState::Failed => "failed",
        }
    }
}

/// Where a capture's request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The control socket (the host's operator).
    Local,
    /// A signed request from the store (the research team).
    Remote,
}

/// Why a capture stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Duration,
    Packets,
    Bytes,
    Stopped,
    AuthorizationEnded,
    Shutdown,
    DiskFull,
    Error,
}

impl StopReason {
    pub const ALL: [StopReason; 8] = [
        StopReason::Duration,
        StopReason::Packets,
        StopReason::Bytes,
        StopReason::Stopped,
        StopReason::AuthorizationEnded,
        StopReason::Shutdown,
        StopReason::DiskFull,
        StopReason::Error,
    ];

    /// The reason as it appears in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Duration => "duration",
            StopReason::Packets => "packets",
            StopReason::Bytes => "bytes",
            StopReason::Stopped => "stopped",
            StopReason::AuthorizationEnded => "authorization_ended",
            StopReason::Shutdown => "shutdown",
            StopReason::DiskFull => "disk_full",
            StopReason::Error => "error",
        }
    }
}

/// The limits a capture runs with: the request's, else the configured defaults, within the
/// ceilings. A duration always applies, so every capture stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveLimits {
    #[serde(with = "crate::units::duration_text")]
    pub max_duration: Duration,
    pub max_packets: Option<u64>,
    pub max_bytes: Option<u64>,
    pub snaplen: u32,
    pub max_pps: Option<u64>,
    pub max_bps: Option<u64>,
}

/// A capture's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureStats {
    /// Packets that matched the filter and reached the agent.
    pub received: u64,
    pub written: u64,
    /// Packet bytes written (captured length).
    pub bytes_written: u64,
    pub dropped_rate_limit: u64,
    /// Dropped by the kernel because the capture buffer was full (pcap_stats).
    pub dropped_kernel: u64,
    /// Dropped by the interface or its driver (pcap_stats).
    pub dropped_interface: u64,
    pub segments: u64,
}
