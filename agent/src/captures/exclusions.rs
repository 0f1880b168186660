//! What no capture may contain: the agent's own traffic to the store, and the operator's
//! configured exclusions. These go into every effective filter as `not (...)`.

use std::net::{IpAddr, ToSocketAddrs};

use pcap_config::validate::endpoint_host_port;
use pcap_config::{Config, StoreUrl};

/// The BPF expressions every capture excludes.
pub fn exclusions(config: &Config) -> Vec<String> {
    let mut out = config.capture.exclude.clone();
    out.extend(store_exclusion(config));
    out
}

/// The store's endpoint as a BPF expression: its port and every address its name resolves to.
fn store_exclusion(config: &Config) -> Option<String> {
    if !matches!(config.upload.store, StoreUrl::S3 { .. }) {
        return None;
    }
    let endpoint = config
        .upload
        .s3
        .endpoint
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())?;
    let (host, port) = endpoint_host_port(&endpoint)?;
    let mut addrs: Vec<IpAddr> = (host.as_str(), port)
        .to_socket_addrs()
        .map(|a| a.map(|s| s.ip()).collect())
        .unwrap_or_default();
    addrs.sort();
    addrs.dedup();
    let hosts: Vec<String> = if addrs.is_empty() {
        vec![format!("host {host}")]
    } else {
        addrs.iter().map(|a| format!("host {a}")).collect()
    };
    Some(format!("tcp port {port} and ({})", hosts.join(" or ")))
}
