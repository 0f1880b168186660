//! Reading and verifying the grant file. Changes to it are noticed with
//! [`crate::fsutil::watch_file`].

use std::path::Path;

use pcap_protocol::envelope::MAX_ENVELOPE_LEN;
use pcap_protocol::{AuthorizationDocument, Serial, VerifyKeys};

use crate::fsutil::read_limited;

/// What was found at the grant source.
#[derive(Debug)]
pub enum Reading {
    /// No document: the file does not exist.
    Missing(String),
    /// A verified document for this device, with the SHA-256 of its signed payload.
    Document {
        doc: AuthorizationDocument,
        digest: String,
    },
    /// A document that is unreadable or fails verification.
    Refused(String),
}

/// Reads and verifies the grant file at `path`.
pub fn read_grant(path: &Path, keys: &VerifyKeys, serial: &Serial) -> Reading {
    let bytes = match read_limited(path, MAX_ENVELOPE_LEN) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Reading::Missing(format!("there is no grant file at {}", path.display()));
        }
        Err(e) => {
            return Reading::Refused(format!(
                "cannot read the grant file {}: {e}",
                path.display()
            ));
        }
    };
    match AuthorizationDocument::verify_with_digest(&bytes, keys, serial) {
        Ok((doc, digest)) => Reading::Document { doc, digest },
        Err(e) => Reading::Refused(format!("grant file {}: {e}", path.display())),
    }
}
