//! The audit trail, `audit/<entry_id>.json`: one document per change made through the portal
//! (CLI or console): who, what, when, which device, and the document's sequence. Entry ids are
//! UUIDv7, so the keys sort by time. The customer's record of what was authorized and asked.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::authorization::Period;
use crate::ids::{CaptureId, RequestId, Serial};
use crate::request::Reason;
use crate::schema::{Document, Schema};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    #[serde(default)]
    pub schema: Schema,
    pub entry_id: Uuid,
    pub time: Timestamp,
    /// Who: a console account (`alice`), or the CLI and its local user (`cli:root`).
    pub actor: String,
    pub action: AuditAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<Serial>,
    /// The sequence of the grant or revocation written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_id: Option<CaptureId>,
    /// Anything else worth keeping (a request's subject and interface, a purge's count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Document for AuditEntry {
    const KIND: &'static str = "audit entry";
    const SCHEMA: Schema = Schema::V1_0;
}

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Authorize,
    Reauthorize,
    Unauthorize,
    Request,
    DeleteCapture,
    Purge,
    /// A change the console refused: the account's role does not allow it.
    Forbidden,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Authorize => "authorize",
            AuditAction::Reauthorize => "reauthorize",
            AuditAction::Unauthorize => "unauthorize",
            AuditAction::Request => "request",
            AuditAction::DeleteCapture => "delete_capture",
            AuditAction::Purge => "purge",
            AuditAction::Forbidden => "forbidden",
        }
    }
}

impl AuditEntry {
    /// An entry for `action` by `actor`, now, with a fresh time-ordered id.
    pub fn new(actor: &str, action: AuditAction) -> Self {
        AuditEntry {
            schema: Self::SCHEMA,
            entry_id: Uuid::now_v7(),
            time: Timestamp::now(),
            actor: actor.to_owned(),
            action,
            serial: None,
            sequence: None,
            period: None,
            request_id: None,
            reason: None,
            capture_id: None,
            detail: None,
        }
    }
}
