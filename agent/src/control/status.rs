//! `GET /v1/status`: what the agent is, whether it may capture, and what went wrong lately.

use http::StatusCode;

use super::Api;
use super::api::{SpoolUsage, Status, StatusAuthorization, StatusCaptures};
use super::response::{Reply, json_reply};

pub fn get(api: &Api) -> Reply {
    let config = api.config.borrow().clone();
    let auth = api.auth.borrow().clone();
    let captures = *api.captures.borrow();
    let now = api.clock.now();
    let body = Status {
        version: crate::VERSION.to_owned(),
        serial: config.device.serial.clone(),
        name: config.device.name.clone(),
        pid: std::process::id(),
        started_at: api.started_at,
        uptime_seconds: now.duration_since(api.started_at).as_secs().max(0),
        authorization: StatusAuthorization {
            state: auth.state,
            since: auth.since,
            expires_at: auth.grant.as_ref().and_then(|g| g.expires_at),
            reason: auth.reason,
        },
        captures: StatusCaptures {
            running: captures.running,
            total: captures.total,
            max_concurrent: config.capture.max_concurrent,
            interfaces: config.capture.interfaces.clone(),
        },
        store: config.upload.store.to_string(),
        spool: SpoolUsage {
            summary: api.spool.summary(&config.paths.spool_dir),
            dir: config.paths.spool_dir.clone(),
        },
        uploads: api.spool.uploads.status(),
        channel: crate::remote::channel::channel(&config, &api.doorbell),
        last_errors: api.incidents.recent(),
    };
    json_reply(StatusCode::OK, &body)
}
