//! JSON responses and the error shape every endpoint uses:
//! `{"error": {"code": "filter_invalid", "message": "..."}}`.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use pcap_protocol::RefusalCode;
use serde::Serialize;

use super::api::{ErrorBody, ErrorDetail, ErrorDetails};
use crate::captures::{StartRefused, StopError};

pub type Reply = Response<Full<Bytes>>;

/// An error answer: HTTP status, a stable code for scripts, a message for people.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra structured detail (the list of config problems).
    pub details: Option<ErrorDetails>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// The answer when the task behind a request has stopped (the agent is shutting down).
    pub fn shutting_down() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the agent is shutting down",
        )
    }

    pub fn with_details(mut self, details: ErrorDetails) -> Self {
        self.details = Some(details);
        self
    }

    pub fn reply(&self) -> Reply {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
                details: self.details.clone(),
            },
        };
        json_reply(self.status, &body)
    }
}

impl From<&StartRefused> for ApiError {
    /// The domain's refusal as an answer: its code, its message, and the status that fits.
    fn from(refused: &StartRefused) -> Self {
        let status = match refused.code() {
            RefusalCode::NotAuthorized => StatusCode::FORBIDDEN,
            RefusalCode::TooManyCaptures => StatusCode::CONFLICT,
            RefusalCode::SpoolFull => StatusCode::INSUFFICIENT_STORAGE,
            RefusalCode::CaptureFailed => StatusCode::INTERNAL_SERVER_ERROR,
            RefusalCode::InvalidRequest
            | RefusalCode::BadSignature
            | RefusalCode::WrongDevice
            | RefusalCode::RequestExpired
            | RefusalCode::InterfaceNotAllowed
            | RefusalCode::InterfaceNotFound
            | RefusalCode::FilterInvalid
            | RefusalCode::LimitExceedsCeiling => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, refused.code().as_str(), refused.to_string())
    }
}

impl From<&StopError> for ApiError {
    fn from(e: &StopError) -> Self {
        match e {
            StopError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "capture_not_found", e.to_string())
            }
            StopError::NotRunning(_) => {
                ApiError::new(StatusCode::CONFLICT, "capture_not_running", e.to_string())
            }
        }
    }
}

/// A JSON body with a trailing newline.
pub fn json_reply<T: Serialize>(status: StatusCode, body: &T) -> Reply {
    let mut bytes = serde_json::to_vec_pretty(body).unwrap_or_default();
    bytes.push(b'\n');
    let mut reply = Response::new(Full::new(Bytes::from(bytes)));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    reply
}

/// A plain-text body.
pub fn text_reply(status: StatusCode, content_type: &'static str, body: String) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    reply
}
