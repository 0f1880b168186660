//! The agent's answer to a remote request, `devices/<serial>/results/<request_id>.json`:
//! `accepted` with the capture id, or `refused` with a [`RefusalCode`] and the reason; when the
//! capture ends the same document is rewritten with its final state, stop reason and counters.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::capture::{CaptureStats, StopReason};
use crate::ids::{CaptureId, RequestId, Serial};
use crate::refusal::{Refusal, RefusalCode};
use crate::schema::{Document, Schema};

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultState {
    /// A capture runs for it.
    Accepted,
    /// No capture ran; `code` and `reason` say why.
    Refused,
    /// Its capture ended normally.
    Stopped,
    /// Its capture ended with an error.
    Failed,
}

impl ResultState {
    /// Whether nothing more will happen to the request.
    pub fn is_final(self) -> bool {
        self != ResultState::Accepted
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestResult {
    #[serde(default)]
    pub schema: Schema,
    pub request_id: RequestId,
    pub serial: Serial,
    pub state: ResultState,
    /// Refused: why, for scripts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<RefusalCode>,
    /// Refused: why, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_id: Option<CaptureId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_filter: Option<String>,
    /// A request scoped to a tunnel: its filter, applied to the frames inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<CaptureStats>,
    /// Segments sealed, and lost to a crash, by the capture's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments_lost: Option<u64>,
    pub updated_at: Timestamp,
}

impl Document for RequestResult {
    const KIND: &'static str = "request result";
    const SCHEMA: Schema = Schema::V1_0;
}

impl RequestResult {
    fn new(request_id: RequestId, serial: Serial, state: ResultState, now: Timestamp) -> Self {
        RequestResult {
            schema: Self::SCHEMA,
            request_id,
            serial,
            state,
            code: None,
            reason: None,
            capture_id: None,
            effective_filter: None,
            inner_filter: None,
            started_at: None,
            ended_at: None,
            stop_reason: None,
            error: None,
            stats: None,
            segments: None,
            segments_lost: None,
            updated_at: now,
        }
    }

    /// A capture started for the request.
    pub fn accepted(
        request_id: RequestId,
        serial: Serial,
        capture_id: CaptureId,
        effective_filter: String,
        inner_filter: Option<String>,
        now: Timestamp,
    ) -> Self {
        RequestResult {
            capture_id: Some(capture_id),
            effective_filter: Some(effective_filter),
            inner_filter,
            ..Self::new(request_id, serial, ResultState::Accepted, now)
        }
    }

    /// The request was refused.
    pub fn refused(
        request_id: RequestId,
        serial: Serial,
        refusal: Refusal,
        now: Timestamp,
    ) -> Self {
        RequestResult {
            code: Some(refusal.code),
            reason: Some(refusal.message),
            ..Self::new(request_id, serial, ResultState::Refused, now)
        }
    }

    /// The request's capture ended (`failed`: with an error).
    pub fn ended(request_id: RequestId, serial: Serial, failed: bool, now: Timestamp) -> Self {
        let state = if failed {
            ResultState::Failed
        } else {
            ResultState::Stopped
        };
        Self::new(request_id, serial, state, now)
    }
}
