//! `/v1/captures`: start a local capture, list them, show one, stop one. The scheduler does the
//! work; these handlers parse, forward and answer.

use http::StatusCode;
use pcap_protocol::CaptureRequest;
use pcap_protocol::ids::check_id;
use tokio::sync::oneshot;

use super::Api;
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
                "invalid_request",
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
    match ask(api, command, answer).await.and_then(|r| r) {
        Ok(record) => json_reply(StatusCode::CREATED, &record),
        Err(e) => e.reply(),
    }
}

/// `GET /v1/captures`.
pub async fn list(api: &Api) -> Reply {
    let (reply, answer) = oneshot::channel();
    match ask(api, SchedulerCommand::List { reply }, answer).await {
        Ok(records) => json_reply(StatusCode::OK, &serde_json::json!({ "captures": records })),
        Err(e) => e.reply(),
    }
}

/// `GET /v1/captures/{id}`.
pub async fn get(api: &Api, id: &str) -> Reply {
    if let Err(e) = valid_id(id) {
        return e.reply();
    }
    let (reply, answer) = oneshot::channel();
    match ask(
        api,
        SchedulerCommand::Get {
            id: id.to_owned(),
            reply,
        },
        answer,
    )
    .await
    {
        Ok(Some(record)) => json_reply(StatusCode::OK, &record),
        Ok(None) => not_found(id).reply(),
        Err(e) => e.reply(),
    }
}

/// `DELETE /v1/captures/{id}`: stops the capture and answers with its final record.
pub async fn stop(api: &Api, id: &str) -> Reply {
    if let Err(e) = valid_id(id) {
        return e.reply();
    }
    let (reply, answer) = oneshot::channel();
    match ask(
        api,
        SchedulerCommand::Stop {
            id: id.to_owned(),
            reply,
        },
        answer,
    )
    .await
    .and_then(|r| r)
    {
        Ok(record) => json_reply(StatusCode::OK, &record),
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

fn valid_id(id: &str) -> Result<(), ApiError> {
    check_id(id, 64).map_err(|_| not_found(&id.chars().take(80).collect::<String>()))
}
