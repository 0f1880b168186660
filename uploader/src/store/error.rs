//! Why the store could not be opened, an upload failed, or a document could not be read.

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the store {url}: {message}")]
pub struct StoreError {
    pub url: String,
    pub message: String,
}

/// Why an upload failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// Retrying cannot help until an operator fixes something (credentials, bucket, policy).
    #[error("{0}")]
    Permanent(String),
    /// Worth another try later (network, server error, throttling).
    #[error("{0}")]
    Transient(String),
    /// The spool file no longer holds what was sealed; it cannot be uploaded as good.
    #[error("{0}")]
    Corrupted(String),
}

impl UploadError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, UploadError::Permanent(_))
    }
}

pub(super) fn classify(context: &str, e: object_store::Error) -> UploadError {
    use object_store::Error as E;
    let text = format!("{context}: {e}");
    match e {
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => UploadError::Permanent(format!(
            "{text} (check the store credentials and the bucket policy)"
        )),
        E::NotFound { .. } => {
            UploadError::Permanent(format!("{text} (check that the bucket exists)"))
        }
        _ if text.contains("NoSuchBucket")
            || text.contains("InvalidAccessKeyId")
            || text.contains("SignatureDoesNotMatch") =>
        {
            UploadError::Permanent(format!(
                "{text} (check the store credentials and the bucket)"
            ))
        }
        _ => UploadError::Transient(text),
    }
}

/// Why a document could not be read from the store.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    #[error("the object is larger than {0} bytes")]
    TooLarge(u64),
    #[error("{0}")]
    Store(String),
    #[error(transparent)]
    Document(#[from] pcap_protocol::DocumentError),
}

/// What an upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub size: u64,
    /// Whether the bytes sent were read and found to match the checksum of their sealing
    /// (false for a hard link, which reads nothing, and for documents).
    pub verified: bool,
}
