//! `GET /v1/spool`: every spool file with its state, size, age, attempts and last error, the
//! spool's usage and the uploads' status. `POST /v1/reap`: run the reaper now.

use http::StatusCode;
use jiff::Timestamp;
use pcap_uploader::reaper::{ReapCommand, dir_size, free_percent};
use serde_json::json;
use tokio::sync::oneshot;

use super::Api;
use super::response::{ApiError, Reply, json_reply};

pub fn get(api: &Api) -> Reply {
    let dir = api.config.borrow().paths.spool_dir.clone();
    let now = api.clock.now();
    let age = |t: Option<Timestamp>| t.map(|t| now.duration_since(t).as_secs().max(0));
    let files: Vec<_> = api
        .spool
        .journal
        .entries()
        .into_iter()
        .map(|e| {
            json!({
                "capture": e.capture,
                "name": e.name,
                "state": e.state,
                "size": e.size,
                "age_seconds": age(e.sealed_at),
                "attempts": e.attempts,
                "last_error": e.last_error,
                "reason": e.reason,
                "sha256": e.sha256,
                "uploaded_at": e.uploaded_at,
            })
        })
        .collect();
    json_reply(
        StatusCode::OK,
        &json!({
            "dir": dir,
            "bytes": dir_size(&dir),
            "free_percent": free_percent(&dir),
            "refusing_new_segments": api.spool.gate.is_refusing(),
            "uploads": api.spool.uploads.status(),
            "last_reap": *api.spool.reaped.borrow(),
            "files": files,
        }),
    )
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
