//! Capture requests: what to capture, why, and within which limits. A local request comes over
//! the control socket unsigned; a remote one (from the research team, through the store) is
//! the same document in a signed envelope.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::{Serial, check_id};
use crate::units::{Size, TextDuration};

/// Longest accepted request id, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 64;
/// Longest accepted subject, in characters.
pub const MAX_SUBJECT_LEN: usize = 256;
/// Longest interface name Linux allows (IFNAMSIZ - 1).
pub const MAX_INTERFACE_LEN: usize = 15;

/// Why the research team wants the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    UnknownDevice,
    UnknownApplication,
    Other,
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
    /// The requester's id for this request (required for remote requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
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

impl CaptureRequest {
    /// Checks the fields that need no knowledge of the agent: ids, lengths, characters. The
    /// agent then checks interface, filter and limits against its config.
    pub fn check(&self) -> Result<(), String> {
        if let Some(id) = &self.request_id {
            check_id(id, MAX_REQUEST_ID_LEN).map_err(|e| format!("request_id {id:?} {e}"))?;
        }
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
        let mut req: CaptureRequest =
            serde_json::from_str(r#"{"interface":"../../etc","reason":"other"}"#).unwrap();
        assert!(req.check().is_err());
        req.interface = "eth0".into();
        req.request_id = Some("../x".into());
        assert!(req.check().is_err());
    }
}
