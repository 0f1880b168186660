//! How often the agent reads and writes the store, with and without a connected doorbell, and
//! the heartbeat's account of it (`channel`), so that the portal can tell a device that does
//! not take requests from one that is silent.

use std::time::Duration;

use pcap_config::Config;
use pcap_doorbell::Doorbell;
use pcap_protocol::store::Channel;

/// How often the request folder is listed: the doorbell's long interval while it is
/// connected, else `requests.poll_interval` (or the authorization's without `[requests]`).
pub fn poll_interval(config: &Config, connected: bool) -> Duration {
    match &config.doorbell {
        Some(d) if connected => d.poll_interval,
        _ => config
            .requests
            .as_ref()
            .map_or(config.authorization.poll_interval, |r| r.poll_interval),
    }
}

/// Longest time between two heartbeats: the doorbell's heartbeat interval while it is
/// connected, else the poll interval (as without a doorbell).
pub fn heartbeat_interval(config: &Config, connected: bool) -> Duration {
    match &config.doorbell {
        Some(d) if connected => d.heartbeat_interval,
        _ => poll_interval(config, false),
    }
}

/// The heartbeat's `channel` as of now.
pub fn channel(config: &Config, doorbell: &Doorbell) -> Channel {
    let connected = doorbell.is_connected();
    Channel {
        requests: config.requests.is_some(),
        poll_interval_seconds: poll_interval(config, connected).as_secs(),
        heartbeat_interval_seconds: heartbeat_interval(config, connected).as_secs(),
        doorbell: doorbell.report(),
    }
}
