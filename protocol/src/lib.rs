//! The documents that cross a trust boundary, and the keys that sign them.
//!
//! # Layout
//!
//! - [`ids`]: validated identifiers (device serials, document ids). Only these ever become part of
//!   a store key or a local path.
//! - [`keys`]: Ed25519 key files (PEM, PKCS#8 and SPKI) and key ids.
//! - [`envelope`]: the signed envelope `{payload, key_id, signature}` and strict verification.
//! - [`authorization`]: the customer's `Grant` and `Revocation` documents and the authorization
//!   period (`1m`, `3m`, `unlimited`).
//! - [`request`]: capture requests (local over the control socket, signed from the store).
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
pub mod envelope;
pub mod error;
pub mod ids;
pub mod keys;
pub mod request;
pub mod units;

pub use authorization::{AuthorizationDocument, Grant, Period, Revocation, Validity};
pub use envelope::Envelope;
pub use error::{KeyError, VerifyError};
pub use ids::Serial;
pub use keys::{KeyId, SigningKey, VerifyKey, VerifyKeys};
pub use request::{CaptureRequest, Reason, RequestLimits};
