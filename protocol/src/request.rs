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

/// An encapsulation a capture can be scoped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TunnelKind {
    /// VXLAN (the destination ports of `[sessions] vxlan_ports`); the id is the VNI.
    Vxlan,
    /// GENEVE (the destination ports of `[sessions] geneve_ports`); the id is the VNI.
    Geneve,
    /// GRE version 0 with a key; the id is the key.
    Gre,
}

impl TunnelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::Gre => "gre",
        }
    }

    /// The largest id of this kind (VNIs have 24 bits, GRE keys 32).
    pub fn max_id(self) -> u32 {
        match self {
            TunnelKind::Vxlan | TunnelKind::Geneve => 0x00ff_ffff,
            TunnelKind::Gre => u32::MAX,
        }
    }
}

/// The tunnel a capture is scoped to: the carrier packets of one VXLAN or GENEVE network (VNI)
/// or one GRE key. The request's filter then applies to the frame inside that tunnel, not to
/// the carrier. Written `{"kind": "vxlan", "id": 5001}`, and `vxlan:5001` on command lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelScope {
    pub kind: TunnelKind,
    pub id: u32,
}

impl TunnelScope {
    /// Whether the id fits its kind.
    pub fn check(&self) -> Result<(), String> {
        if self.id > self.kind.max_id() {
            return Err(format!(
                "tunnel id {} is too large for {}: at most {} (a VNI has 24 bits)",
                self.id,
                self.kind.as_str(),
                self.kind.max_id()
            ));
        }
        Ok(())
    }
}

impl std::fmt::Display for TunnelScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}

impl std::str::FromStr for TunnelScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?} is not a tunnel: write KIND:ID with KIND vxlan, geneve or gre (e.g. vxlan:5001, gre:42)"
            )
        };
        let (kind, id) = s.split_once(':').ok_or_else(bad)?;
        let kind = match kind.trim() {
            "vxlan" => TunnelKind::Vxlan,
            "geneve" => TunnelKind::Geneve,
            "gre" => TunnelKind::Gre,
            _ => return Err(bad()),
        };
        let id = id.trim().parse().map_err(|_| bad())?;
        let scope = TunnelScope { kind, id };
        scope.check()?;
        Ok(scope)
    }
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
    /// A BPF filter expression; empty captures everything (but the agent's own traffic). With
    /// `tunnel`, it applies to the frames inside the tunnel.
    #[serde(default)]
    pub filter: String,
    /// Capture only the carrier packets of this tunnel (schema 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelScope>,
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
    /// 1.1: `tunnel`. An agent before 1.1 refuses a request that has one (an unknown field),
    /// rather than capture the whole carrier.
    const SCHEMA: Schema = Schema::V1_1;
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
        if let Some(tunnel) = &self.tunnel {
            tunnel.check()?;
        }
        Ok(())
    }
}

/// The command-line flags of a capture request: the same spelling and help in `pcapctl
/// capture start` and `pcap-portal request`.
#[cfg(feature = "cli")]
pub mod cli {
    use std::time::Duration;

    use super::{CaptureRequest, Reason, RequestLimits, TunnelScope};
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
        /// Capture only the carrier packets of one tunnel: vxlan:VNI, geneve:VNI or gre:KEY.
        /// The filter then applies to the frames inside it (e.g. --tunnel vxlan:5001 --filter
        /// "host 10.1.2.3").
        #[arg(long, value_name = "KIND:ID")]
        pub tunnel: Option<TunnelScope>,
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
                tunnel: self.tunnel,
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
    fn a_tunnel_scope_reads_as_json_and_as_kind_colon_id() {
        let req: CaptureRequest = serde_json::from_str(
            r#"{"interface":"eth0","reason":"other","filter":"tcp port 80",
                "tunnel":{"kind":"gre","id":4294967295}}"#,
        )
        .unwrap();
        let scope = req.tunnel.unwrap();
        assert_eq!((scope.kind, scope.id), (TunnelKind::Gre, u32::MAX));
        assert!(req.check().is_ok());
        assert_eq!(
            "vxlan:5001".parse::<TunnelScope>().unwrap().to_string(),
            "vxlan:5001"
        );
        assert_eq!(
            "geneve:7".parse::<TunnelScope>().unwrap().kind,
            TunnelKind::Geneve
        );
        for bad in ["vxlan", "ipip:4", "vxlan:x", "gre:-1", "vxlan:16777216"] {
            assert!(bad.parse::<TunnelScope>().is_err(), "{bad}");
        }
        let unknown = serde_json::from_str::<CaptureRequest>(
            r#"{"interface":"eth0","reason":"other","tunnel":{"kind":"vxlan","id":1,"port":4789}}"#,
        );
        assert!(unknown.is_err());
    }

    #[test]
    fn interface_names_and_ids_are_checked() {
        let req: CaptureRequest =
            serde_json::from_str(r#"{"interface":"../../etc","reason":"other"}"#).unwrap();
        assert!(req.check().is_err());
        let big_vni: CaptureRequest = serde_json::from_str(
            r#"{"interface":"eth0","reason":"other","tunnel":{"kind":"vxlan","id":16777216}}"#,
        )
        .unwrap();
        assert!(big_vni.check().unwrap_err().contains("24 bits"));
        let bad_id = serde_json::from_str::<CaptureRequest>(
            r#"{"interface":"eth0","reason":"other","request_id":"../x"}"#,
        );
        assert!(bad_id.unwrap_err().to_string().contains("request id"));
    }
}
