//! `GET /v1/spool`: every spool file with its state, size, age, attempts and last error, the
//! spool's usage and the uploads' status. `POST /v1/reap`: run the reaper now.

use http::StatusCode;
use pcap_spool::usage::free_percent;
use pcap_uploader::reaper::ReapCommand;
use tokio::sync::oneshot;

use super::Api;
use super::api::{Spool, SpoolFile, SpoolUsage};
use super::response::{ApiError, Reply, json_reply};

pub fn get(api: &Api) -> Reply {
    let dir = api.config.borrow().paths.spool_dir.clone();
    let now = api.clock.now();
    let files = api
        .spool
        .journal
        .entries()
        .into_iter()
        .map(|e| SpoolFile {
            age_seconds: e.sealed_at.map(|t| now.duration_since(t).as_secs().max(0)),
            capture: e.capture,
            name: e.name,
            state: e.state,
            size: e.size,
            attempts: e.attempts,
            last_error: e.last_error,
            reason: e.reason,
            sha256: e.sha256,
            crc64nvme: e.crc64nvme,
            uploaded_at: e.uploaded_at,
        })
        .collect();
    let body = Spool {
        free_percent: free_percent(&dir),
        usage: SpoolUsage {
            summary: api.spool.summary(&dir),
            dir,
        },
        uploads: api.spool.uploads.status(),
        last_reap: api.spool.reaped.borrow().clone(),
        files,
    };
    json_reply(StatusCode::OK, &body)
}

pub async fn reap(api: &Api) -> Reply {
    let (reply, answer) = oneshot::channel();
    let unavailable = || ApiError::shutting_down().reply();
    if api.spool.reap.send(ReapCommand::Now(reply)).await.is_err() {
        return unavailable();
    }
    match answer.await {
        Ok(report) => json_reply(StatusCode::OK, &report),
        Err(_) => unavailable(),
    }
}
