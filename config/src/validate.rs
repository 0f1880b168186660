//! Raw schema -> typed [`Config`]: defaults, units, required keys and contradictions. Every
//! problem is collected with its key path and line; nothing stops at the first.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use pcap_protocol::authorization::is_valid_name;
use pcap_protocol::session::Field;
use pcap_protocol::{Serial, VerifyKey};

use crate::error::Problem;
use crate::model::*;
use crate::raw::*;
use crate::source::Document;
use crate::units::{OneOrMany, RawSize, format_duration, format_size, parse_duration};

/// Largest snapshot length accepted (libpcap's own maximum).
pub const MAX_SNAPLEN: u32 = 262_144;
/// Most captures that may ever run at once.
pub const MAX_CONCURRENT_CEILING: usize = 64;
/// Smallest segment size before rotation; smaller segments cost more than they help.
pub const MIN_ROTATE_SIZE: u64 = 64 * 1024;

const DEFAULT_STORE_DIR: &str = "/var/lib/pcap-agent/store";
const DEFAULT_STORE: &str = "file:///var/lib/pcap-agent/store";
const DEFAULT_SOCKET: &str = "/run/pcap-agent/control.sock";
const DEFAULT_STATE_DIR: &str = "/var/lib/pcap-agent";
const DEFAULT_SPOOL_DIR: &str = "/var/spool/pcap-agent";
const DEFAULT_POLL: Duration = Duration::from_secs(30);
/// With a doorbell connected the store is read when it rings; the poll is a safety net.
/// 15 minutes keeps an idle device near 200 store requests a day (grant, request list,
/// hourly heartbeat); see docs/design.md.
const DEFAULT_DOORBELL_POLL: Duration = Duration::from_secs(15 * 60);
const DEFAULT_DOORBELL_HEARTBEAT: Duration = Duration::from_secs(3600);
/// Uploads take what captures (and the host's own work) leave of a busy core.
const DEFAULT_UPLOAD_NICE: i32 = 19;
const MIB: u64 = 1024 * 1024;

struct Checker<'a> {
    doc: &'a Document,
    problems: &'a mut Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.to_owned(),
            message: message.into(),
            line: self.doc.line(key),
        });
    }

    fn required<T>(&mut self, key: &str, value: Option<T>, hint: &str) -> Option<T> {
        if value.is_none() {
            self.problem(key, format!("is required: {hint}"));
        }
        value
    }

    fn duration(
        &mut self,
        key: &str,
        raw: Option<String>,
        default: Option<Duration>,
    ) -> Option<Duration> {
        match raw {
            None => default,
            Some(text) => match parse_duration(&text) {
                Ok(d) if d.is_zero() => {
                    self.problem(key, "must be longer than zero");
                    default
                }
                Ok(d) => Some(d),
                Err(e) => {
                    self.problem(key, e);
                    default
                }
            },
        }
    }

    fn size(&mut self, key: &str, raw: Option<RawSize>, default: Option<u64>) -> Option<u64> {
        match raw.map(|r| r.resolve()) {
            None => default,
            Some(Ok(0)) => {
                self.problem(key, "must be larger than zero");
                default
            }
            Some(Ok(n)) => Some(n),
            Some(Err(e)) => {
                self.problem(key, e);
                default
            }
        }
    }

    fn count(
        &mut self,
        key: &str,
        raw: Option<i64>,
        default: Option<u64>,
        max: u64,
    ) -> Option<u64> {
        match raw {
            None => default,
            Some(n) if n >= 1 && n as u64 <= max => Some(n as u64),
            Some(n) => {
                self.problem(key, format!("{n} is out of range; use 1 to {max}"));
                default
            }
        }
    }

    fn absolute(&mut self, key: &str, raw: Option<String>, default: &str) -> PathBuf {
        let path = PathBuf::from(raw.unwrap_or_else(|| default.to_owned()));
        if !path.is_absolute() {
            self.problem(
                key,
                format!("{:?} is not an absolute path", path.display().to_string()),
            );
        }
        path
    }

    fn keys(&mut self, key: &str, raw: Option<OneOrMany>, hint: &str) -> Vec<PathBuf> {
        let Some(OneOrMany(paths)) = self.required(key, raw, hint) else {
            return Vec::new();
        };
        if paths.is_empty() {
            self.problem(key, format!("lists no key: {hint}"));
        }
        let paths: Vec<PathBuf> = paths.into_iter().map(PathBuf::from).collect();
        for (i, path) in paths.iter().enumerate() {
            let item = if paths.len() > 1 {
                format!("{key}[{i}]")
            } else {
                key.to_owned()
            };
            if let Err(e) = VerifyKey::load(path) {
                self.problem(&item, e.to_string());
            }
        }
        paths
    }
}

/// Checks `raw` and builds the config; problems go to `problems` (the config returned is only
/// meaningful when none were added).
pub fn validate(raw: RawConfig, doc: &Document, problems: &mut Vec<Problem>) -> Config {
    let mut c = Checker { doc, problems };
    Config {
        device: device(&mut c, raw.device),
        authorization: authorization(&mut c, raw.authorization),
        requests: raw.requests.map(|r| requests(&mut c, r)),
        doorbell: raw.doorbell.and_then(|r| doorbell(&mut c, r)),
        upload: upload(&mut c, raw.upload),
        control: control(&mut c, raw.control),
        spool: spool(&mut c, raw.spool),
        paths: Paths {
            state_dir: c.absolute("paths.state_dir", raw.paths.state_dir, DEFAULT_STATE_DIR),
            spool_dir: c.absolute("paths.spool_dir", raw.paths.spool_dir, DEFAULT_SPOOL_DIR),
        },
        capture: capture(&mut c, raw.capture),
        sharing: sharing(&mut c, raw.sharing),
        sessions: sessions(&mut c, raw.sessions),
        logging: logging(&mut c, raw.logging),
    }
}

fn device(c: &mut Checker<'_>, raw: RawDevice) -> Device {
    let serial = c
        .required(
            "device.serial",
            raw.serial,
            "the serial this device is authorized under",
        )
        .and_then(|s| match Serial::parse(&s) {
            Ok(s) => Some(s),
            Err(e) => {
                c.problem("device.serial", format!("{s:?} {e}"));
                None
            }
        })
        // A stand-in only; the problem recorded above makes the whole config invalid.
        .unwrap_or_else(|| Serial::parse("unset").expect("\"unset\" is a valid serial"));
    if raw.name.as_deref().is_some_and(|n| !is_valid_name(n)) {
        c.problem("device.name", "must be at most 128 printable characters");
    }
    Device {
        serial,
        name: raw.name,
    }
}

fn authorization(c: &mut Checker<'_>, raw: RawAuthorization) -> Authorization {
    let hint = "e.g. source = \"store\" or source = \"file:///etc/pcap-agent/grant.json\"";
    let source = match c.required("authorization.source", raw.source, hint) {
        Some(s) if s == "store" => GrantSource::Store,
        Some(s) => {
            let path = PathBuf::from(s.strip_prefix("file://").unwrap_or(&s));
            if !path.is_absolute() {
                c.problem(
                    "authorization.source",
                    format!("{s:?} is not \"store\", a file:// URL or an absolute path; {hint}"),
                );
            }
            GrantSource::File(path)
        }
        None => GrantSource::File(PathBuf::new()),
    };
    Authorization {
        source,
        verify_keys: c.keys(
            "authorization.verify_key",
            raw.verify_key,
            "the customer's authorization.pub from `pcap-portal keygen`",
        ),
        poll_interval: c
            .duration(
                "authorization.poll_interval",
                raw.poll_interval,
                Some(DEFAULT_POLL),
            )
            .unwrap_or(DEFAULT_POLL),
    }
}

fn requests(c: &mut Checker<'_>, raw: RawRequests) -> Requests {
    Requests {
        verify_keys: c.keys(
            "requests.verify_key",
            raw.verify_key,
            "the research team's request.pub",
        ),
        poll_interval: c
            .duration(
                "requests.poll_interval",
                raw.poll_interval,
                Some(DEFAULT_POLL),
            )
            .unwrap_or(DEFAULT_POLL),
    }
}

fn doorbell(c: &mut Checker<'_>, raw: RawDoorbell) -> Option<Doorbell> {
    let url = c.required(
        "doorbell.url",
        raw.url,
        "the MQTT broker, e.g. url = \"mqtts://broker.example.net:8883\"",
    )?;
    let broker = match url.parse() {
        Ok(b) => b,
        Err(e) => {
            c.problem("doorbell.url", e);
            return None;
        }
    };
    Some(Doorbell {
        broker,
        credentials_file: raw
            .credentials_file
            .map(|p| c.absolute("doorbell.credentials_file", Some(p), "")),
        ca_bundle: raw
            .ca_bundle
            .map(|p| c.absolute("doorbell.ca_bundle", Some(p), "")),
        poll_interval: c
            .duration(
                "doorbell.poll_interval",
                raw.poll_interval,
                Some(DEFAULT_DOORBELL_POLL),
            )
            .unwrap_or(DEFAULT_DOORBELL_POLL),
        heartbeat_interval: c
            .duration(
                "doorbell.heartbeat_interval",
                raw.heartbeat_interval,
                Some(DEFAULT_DOORBELL_HEARTBEAT),
            )
            .unwrap_or(DEFAULT_DOORBELL_HEARTBEAT),
    })
}

fn upload(c: &mut Checker<'_>, raw: RawUpload) -> Upload {
    let store = match raw.store.as_deref().unwrap_or(DEFAULT_STORE).parse() {
        Ok(url) => url,
        Err(e) => {
            c.problem("upload.store", e);
            StoreUrl::File(PathBuf::from(DEFAULT_STORE_DIR))
        }
    };
    let listed = c
        .required(
            "upload.recipients",
            raw.recipients,
            "the research team's age recipient (age1...), from research.age.pub",
        )
        .unwrap_or_default();
    if listed.is_empty() {
        c.problem(
            "upload.recipients",
            "lists no recipient; captures could not be encrypted",
        );
    }
    let mut recipients = Vec::new();
    for (i, r) in listed.iter().enumerate() {
        match age::x25519::Recipient::from_str(r) {
            Ok(recipient) => recipients.push(recipient),
            Err(_) => c.problem(
                &format!("upload.recipients[{i}]"),
                format!("{r:?} is not an age recipient (age1...)"),
            ),
        }
    }
    let raw_s3 = raw.s3.unwrap_or_default();
    if let Some(e) = &raw_s3.endpoint
        && endpoint_host_port(e).is_none()
    {
        c.problem(
            "upload.s3.endpoint",
            format!("{e:?} is not an endpoint URL; write e.g. \"https://s3.example.net\" or \"http://127.0.0.1:9000\""),
        );
    }
    let s3 = S3 {
        endpoint: raw_s3.endpoint,
        region: raw_s3.region,
        path_style: raw_s3.path_style.unwrap_or(false),
        credentials_file: raw_s3
            .credentials_file
            .map(|p| c.absolute("upload.s3.credentials_file", Some(p), "")),
        ca_bundle: raw_s3
            .ca_bundle
            .map(|p| c.absolute("upload.s3.ca_bundle", Some(p), "")),
    };
    let part_size = c
        .size("upload.part_size", raw.part_size, Some(8 * MIB))
        .unwrap_or(8 * MIB);
    if !(5 * MIB..=512 * MIB).contains(&part_size) {
        c.problem(
            "upload.part_size",
            "must be between 5MiB (the S3 minimum) and 512MiB",
        );
    }
    let checksum = match raw.checksum.as_deref() {
        None | Some("crc64nvme") => pcap_protocol::store::Checksum::Crc64Nvme,
        Some("sha256") => pcap_protocol::store::Checksum::Sha256,
        Some(other) => {
            c.problem(
                "upload.checksum",
                format!("{other:?} is not a checksum this agent makes; use \"crc64nvme\" (the default) or \"sha256\""),
            );
            pcap_protocol::store::Checksum::Crc64Nvme
        }
    };
    Upload {
        store,
        recipients,
        checksum,
        concurrency: c
            .count("upload.concurrency", raw.concurrency, Some(2), 16)
            .unwrap_or(2) as usize,
        nice: match raw.nice {
            None => DEFAULT_UPLOAD_NICE,
            Some(n @ 0..=19) => n as i32,
            Some(n) => {
                c.problem(
                    "upload.nice",
                    format!("{n} is out of range; use 0 (as the captures) to 19 (only idle time)"),
                );
                DEFAULT_UPLOAD_NICE
            }
        },
        max_bps: c.size("upload.max_bps", raw.max_bps, None),
        part_size,
        s3,
    }
}

/// The host and port of an endpoint URL (`http://host[:port][/...]`; the scheme's default
/// port when none is given).
pub fn endpoint_host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let default = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    crate::units::host_port(rest, default)
}

fn control(c: &mut Checker<'_>, raw: RawControl) -> Control {
    let mode = match raw.mode {
        None => 0o660,
        Some(m) if (0..=0o777).contains(&m) && m & 0o007 == 0 => m as u32,
        Some(m) if (0..=0o777).contains(&m) => {
            c.problem(
                "control.mode",
                format!("{m:#o} lets every local user reach the control socket; use 0o660 and allowed_gids"),
            );
            0o660
        }
        Some(m) => {
            c.problem(
                "control.mode",
                format!("{m} has bits outside 0o777; write the mode in octal, e.g. mode = 0o660"),
            );
            0o660
        }
    };
    Control {
        socket: c.absolute("control.socket", raw.socket, DEFAULT_SOCKET),
        mode,
        group: raw.group,
        allowed_uids: raw.allowed_uids.unwrap_or_default(),
        allowed_gids: raw.allowed_gids,
        metrics_listen: raw.metrics_listen.and_then(|a| match a.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                c.problem(
                    "control.metrics_listen",
                    format!("{a:?} is not an address and port; write e.g. \"127.0.0.1:9465\""),
                );
                None
            }
        }),
    }
}

fn capture(c: &mut Checker<'_>, raw: RawCapture) -> Capture {
    let interfaces = c
        .required(
            "capture.interfaces",
            raw.interfaces,
            "the interfaces captures may use, e.g. [\"eth0\"]",
        )
        .unwrap_or_default();
    if interfaces.is_empty() {
        c.problem(
            "capture.interfaces",
            "lists no interface; no capture could run",
        );
    }
    let ceilings = limits(c, "capture.ceilings", raw.ceilings, &CEILING_DEFAULTS);
    let defaults = limits(c, "capture.defaults", raw.defaults, &DEFAULT_DEFAULTS);
    check_within_ceilings(c, &defaults, &ceilings);
    let rotate_size = c
        .size("capture.rotate_size", raw.rotate_size, Some(64 * MIB))
        .unwrap_or(64 * MIB);
    if rotate_size < MIN_ROTATE_SIZE {
        c.problem(
            "capture.rotate_size",
            format!("must be at least {}", format_size(MIN_ROTATE_SIZE)),
        );
    }
    let max_concurrent = c
        .count(
            "capture.max_concurrent",
            raw.max_concurrent,
            Some(2),
            MAX_CONCURRENT_CEILING as u64,
        )
        .unwrap_or(2) as usize;
    Capture {
        interfaces,
        promiscuous: raw.promiscuous.unwrap_or(false),
        immediate_mode: raw.immediate_mode.unwrap_or(false),
        max_concurrent,
        buffer_size: c
            .size("capture.buffer_size", raw.buffer_size, Some(8 * MIB))
            .unwrap_or(8 * MIB),
        exclude: raw.exclude.unwrap_or_default(),
        rotate_size,
        rotate_interval: c
            .duration(
                "capture.rotate_interval",
                raw.rotate_interval,
                Some(Duration::from_secs(300)),
            )
            .unwrap_or(Duration::from_secs(300)),
        defaults,
        ceilings,
    }
}

/// What `capture.ceilings` holds when the file does not say.
const CEILING_DEFAULTS: Limits = Limits {
    max_duration: Some(Duration::from_secs(3600)),
    max_packets: Some(10_000_000),
    max_bytes: Some(2048 * MIB),
    snaplen: Some(MAX_SNAPLEN),
    max_pps: Some(200_000),
    max_bps: Some(200 * MIB),
};

/// What `capture.defaults` holds when the file does not say.
const DEFAULT_DEFAULTS: Limits = Limits {
    max_duration: Some(Duration::from_secs(60)),
    max_packets: None,
    max_bytes: Some(100 * MIB),
    snaplen: Some(65_535),
    max_pps: None,
    max_bps: None,
};

fn limits(c: &mut Checker<'_>, table: &str, raw: RawLimits, fallback: &Limits) -> Limits {
    let key = |name: &str| format!("{table}.{name}");
    Limits {
        max_duration: c.duration(
            &key("max_duration"),
            raw.max_duration,
            fallback.max_duration,
        ),
        max_packets: c.count(
            &key("max_packets"),
            raw.max_packets,
            fallback.max_packets,
            u64::MAX >> 1,
        ),
        max_bytes: c.size(&key("max_bytes"), raw.max_bytes, fallback.max_bytes),
        snaplen: c
            .count(
                &key("snaplen"),
                raw.snaplen,
                fallback.snaplen.map(u64::from),
                u64::from(MAX_SNAPLEN),
            )
            .map(|n| n as u32),
        max_pps: c.count(
            &key("max_pps"),
            raw.max_pps,
            fallback.max_pps,
            u64::MAX >> 1,
        ),
        max_bps: c.size(&key("max_bps"), raw.max_bps, fallback.max_bps),
    }
}

fn check_within_ceilings(c: &mut Checker<'_>, defaults: &Limits, ceilings: &Limits) {
    let mut check = |name: &str,
                     default: Option<u64>,
                     ceiling: Option<u64>,
                     show: &dyn Fn(u64) -> String| {
        if let (Some(d), Some(cap)) = (default, ceiling)
            && d > cap
        {
            c.problem(
                &format!("capture.defaults.{name}"),
                format!(
                    "{} is above its ceiling capture.ceilings.{name} = {}; lower the default or raise the ceiling",
                    show(d),
                    show(cap)
                ),
            );
        }
    };
    let secs = |d: Option<Duration>| d.map(|d| d.as_millis() as u64);
    let dur = |ms: u64| format_duration(Duration::from_millis(ms));
    let num = |n: u64| n.to_string();
    check(
        "max_duration",
        secs(defaults.max_duration),
        secs(ceilings.max_duration),
        &dur,
    );
    check(
        "max_packets",
        defaults.max_packets,
        ceilings.max_packets,
        &num,
    );
    check(
        "max_bytes",
        defaults.max_bytes,
        ceilings.max_bytes,
        &format_size,
    );
    check(
        "snaplen",
        defaults.snaplen.map(u64::from),
        ceilings.snaplen.map(u64::from),
        &num,
    );
    check("max_pps", defaults.max_pps, ceilings.max_pps, &num);
    check("max_bps", defaults.max_bps, ceilings.max_bps, &format_size);
}

fn spool(c: &mut Checker<'_>, raw: RawSpool) -> SpoolPolicy {
    const DAY: Duration = Duration::from_secs(86_400);
    let on_full = match raw.on_full.as_deref() {
        None | Some("refuse") => OnFull::Refuse,
        Some("drop_oldest") => OnFull::DropOldest,
        Some(other) => {
            c.problem(
                "spool.on_full",
                format!("{other:?} is not a policy; use \"refuse\" or \"drop_oldest\""),
            );
            OnFull::Refuse
        }
    };
    let on_revoke = match raw.on_revoke.as_deref() {
        None | Some("purge") => OnRevoke::Purge,
        Some("keep") => OnRevoke::Keep,
        Some(other) => {
            c.problem(
                "spool.on_revoke",
                format!("{other:?} is not a policy; use \"purge\" or \"keep\""),
            );
            OnRevoke::Purge
        }
    };
    let min_free_percent = match raw.min_free_percent {
        None => 10,
        Some(p @ 0..=90) => p as u8,
        Some(p) => {
            c.problem(
                "spool.min_free_percent",
                format!("{p} is out of range; use 0 to 90"),
            );
            10
        }
    };
    let keep_uploaded_for = match raw.keep_uploaded_for.as_deref() {
        None | Some("0" | "0s") => Duration::ZERO,
        Some(_) => c
            .duration(
                "spool.keep_uploaded_for",
                raw.keep_uploaded_for,
                Some(Duration::ZERO),
            )
            .unwrap_or(Duration::ZERO),
    };
    SpoolPolicy {
        max_bytes: c
            .size("spool.max_bytes", raw.max_bytes, Some(10 * 1024 * MIB))
            .unwrap_or(10 * 1024 * MIB),
        min_free_percent,
        keep_uploaded_for,
        max_age: c
            .duration("spool.max_age", raw.max_age, Some(7 * DAY))
            .unwrap_or(7 * DAY),
        on_full,
        on_revoke,
        reap_interval: c
            .duration(
                "spool.reap_interval",
                raw.reap_interval,
                Some(Duration::from_secs(60)),
            )
            .unwrap_or(Duration::from_secs(60)),
    }
}

/// Most sessions a flow table may be configured to hold.
pub const MAX_SESSIONS_CEILING: u64 = 10_000_000;

/// Least memory `sessions.max_bytes` may give a flow table.
const MIN_SESSION_BYTES: u64 = 1 << 20;

/// Most values `sessions.max_values` may keep per list.
const MAX_VALUES_CEILING: u64 = 1024;
/// Most bytes `sessions.max_value_bytes` may keep per value.
const MAX_VALUE_BYTES_CEILING: u64 = 65_536;

fn sessions(c: &mut Checker<'_>, raw: RawSessions) -> Sessions {
    let users = raw.users.map(|u| c.absolute("sessions.users", Some(u), ""));
    let d = Sessions::default();
    let count = |c: &mut Checker<'_>, key: &str, raw, default: usize, max| {
        c.count(key, raw, Some(default as u64), max)
            .map_or(default, |n| n as usize)
    };
    Sessions {
        max: count(c, "sessions.max", raw.max, d.max, MAX_SESSIONS_CEILING),
        max_bytes: match c.size("sessions.max_bytes", raw.max_bytes, Some(d.max_bytes)) {
            Some(n) if n < MIN_SESSION_BYTES => {
                c.problem(
                    "sessions.max_bytes",
                    format!("{n} bytes is too little for a flow table; use at least 1MiB"),
                );
                d.max_bytes
            }
            n => n.unwrap_or(d.max_bytes),
        },
        idle_timeout: c
            .duration(
                "sessions.idle_timeout",
                raw.idle_timeout,
                Some(d.idle_timeout),
            )
            .unwrap_or(d.idle_timeout),
        users,
        virtual_systems: raw.virtual_systems.unwrap_or_default(),
        tunnels: tunnels(
            c,
            raw.tunnels,
            raw.tunnel_depth,
            raw.vxlan_ports,
            raw.geneve_ports,
        ),
        max_values: count(
            c,
            "sessions.max_values",
            raw.max_values,
            d.max_values,
            MAX_VALUES_CEILING,
        ),
        max_value_bytes: count(
            c,
            "sessions.max_value_bytes",
            raw.max_value_bytes,
            d.max_value_bytes,
            MAX_VALUE_BYTES_CEILING,
        ),
        community_id_seed: match raw.community_id_seed.map(u16::try_from) {
            None => d.community_id_seed,
            Some(Ok(seed)) => seed,
            Some(Err(_)) => {
                c.problem(
                    "sessions.community_id_seed",
                    format!(
                        "{} is out of range; use 0 to 65535",
                        raw.community_id_seed.unwrap_or_default()
                    ),
                );
                d.community_id_seed
            }
        },
    }
}

/// Most encapsulation layers `sessions.tunnel_depth` may ask to take off.
const MAX_TUNNEL_DEPTH: u64 = 8;

fn tunnels(
    c: &mut Checker<'_>,
    mode: Option<String>,
    depth: Option<i64>,
    vxlan: Option<Vec<i64>>,
    geneve: Option<Vec<i64>>,
) -> TunnelSettings {
    let standard = TunnelSettings::default();
    let mode = match mode.as_deref() {
        None | Some("inner") => TunnelMode::Inner,
        Some("outer") => TunnelMode::Outer,
        Some("both") => TunnelMode::Both,
        Some(other) => {
            c.problem(
                "sessions.tunnels",
                format!("{other:?} is not a choice; use \"inner\", \"outer\" or \"both\""),
            );
            TunnelMode::Inner
        }
    };
    let max_depth = c
        .count(
            "sessions.tunnel_depth",
            depth,
            Some(u64::from(standard.max_depth)),
            MAX_TUNNEL_DEPTH,
        )
        .unwrap_or(u64::from(standard.max_depth)) as u8;
    let mut ports = |key: &str, raw: Option<Vec<i64>>, default: Vec<u16>| match raw {
        None => default,
        Some(list) => list
            .into_iter()
            .filter_map(|p| match u16::try_from(p) {
                Ok(port) if port != 0 => Some(port),
                _ => {
                    c.problem(key, format!("{p} is not a UDP port; use 1 to 65535"));
                    None
                }
            })
            .collect(),
    };
    TunnelSettings {
        mode,
        max_depth,
        vxlan_ports: ports("sessions.vxlan_ports", vxlan, standard.vxlan_ports),
        geneve_ports: ports("sessions.geneve_ports", geneve, standard.geneve_ports),
    }
}

fn sharing(c: &mut Checker<'_>, raw: RawSharing) -> Sharing {
    let mut set = Sharing::ALL;
    for (name, on) in raw {
        match Field::from_name(&name) {
            Some(field) => set = set.with(field, on),
            None => {
                let known: Vec<String> = Field::ALL.iter().map(|f| format!("`{f}`")).collect();
                c.problem(
                    &format!("sharing.{name}"),
                    format!(
                        "unknown field `{name}`, expected one of {}",
                        known.join(", ")
                    ),
                );
            }
        }
    }
    set
}

fn logging(c: &mut Checker<'_>, raw: RawLogging) -> Logging {
    let level = match raw.level.as_deref() {
        None => LogLevel::Info,
        Some(text) => LogLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == text)
            .unwrap_or_else(|| {
                c.problem(
                    "logging.level",
                    format!("{text:?} is not a level; use error, warn, info, debug or trace"),
                );
                LogLevel::Info
            }),
    };
    let format = match raw.format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            c.problem(
                "logging.format",
                format!("{other:?} is not a format; use \"text\" or \"json\""),
            );
            LogFormat::Text
        }
    };
    let output = match raw.output.as_deref() {
        None | Some("stderr") => LogOutput::Stderr,
        Some("journald") => LogOutput::Journald,
        Some(other) => {
            c.problem(
                "logging.output",
                format!("{other:?} is not an output; use \"stderr\" or \"journald\""),
            );
            LogOutput::Stderr
        }
    };
    Logging {
        level,
        format,
        output,
    }
}
