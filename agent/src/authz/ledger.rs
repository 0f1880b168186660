//! The highest document sequence ever accepted, persisted in the state directory so that an
//! older (validly signed) grant written back later is refused, across restarts too.
//!
//! ```text
//! <state_dir>/authorization.json  {"sequence": 7, "kind": "grant", "digest": "<sha-256 hex of the payload>"}
//! ```
//!
//! Written with [`write_atomic`]: a crash leaves the old or the new record. A document with the
//! same sequence is accepted only if it is the same document (same digest).

use std::path::{Path, PathBuf};

use pcap_protocol::AuthorizationDocument;
use serde::{Deserialize, Serialize};

use crate::fsutil::{read_limited, write_atomic};

const FILE_NAME: &str = "authorization.json";
const MAX_FILE_LEN: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Grant,
    Revocation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    sequence: u64,
    kind: Kind,
    digest: String,
}

/// The persisted record of the highest accepted document.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    highest: Option<Record>,
}

impl Ledger {
    /// Opens the ledger in `state_dir`. A missing file is an empty ledger; an unreadable or
    /// corrupt one is an error, since guessing would reopen the door to rolled-back grants.
    pub fn open(state_dir: &Path) -> Result<Self, String> {
        let path = state_dir.join(FILE_NAME);
        let highest = match read_limited(&path, MAX_FILE_LEN) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "the authorization ledger {} is corrupt ({e}); restore it from a backup, or remove it to accept any validly signed grant again",
                    path.display()
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read the authorization ledger {}: {e}", path.display())),
        };
        Ok(Ledger { path, highest })
    }

    /// Refuses `doc` if an equal or newer document was accepted before (same document again is
    /// fine).
    pub fn check(&self, doc: &AuthorizationDocument, digest: &str) -> Result<(), String> {
        let Some(h) = &self.highest else {
            return Ok(());
        };
        let seq = doc.sequence();
        if seq < h.sequence {
            return Err(format!(
                "the document has sequence {seq}, older than sequence {} accepted before: a rolled-back document is refused",
                h.sequence
            ));
        }
        if seq == h.sequence && digest != h.digest {
            return Err(format!(
                "the document reuses sequence {seq} with different content; every new document needs a higher sequence"
            ));
        }
        Ok(())
    }

    /// Records `doc` as the highest accepted document (persisting it first if it is new).
    pub fn record(&mut self, doc: &AuthorizationDocument, digest: &str) -> Result<(), String> {
        let record = Record {
            sequence: doc.sequence(),
            kind: match doc {
                AuthorizationDocument::Grant(_) => Kind::Grant,
                AuthorizationDocument::Revocation(_) => Kind::Revocation,
            },
            digest: digest.to_owned(),
        };
        if self.highest.as_ref() == Some(&record) {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&record).unwrap_or_default();
        write_atomic(&self.path, &bytes).map_err(|e| {
            format!(
                "cannot persist the authorization ledger {}: {e}",
                self.path.display()
            )
        })?;
        self.highest = Some(record);
        Ok(())
    }

    /// The highest sequence ever accepted: the next document must be above it.
    pub fn highest_sequence(&self) -> Option<u64> {
        self.highest.as_ref().map(|r| r.sequence)
    }

    /// The sequence of the highest accepted document if it was a revocation.
    pub fn revoked_at(&self) -> Option<u64> {
        self.highest
            .as_ref()
            .filter(|r| r.kind == Kind::Revocation)
            .map(|r| r.sequence)
    }
}
