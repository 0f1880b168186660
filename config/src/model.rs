//! The typed, checked config. Everything here has passed validation: sizes and durations are
//! parsed, defaults applied, and defaults lie within their ceilings.

use std::path::PathBuf;
use std::time::Duration;

use pcap_protocol::Serial;

use crate::units::Principal;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub device: Device,
    pub authorization: Authorization,
    /// Remote capture requests; `None` when no request key is configured (local requests only).
    pub requests: Option<Requests>,
    /// The MQTT doorbell that tells the agent to read the store now; `None`: polling only.
    pub doorbell: Option<Doorbell>,
    pub upload: Upload,
    pub control: Control,
    pub paths: Paths,
    pub spool: SpoolPolicy,
    pub capture: Capture,
    pub sharing: Sharing,
    pub sessions: Sessions,
    pub logging: Logging,
}

/// Session extraction: the flow table's bounds and the maps that name users and virtual
/// systems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sessions {
    /// Most sessions a capture's flow table holds; the oldest are recorded and evicted beyond.
    pub max: usize,
    /// Most bytes a capture's sessions hold (their state, values, and inspection buffers);
    /// beyond it the sessions longest without a packet stop being inspected, then leave.
    pub max_bytes: u64,
    /// A session idle this long is recorded and leaves the table.
    pub idle_timeout: Duration,
    /// The IP-to-user map file (`address user` per line), re-read when it changes.
    pub users: Option<PathBuf>,
    /// Interface name to virtual system name.
    pub virtual_systems: std::collections::BTreeMap<String, String>,
    /// Which sessions tunnelled traffic gives.
    pub tunnels: TunnelSettings,
    /// Values one session keeps per list (URLs, file names, users, recipients); more are
    /// counted as dropped.
    pub max_values: usize,
    /// Bytes one value keeps at most (a longer one is cut).
    pub max_value_bytes: usize,
    /// The seed of the records' Community IDs (0, the standard's default; another value only
    /// to match sensors configured with it).
    pub community_id_seed: u16,
}

impl Sessions {
    /// `max` when the config says nothing.
    pub const DEFAULT_MAX: usize = 100_000;
    /// `max_bytes` when the config says nothing.
    pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
    /// `idle_timeout` when the config says nothing.
    pub const DEFAULT_IDLE: Duration = Duration::from_secs(120);
    pub const DEFAULT_MAX_VALUES: usize = 64;
    pub const DEFAULT_MAX_VALUE_BYTES: usize = 4096;
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            max: Self::DEFAULT_MAX,
            max_bytes: Self::DEFAULT_MAX_BYTES,
            idle_timeout: Self::DEFAULT_IDLE,
            users: None,
            virtual_systems: Default::default(),
            tunnels: TunnelSettings::default(),
            max_values: Self::DEFAULT_MAX_VALUES,
            max_value_bytes: Self::DEFAULT_MAX_VALUE_BYTES,
            community_id_seed: 0,
        }
    }
}

/// The sessions of tunnelled and mirrored traffic (VXLAN, GENEVE, GRE, ERSPAN, MPLS, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelSettings {
    pub mode: TunnelMode,
    /// Encapsulation layers taken off at most.
    pub max_depth: u8,
    /// UDP destination ports of VXLAN and GENEVE.
    pub vxlan_ports: Vec<u16>,
    pub geneve_ports: Vec<u16>,
}

impl Default for TunnelSettings {
    fn default() -> Self {
        TunnelSettings {
            mode: TunnelMode::Inner,
            max_depth: 4,
            vxlan_ports: vec![4789],
            geneve_ports: vec![6081],
        }
    }
}

/// Sessions of the packets inside a recognised tunnel (`inner`, the default), of the carrier
/// only (`outer`: no decapsulation), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelMode {
    Inner,
    Outer,
    Both,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub serial: Serial,
    pub name: Option<String>,
}

/// Where the signed grant comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantSource {
    /// A local file holding the signed grant (watched for changes).
    File(PathBuf),
    /// `devices/<serial>/grant.json` in the store, polled every `poll_interval`.
    Store,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub source: GrantSource,
    pub verify_keys: Vec<PathBuf>,
    pub poll_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requests {
    pub verify_keys: Vec<PathBuf>,
    pub poll_interval: Duration,
}

/// The doorbell: an MQTT broker the portal publishes to after it writes a grant, a
/// revocation or a request. The broker is not trusted: a message only makes the agent read the
/// store, where everything is verified as without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doorbell {
    pub broker: BrokerUrl,
    /// A 0600 TOML file with `username` and `password`.
    pub credentials_file: Option<PathBuf>,
    /// PEM certificates to trust for the broker (else the system's roots).
    pub ca_bundle: Option<PathBuf>,
    /// How often the store is read while the doorbell is connected: a safety net. While it is
    /// not, `authorization.poll_interval` and `requests.poll_interval` apply.
    pub poll_interval: Duration,
    /// Longest time between heartbeats while the doorbell is connected; a heartbeat whose
    /// state changed is written at once.
    pub heartbeat_interval: Duration,
}

/// `mqtts://host[:port]` (TLS, port 8883 by default), or `mqtt://` to a loopback address only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl std::str::FromStr for BrokerUrl {
    type Err = String;
    fn from_str(url: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{url:?} is not a broker URL; use \"mqtts://host:8883\" (or \"mqtt://127.0.0.1:1883\" on this host only)"
            )
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let (tls, default) = match scheme {
            "mqtts" => (true, 8883),
            "mqtt" => (false, 1883),
            _ => return Err(bad()),
        };
        let (host, port) = crate::units::host_port(rest, default).ok_or_else(bad)?;
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !tls && !loopback {
            return Err(format!(
                "{url:?} would send the broker password in clear over the network; use mqtts:// (mqtt:// is for a broker on this host only)"
            ));
        }
        Ok(BrokerUrl { tls, host, port })
    }
}

impl std::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Where the store is: `file:///absolute/path` or `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A local directory.
    File(PathBuf),
    /// An S3 bucket (any S3-compatible service), with a key prefix (may be empty).
    S3 { bucket: String, prefix: String },
}

impl std::str::FromStr for StoreUrl {
    type Err = String;
    fn from_str(url: &str) -> Result<Self, String> {
        let parsed = match url.split_once("://") {
            Some(("file", path)) if std::path::Path::new(path).is_absolute() => {
                Some(StoreUrl::File(PathBuf::from(path)))
            }
            Some(("s3", rest)) if !rest.is_empty() && !rest.starts_with('/') => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                Some(StoreUrl::S3 {
                    bucket: bucket.to_owned(),
                    prefix: prefix.trim_matches('/').to_owned(),
                })
            }
            _ => None,
        };
        parsed.ok_or_else(|| {
            format!(
                "{url:?} is not a store URL; use \"file:///absolute/path\" or \"s3://bucket/prefix\""
            )
        })
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreUrl::File(path) => write!(f, "file://{}", path.display()),
            StoreUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub store: StoreUrl,
    /// The research team's age recipients.
    pub recipients: Vec<age::x25519::Recipient>,
    /// Captures uploaded at once.
    pub concurrency: usize,
    /// Scheduling niceness of the upload threads (0 to 19, default 19): uploads can wait,
    /// captures cannot, so on a busy core the capture and segment threads come first.
    pub nice: i32,
    /// Upload bandwidth cap in bytes/s (`None`: none).
    pub max_bps: Option<u64>,
    /// Part size of multipart uploads; smaller files go in one request.
    pub part_size: u64,
    /// The checksum of each sealed file (journal, upload check, manifest).
    pub checksum: pcap_protocol::store::Checksum,
    pub s3: S3,
}

/// How to reach an S3-compatible store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3 {
    /// `http(s)://host[:port]` when not AWS's own (also from `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), as most private S3 services want.
    pub path_style: bool,
    /// A 0600 file with `access_key_id` and `secret_access_key` (else the environment).
    pub credentials_file: Option<PathBuf>,
    /// PEM certificates to trust for a private endpoint.
    pub ca_bundle: Option<PathBuf>,
}

/// What happens when the spool's quota cannot be met without deleting unuploaded data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFull {
    /// Refuse new segments: running captures stop with `disk_full`.
    Refuse,
    /// Delete the oldest unuploaded segments (counted as lost).
    DropOldest,
}

/// What happens to unuploaded segments when the grant is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRevoke {
    Purge,
    Keep,
}

/// The reaper's rules for the local spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolPolicy {
    pub max_bytes: u64,
    pub min_free_percent: u8,
    pub keep_uploaded_for: Duration,
    pub max_age: Duration,
    pub on_full: OnFull,
    pub on_revoke: OnRevoke,
    pub reap_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub socket: PathBuf,
    /// Permission bits of the socket file.
    pub mode: u32,
    /// Group that owns the socket file; `None`: the daemon's own group.
    pub group: Option<String>,
    /// Users allowed besides root and the daemon's own user.
    pub allowed_uids: Vec<Principal>,
    /// Groups whose members are allowed; `None`: the socket's group.
    pub allowed_gids: Option<Vec<Principal>>,
    /// Where `GET /metrics` is also served over TCP for Prometheus (nothing else is).
    pub metrics_listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub state_dir: PathBuf,
    pub spool_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// Interfaces captures may use; `any` only if listed.
    pub interfaces: Vec<String>,
    pub promiscuous: bool,
    pub max_concurrent: usize,
    pub buffer_size: u64,
    /// Hand each packet over at once (libpcap immediate mode). Off: packets come in blocks
    /// within the read timeout, and many more fit the kernel buffer.
    pub immediate_mode: bool,
    /// BPF expressions whose traffic is never captured, besides the store's own.
    pub exclude: Vec<String>,
    pub rotate_size: u64,
    pub rotate_interval: Duration,
    /// Applied when a request leaves a limit out.
    pub defaults: Limits,
    /// A request above any of these is refused.
    pub ceilings: Limits,
}

/// Capture limits. In `defaults`, `None` means no limit of that kind unless requested; in
/// `ceilings`, every field is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub max_duration: Option<Duration>,
    pub max_packets: Option<u64>,
    pub max_bytes: Option<u64>,
    pub snaplen: Option<u32>,
    pub max_pps: Option<u64>,
    pub max_bps: Option<u64>,
}

/// The twelve session metadata fields that may leave the host (`[sharing]`; all by default).
pub type Sharing = pcap_protocol::session::FieldSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    Stderr,
    Journald,
}

/// How much the agent logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logging {
    pub level: LogLevel,
    pub format: LogFormat,
    pub output: LogOutput,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse_once_and_print_as_written() {
        for url in [
            "file:///var/lib/pcap-agent/store",
            "s3://captures/agents",
            "s3://captures",
        ] {
            assert_eq!(url.parse::<StoreUrl>().unwrap().to_string(), url);
        }
        assert_eq!(
            "s3://captures/agents/".parse::<StoreUrl>(),
            Ok(StoreUrl::S3 {
                bucket: "captures".into(),
                prefix: "agents".into()
            })
        );
        for bad in [
            "file://relative",
            "s3:///x",
            "s3://",
            "http://x",
            "/var/store",
        ] {
            assert!(bad.parse::<StoreUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn broker_urls_take_tls_anywhere_and_plain_mqtt_on_loopback_only() {
        let b: BrokerUrl = "mqtts://broker.example.net".parse().unwrap();
        assert_eq!((b.tls, b.port), (true, 8883));
        assert_eq!(b.to_string(), "mqtts://broker.example.net:8883");
        let b: BrokerUrl = "mqtt://127.0.0.1:18830".parse().unwrap();
        assert_eq!(
            (b.tls, b.host.as_str(), b.port),
            (false, "127.0.0.1", 18830)
        );
        assert!("mqtt://[::1]".parse::<BrokerUrl>().is_ok());
        let e = "mqtt://broker.example.net"
            .parse::<BrokerUrl>()
            .unwrap_err();
        assert!(e.contains("in clear") && e.contains("mqtts://"), "{e}");
        let e = "https://broker".parse::<BrokerUrl>().unwrap_err();
        assert!(e.contains("not a broker URL"), "{e}");
        assert!("mqtts://user@broker".parse::<BrokerUrl>().is_err());
    }
}
