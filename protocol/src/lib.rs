//! The documents that cross a trust boundary, and the keys that sign them.
//!
//! # Layout
//!
//! - [`ids`]: validated identifiers (device serials, capture and request ids, file names). Only
//!   these ever become part of a store key or a local path.
//! - [`schema`]: the schema version every document carries, and reading that refuses a newer
//!   major version.
//! - [`keys`]: Ed25519 key files (PEM, PKCS#8 and SPKI) and key ids.
//! - [`envelope`]: the signed envelope `{payload, key_id, signature}` and strict verification.
//! - [`authorization`]: the customer's `Grant` and `Revocation` documents and the authorization
//!   period (`1m`, `3m`, `unlimited`).
//! - [`request`]: capture requests (local over the control socket, signed from the store).
//! - [`capture`]: a capture's state, origin, limits, counters and stop reason, as reported.
//! - [`refusal`]: the one set of codes for refused requests.
//! - [`doorbell`]: the MQTT topic that tells a device to look at the store now.
//! - [`session`]: the session vocabulary: the twelve fields, application names, and the
//!   record of a session that `sessions.json` holds.
//! - [`store`]: the store's key layout and the documents the agent writes there: heartbeat,
//!   request results, manifests.
//! - [`units`]: durations and sizes as people write them.
//! - [`error`]: typed errors for everything that can be wrong with a document or key.
//!
//! # Where the data goes
//!
//! The customer's administrator signs a grant with `pcap-portal`; it travels as an envelope
//! through a file or the store; the agent verifies it here, then checks serial and sequence
//! before its authorization state machine uses it. This crate does no I/O beyond reading the key
//! files it is handed.

#![forbid(unsafe_code)]

pub mod authorization;
pub mod capture;
pub mod doorbell;
pub mod envelope;
pub mod error;
pub mod ids;
pub mod keys;
pub mod refusal;
pub mod request;
pub mod schema;
pub mod session;
pub mod store;
pub mod units;

pub use authorization::{AuthState, AuthorizationDocument, Grant, Period, Revocation, Validity};
pub use capture::{CaptureState, CaptureStats, EffectiveLimits, Origin, StopReason};
pub use envelope::Envelope;
pub use error::{KeyError, VerifyError};
pub use ids::{CaptureId, FileName, IdError, RequestId, Serial};
pub use keys::{KeyId, SigningKey, VerifyKey, VerifyKeys};
pub use refusal::{Refusal, RefusalCode};
pub use request::{CaptureRequest, Reason, RequestLimits, TunnelKind, TunnelScope};
pub use schema::{Document, DocumentError, Schema};
