//! `GET /v1/status`: what the agent is, whether it may capture, and what went wrong lately.

use http::StatusCode;
use serde_json::json;

use super::Api;
use super::response::{Reply, json_reply};

pub fn get(api: &Api) -> Reply {
    let config = api.config.borrow().clone();
    let auth = api.auth.borrow().clone();
    let now = api.clock.now();
    let body = json!({
        "version": crate::VERSION,
        "serial": config.device.serial,
        "name": config.device.name,
        "pid": std::process::id(),
        "started_at": api.started_at,
        "uptime_seconds": now.duration_since(api.started_at).as_secs().max(0),
        "authorization": {
            "state": auth.state,
            "since": auth.since,
            "expires_at": auth.grant.as_ref().and_then(|g| g.expires_at),
            "reason": auth.reason,
        },
        "captures": {
            "running": api.captures.borrow().running,
            "total": api.captures.borrow().total,
            "max_concurrent": config.capture.max_concurrent,
            "interfaces": config.capture.interfaces,
        },
        "store": config.upload.store,
        "spool": {
            "dir": config.paths.spool_dir,
            "bytes": pcap_uploader::reaper::dir_size(&config.paths.spool_dir),
            "refusing_new_segments": api.spool.gate.is_refusing(),
        },
        "uploads": api.spool.uploads.status(),
        "last_errors": api.incidents.recent(),
    });
    json_reply(StatusCode::OK, &body)
}
