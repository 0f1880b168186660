//! Capture requests: what to capture, why, and within which limits. A local request comes over
//! the control socket unsigned; a remote one (from the research team, through the store) is
//! the same document in a signed envelope.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::{RequestId, Serial};
use crate::schema::{Document, Schema};
use crate::units::{Size, TextDuration};
/// Longest accepted subject, in characters.
pub const MAX_SUBJECT_LEN: usize = 256;
/// Longest interface name Linux allows (IFNAMSIZ - 1).
pub const MAX_INTERFACE_LEN: usize = 15;

/// Why the capture is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[cfg_attr(feature = "cli", value(rename_all = "snake_case"))]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A device nobody can name appeared on the network.
    UnknownDevice,
    /// A known device speaks an application nobody can name.
    UnknownApplication,
    /// Anything else (say what in the subject).
    Other,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::UnknownDevice => "unknown_device",
            Reason::UnknownApplication => "unknown_application",
            Reason::Other => "other",
        }
    }
}

/// Limits a request asks for; each missing one takes the agent's configured default, and none
/// may exceed the agent's ceiling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<TextDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_packets: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<Size>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snaplen: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bps: Option<Size>,
}

/// A request to capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    #[serde(default)]
    pub schema: Schema,
    /// The requester's id for this request (required for remote requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    /// The device the request is for (required for remote requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<Serial>,
    pub interface: String,
    /// A BPF filter expression; empty captures everything (but the agent's own traffic).
    #[serde(default)]
    pub filter: String,
    pub reason: Reason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default)]
    pub limits: RequestLimits,
    /// The request may not start after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Timestamp>,
}

impl Document for CaptureRequest {
    const KIND: &'static str = "capture request";
    const SCHEMA: Schema = Schema::V1_0;
}

impl CaptureRequest {
    /// Checks the fields that need no knowledge of the agent: lengths, characters (ids are
    /// checked when they are parsed). The agent then checks interface, filter and limits
    /// against its config.
    pub fn check(&self) -> Result<(), String> {
        let iface = &self.interface;
        if iface.is_empty()
            || iface.len() > MAX_INTERFACE_LEN
            || !iface
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b':'))
        {
            return Err(format!(
                "interface {:?} is not an interface name (1 to {MAX_INTERFACE_LEN} letters, digits, '.', '_', '-', '@', ':')",
                iface.chars().take(40).collect::<String>()
            ));
        }
        if let Some(subject) = &self.subject
            && (subject.chars().count() > MAX_SUBJECT_LEN || subject.chars().any(char::is_control))
        {
            return Err(format!(
                "subject must be at most {MAX_SUBJECT_LEN} printable characters"
            ));
        }
        Ok(())
    }
}

/// The command-line flags of a capture request: the same spelling and help in `pcapctl
/// capture start` and `pcap-portal request`.
#[cfg(feature = "cli")]
pub mod cli {
    use std::time::Duration;

    use super::{CaptureRequest, Reason, RequestLimits};
    use crate::schema::Document;
    use crate::units::{Size, TextDuration, parse_duration, parse_size};

    /// What to capture, why, and within which limits. A limit left out takes the device's
    /// configured default; none may exceed the device's ceiling.
    #[derive(Debug, Clone, clap::Args)]
    pub struct CaptureFlags {
        /// The interface to capture on; it must be in the device's capture.interfaces.
        #[arg(long)]
        pub interface: String,
        /// A BPF filter in libpcap's syntax (e.g. "host 10.1.2.3 and tcp"); empty captures
        /// everything but the agent's own traffic.
        #[arg(long, default_value = "")]
        pub filter: String,
        /// Why the capture is wanted.
        #[arg(long, value_enum, default_value_t = Reason::Other)]
        pub reason: Reason,
        /// What is being looked at, in a few words (at most 256 characters).
        #[arg(long)]
        pub subject: Option<String>,
        /// Stop after this long (e.g. 90s, 10m, 1h 30m).
        #[arg(long, value_parser = parse_duration)]
        pub duration: Option<Duration>,
        /// Stop after this many packets are written.
        #[arg(long)]
        pub packets: Option<u64>,
        /// Stop after this many packet bytes are written (e.g. 100MiB).
        #[arg(long, value_parser = parse_size)]
        pub bytes: Option<u64>,
        /// Bytes kept of each packet (at most 262144).
        #[arg(long)]
        pub snaplen: Option<u32>,
        /// Write at most this many packets per second; the rest are counted, not written.
        #[arg(long)]
        pub max_pps: Option<u64>,
        /// Write at most this many bytes per second (e.g. 10MiB); the rest are counted, not
        /// written.
        #[arg(long, value_parser = parse_size)]
        pub max_bps: Option<u64>,
    }

    impl CaptureFlags {
        /// The request these flags ask for (without id, serial or validity: a local request).
        pub fn request(&self) -> CaptureRequest {
            CaptureRequest {
                schema: <CaptureRequest as Document>::SCHEMA,
                request_id: None,
                serial: None,
                interface: self.interface.clone(),
                filter: self.filter.clone(),
                reason: self.reason,
                subject: self.subject.clone(),
                limits: RequestLimits {
                    max_duration: self.duration.map(TextDuration),
                    max_packets: self.packets,
                    max_bytes: self.bytes.map(Size),
                    snaplen: self.snaplen,
                    max_pps: self.max_pps,
                    max_bps: self.max_bps.map(Size),
                },
                not_after: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_parses_with_text_limits_and_refuses_unknown_fields() {
        let req: CaptureRequest = serde_json::from_str(
            r#"{"interface": "eth0", "filter": "host 10.1.2.3", "reason": "unknown_device",
                "limits": {"max_duration": "60s", "max_bytes": "100MiB", "max_packets": 10}}"#,
        )
        .unwrap();
        assert_eq!(req.limits.max_bytes, Some(Size(100 * 1024 * 1024)));
        assert!(req.check().is_ok());
        let unknown = serde_json::from_str::<CaptureRequest>(
            r#"{"interface":"eth0","reason":"other","colour":1}"#,
        );
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
        let bad_reason =
            serde_json::from_str::<CaptureRequest>(r#"{"interface":"eth0","reason":"curiosity"}"#);
        assert!(bad_reason.is_err());
    }

    #[test]
    fn interface_names_and_ids_are_checked() {
        let req: CaptureRequest =
            serde_json::from_str(r#"{"interface":"../../etc","reason":"other"}"#).unwrap();
        assert!(req.check().is_err());
        let bad_id = serde_json::from_str::<CaptureRequest>(
            r#"{"interface":"eth0","reason":"other","request_id":"../x"}"#,
        );
        assert!(bad_id.unwrap_err().to_string().contains("request id"));
    }
}
