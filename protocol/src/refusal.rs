//! Why the agent refuses a capture request. One set of codes for every way a request arrives:
//! the control socket answers with them, the request feed writes them into results, and the
//! portal shows them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A stable code for scripts; the [`Refusal`] beside it has the message for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The device is not authorized now (no grant, not yet valid, expired, revoked).
    NotAuthorized,
    /// The request itself is malformed: an id, the interface name, the subject, a missing or
    /// too distant `not_after`, a body that is not a request.
    InvalidRequest,
    /// A remote request that does not verify under the agent's request key(s).
    BadSignature,
    /// The request names another device.
    WrongDevice,
    /// The request's `not_after` has passed.
    RequestExpired,
    /// The interface is not in `capture.interfaces`.
    InterfaceNotAllowed,
    /// The host has no such interface.
    InterfaceNotFound,
    /// libpcap does not compile the filter.
    FilterInvalid,
    /// A limit is above its configured ceiling (or zero).
    LimitExceedsCeiling,
    /// `capture.max_concurrent` captures are running.
    TooManyCaptures,
    /// The spool is over its quota and only uploads can free it.
    SpoolFull,
    /// The agent could not start the capture (the device, a thread, its state directory).
    CaptureFailed,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::NotAuthorized => "not_authorized",
            RefusalCode::InvalidRequest => "invalid_request",
            RefusalCode::BadSignature => "bad_signature",
            RefusalCode::WrongDevice => "wrong_device",
            RefusalCode::RequestExpired => "request_expired",
            RefusalCode::InterfaceNotAllowed => "interface_not_allowed",
            RefusalCode::InterfaceNotFound => "interface_not_found",
            RefusalCode::FilterInvalid => "filter_invalid",
            RefusalCode::LimitExceedsCeiling => "limit_exceeds_ceiling",
            RefusalCode::TooManyCaptures => "too_many_captures",
            RefusalCode::SpoolFull => "spool_full",
            RefusalCode::CaptureFailed => "capture_failed",
        }
    }
}

impl fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A refusal: its code and what to tell the person who asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({code})")]
pub struct Refusal {
    pub code: RefusalCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: RefusalCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_written_as_their_names() {
        for code in [RefusalCode::WrongDevice, RefusalCode::LimitExceedsCeiling] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<RefusalCode>(&json).unwrap(), code);
        }
    }
}
