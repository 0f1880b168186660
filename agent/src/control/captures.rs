//! `/v1/captures`: start a local capture, list them, show one, stop one. The scheduler does the
//! work; these handlers parse, forward, and turn its answers into HTTP.

use http::StatusCode;
use pcap_protocol::{CaptureId, CaptureRequest, RefusalCode};
use tokio::sync::oneshot;

use super::Api;
use super::api::CaptureList;
use super::response::{ApiError, Reply, json_reply};
use crate::captures::SchedulerCommand;
use crate::captures::record::Origin;

async fn ask<T>(
    api: &Api,
    command: SchedulerCommand,
    answer: oneshot::Receiver<T>,
) -> Result<T, ApiError> {
    api.scheduler
        .send(command)
        .await
        .map_err(|_| ApiError::shutting_down())?;
    answer.await.map_err(|_| ApiError::shutting_down())
}

/// `POST /v1/captures`.
pub async fn start(api: &Api, body: &[u8]) -> Reply {
    let request: CaptureRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                RefusalCode::InvalidRequest.as_str(),
                format!("the body is not a capture request: {e}"),
            )
            .reply();
        }
    };
    let (reply, answer) = oneshot::channel();
    let command = SchedulerCommand::Start {
        request: Box::new(request),
        origin: Origin::Local,
        reply,
    };
    match ask(api, command, answer).await {
        Ok(Ok(record)) => json_reply(StatusCode::CREATED, &record),
        Ok(Err(refused)) => ApiError::from(&refused).reply(),
        Err(e) => e.reply(),
    }
}

/// `GET /v1/captures`.
pub async fn list(api: &Api) -> Reply {
    let (reply, answer) = oneshot::channel();
    match ask(api, SchedulerCommand::List { reply }, answer).await {
        Ok(captures) => json_reply(StatusCode::OK, &CaptureList { captures }),
        Err(e) => e.reply(),
    }
}

/// `GET /v1/captures/{id}`.
pub async fn get(api: &Api, id: &str) -> Reply {
    let id = match capture_id(id) {
        Ok(id) => id,
        Err(e) => return e.reply(),
    };
    let (reply, answer) = oneshot::channel();
    let command = SchedulerCommand::Get {
        id: id.clone(),
        reply,
    };
    match ask(api, command, answer).await {
        Ok(Some(record)) => json_reply(StatusCode::OK, &record),
        Ok(None) => not_found(id.as_str()).reply(),
        Err(e) => e.reply(),
    }
}

/// `DELETE /v1/captures/{id}`: stops the capture and answers with its final record.
pub async fn stop(api: &Api, id: &str) -> Reply {
    let id = match capture_id(id) {
        Ok(id) => id,
        Err(e) => return e.reply(),
    };
    let (reply, answer) = oneshot::channel();
    match ask(api, SchedulerCommand::Stop { id, reply }, answer).await {
        Ok(Ok(record)) => json_reply(StatusCode::OK, &record),
        Ok(Err(e)) => ApiError::from(&e).reply(),
        Err(e) => e.reply(),
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "capture_not_found",
        format!("there is no capture {id}"),
    )
}

/// An id from the path; one that cannot be a capture id names no capture.
fn capture_id(id: &str) -> Result<CaptureId, ApiError> {
    CaptureId::parse(id)
        .map_err(|_| not_found(&format!("{:?}", id.chars().take(80).collect::<String>())))
}
