//! The config file's schema as serde sees it. Every field is optional here so that one missing
//! key does not hide the other problems; [`crate::validate`] applies defaults and requirements.

use serde::Deserialize;

use crate::units::{OneOrMany, Principal, RawSize};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub device: RawDevice,
    #[serde(default)]
    pub authorization: RawAuthorization,
    pub requests: Option<RawRequests>,
    pub doorbell: Option<RawDoorbell>,
    #[serde(default)]
    pub upload: RawUpload,
    #[serde(default)]
    pub control: RawControl,
    #[serde(default)]
    pub paths: RawPaths,
    #[serde(default)]
    pub spool: RawSpool,
    #[serde(default)]
    pub capture: RawCapture,
    #[serde(default)]
    pub sharing: RawSharing,
    #[serde(default)]
    pub sessions: RawSessions,
    #[serde(default)]
    pub logging: RawLogging,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    pub serial: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorization {
    pub source: Option<String>,
    pub verify_key: Option<OneOrMany>,
    pub poll_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequests {
    pub verify_key: Option<OneOrMany>,
    pub poll_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDoorbell {
    pub url: Option<String>,
    pub credentials_file: Option<String>,
    pub ca_bundle: Option<String>,
    pub poll_interval: Option<String>,
    pub heartbeat_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpload {
    pub store: Option<String>,
    pub recipients: Option<Vec<String>>,
    pub concurrency: Option<i64>,
    pub nice: Option<i64>,
    pub max_bps: Option<RawSize>,
    pub part_size: Option<RawSize>,
    pub checksum: Option<String>,
    pub s3: Option<RawS3>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawS3 {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: Option<bool>,
    pub credentials_file: Option<String>,
    pub ca_bundle: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpool {
    pub max_bytes: Option<RawSize>,
    pub min_free_percent: Option<i64>,
    pub keep_uploaded_for: Option<String>,
    pub max_age: Option<String>,
    pub on_full: Option<String>,
    pub on_revoke: Option<String>,
    pub reap_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawControl {
    pub socket: Option<String>,
    pub mode: Option<i64>,
    pub group: Option<String>,
    pub allowed_uids: Option<Vec<Principal>>,
    pub allowed_gids: Option<Vec<Principal>>,
    pub metrics_listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPaths {
    pub state_dir: Option<String>,
    pub spool_dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapture {
    pub interfaces: Option<Vec<String>>,
    pub promiscuous: Option<bool>,
    pub max_concurrent: Option<i64>,
    pub buffer_size: Option<RawSize>,
    pub immediate_mode: Option<bool>,
    pub exclude: Option<Vec<String>>,
    pub rotate_size: Option<RawSize>,
    pub rotate_interval: Option<String>,
    #[serde(default)]
    pub defaults: RawLimits,
    #[serde(default)]
    pub ceilings: RawLimits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_duration: Option<String>,
    pub max_packets: Option<i64>,
    pub max_bytes: Option<RawSize>,
    pub snaplen: Option<i64>,
    pub max_pps: Option<i64>,
    pub max_bps: Option<RawSize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSessions {
    pub max: Option<i64>,
    pub max_bytes: Option<RawSize>,
    pub idle_timeout: Option<String>,
    pub users: Option<String>,
    pub virtual_systems: Option<std::collections::BTreeMap<String, String>>,
    pub tunnels: Option<String>,
    pub tunnel_depth: Option<i64>,
    pub vxlan_ports: Option<Vec<i64>>,
    pub geneve_ports: Option<Vec<i64>>,
    pub max_values: Option<i64>,
    pub max_value_bytes: Option<i64>,
    pub community_id_seed: Option<i64>,
}

/// The twelve session metadata switches by name; a missing switch is on (names are checked
/// in validation, which knows the fields).
pub type RawSharing = std::collections::BTreeMap<String, bool>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogging {
    pub level: Option<String>,
    pub format: Option<String>,
    pub output: Option<String>,
}
