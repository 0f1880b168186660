//! Reading and verifying the grant: from a file (changes are noticed with
//! [`crate::fsutil::watch_file`]) or from the store's `devices/<serial>/grant.json` (polled).

use std::path::Path;

use pcap_protocol::envelope::MAX_ENVELOPE_LEN;
use pcap_protocol::{AuthorizationDocument, Serial, VerifyKeys};
use pcap_uploader::store::Store;

use crate::fsutil::read_limited;

/// What was found at the grant source.
#[derive(Debug)]
pub enum Reading {
    /// No document: the file or object does not exist.
    Missing(String),
    /// A verified document for this device, with the SHA-256 of its signed payload.
    Document {
        doc: AuthorizationDocument,
        digest: String,
    },
    /// A document that is unreadable or fails verification.
    Refused(String),
    /// The store could not be asked (network, server): nothing is known, nothing changes.
    Unavailable(String),
}

fn verify(bytes: &[u8], keys: &VerifyKeys, serial: &Serial, origin: &str) -> Reading {
    match AuthorizationDocument::verify_with_digest(bytes, keys, serial) {
        Ok((doc, digest)) => Reading::Document { doc, digest },
        Err(e) => Reading::Refused(format!("{origin}: {e}")),
    }
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
    verify(
        &bytes,
        keys,
        serial,
        &format!("grant file {}", path.display()),
    )
}

/// The store key of a device's grant.
pub fn grant_key(store: &Store, serial: &Serial) -> object_store::path::Path {
    store.key(&pcap_protocol::store::keys::grant(serial))
}

/// Fetches and verifies `devices/<serial>/grant.json` from the store.
pub async fn fetch_grant(store: &Store, keys: &VerifyKeys, serial: &Serial) -> Reading {
    let key = grant_key(store, serial);
    // The URL already names the store's prefix: add the key relative to it.
    let origin = format!(
        "{}/{}",
        store.url().trim_end_matches('/'),
        pcap_protocol::store::keys::grant(serial)
    );
    match store.get_limited(&key, MAX_ENVELOPE_LEN).await {
        Ok(Some(bytes)) => verify(&bytes, keys, serial, &format!("grant {origin}")),
        Ok(None) => Reading::Missing(format!("there is no grant at {origin}")),
        Err(pcap_uploader::store::GetError::TooLarge(n)) => Reading::Refused(format!(
            "grant {origin} is {n} bytes, more than a grant can be ({MAX_ENVELOPE_LEN})"
        )),
        Err(pcap_uploader::store::GetError::Store(e)) => {
            Reading::Unavailable(format!("cannot read the grant {origin}: {e}"))
        }
        Err(pcap_uploader::store::GetError::Document(e)) => {
            Reading::Refused(format!("grant {origin}: {e}"))
        }
    }
}
