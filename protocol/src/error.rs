//! Errors for documents and keys. Each variant says what was wrong, so an operator reading the
//! agent's log or the portal's output knows which document or key to fix.

use std::path::PathBuf;

/// Why a signed document was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the envelope is not valid JSON of the form {{payload, key_id, signature}}: {source}")]
    Envelope { source: serde_json::Error },
    #[error("the envelope's {field} is not valid base64: {source}")]
    Base64 {
        field: &'static str,
        source: base64::DecodeError,
    },
    #[error("the envelope's key_id {key_id:?} is not 64 lowercase hex digits")]
    MalformedKeyId { key_id: String },
    #[error(
        "the document is signed by key {key_id}, which is not among the configured verify keys"
    )]
    UnknownKey { key_id: String },
    #[error(
        "the signature does not verify under key {key_id}: the document was altered or signed by another key"
    )]
    BadSignature { key_id: String },
    #[error("the document is for device {found:?}, but this device is {expected:?}")]
    SerialMismatch { expected: String, found: String },
    #[error("the document is inconsistent: {reason}")]
    Inconsistent { reason: String },
    #[error(transparent)]
    Document(#[from] crate::schema::DocumentError),
}

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {} is not a PEM file: {source}", path.display())]
    Pem {
        path: PathBuf,
        source: pem::PemError,
    },
    #[error("key file {} holds a {found:?} block, expected {expected:?}", path.display())]
    WrongBlock {
        path: PathBuf,
        expected: &'static str,
        found: String,
    },
    #[error("key file {} does not hold an Ed25519 key: {reason}", path.display())]
    NotEd25519 { path: PathBuf, reason: String },
    #[error("cannot generate a key: the system random source failed")]
    Random,
}
