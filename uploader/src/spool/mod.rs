//! The spool: encrypted capture segments on their way to the store.
//!
//! # Invariants
//!
//! 1. Plaintext packets never touch the disk. A segment is encrypted to the research team's age
//!    recipients as it is written; the agent holds no identity that could decrypt it.
//! 2. A file named `<seq>.pcap.age` is *sealed*: complete, fsynced, and renamed into place with
//!    the directory fsynced after. Nothing may lose a sealed segment until the store has
//!    confirmed it; only the reaper deletes sealed files.
//! 3. A file named `<seq>.pcap.age.partial` is being written by a live capture, or is the
//!    remains of a crash. It is never uploaded.
//!
//! # On-disk format
//!
//! ```text
//! <spool_dir>/<capture_id>/                capture_id: an agent-generated UUID v7
//!     000001.pcap.age.partial              open segment (age stream, not finished)
//!     000001.pcap.age                      sealed segment: an age file whose plaintext is a
//!                                          pcap file (nanosecond timestamps)
//!     sessions.json.age                    the capture's session records (JSON lines),
//!                                          sealed when the capture ends
//! ```
//!
//! # After a crash
//!
//! - during a segment's write: its `.partial` is incomplete (no final age chunk). At start,
//!   [`recover`] removes every `.partial` and reports it, so the capture's record counts it as
//!   lost. The segments sealed before it are untouched.
//! - between fsync and rename: the same; the data was not yet sealed.
//! - between rename and the directory fsync: the rename may or may not survive; either the
//!   sealed file exists (complete, since its data was fsynced first) or the `.partial` does and
//!   is discarded as above.
//! - after sealing: the segment is in the spool and waits for upload.

pub mod journal;
mod recover;
mod segment;
mod sink;

pub use recover::{Discarded, recover};
pub use segment::{SealedSegment, SegmentWriter};
pub use sink::SpoolFile;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use pcap_protocol::ids::check_id;

use crate::error::SpoolError;
use crate::reaper::SpoolGate;
pub use journal::{Entry, Journal, State};

/// Suffix of a sealed segment.
pub const SEALED_SUFFIX: &str = ".pcap.age";
/// Suffix of a segment being written.
pub const PARTIAL_SUFFIX: &str = ".pcap.age.partial";
/// Suffix of any file being written.
pub const PARTIAL: &str = ".partial";
/// Stem of a capture's session records (`sessions.json.age`: JSON lines, encrypted).
pub const SESSIONS_STEM: &str = "sessions.json";
/// The manifest's name in the journal and the store (written last).
pub const MANIFEST: &str = "manifest.json";
/// The manifest's base in the spool: what the agent knows of the capture when it ends (no
/// packet content, no session field); the uploader adds the files' sizes and digests.
pub const MANIFEST_BASE: &str = "capture.json";

/// Where segments are written, and to whom they are encrypted.
#[derive(Clone)]
pub struct Spool {
    dir: PathBuf,
    recipients: Vec<age::x25519::Recipient>,
    journal: Option<Arc<Journal>>,
    gate: Option<SpoolGate>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("recipients", &self.recipients.len())
            .finish()
    }
}

impl Spool {
    /// A spool in `dir`, encrypting to `recipients` (`age1...`).
    pub fn new(dir: impl Into<PathBuf>, recipients: &[String]) -> Result<Self, SpoolError> {
        let recipients = recipients
            .iter()
            .map(|r| {
                age::x25519::Recipient::from_str(r).map_err(|_| SpoolError::Recipient {
                    recipient: r.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if recipients.is_empty() {
            return Err(SpoolError::NoRecipient);
        }
        Ok(Spool {
            dir: dir.into(),
            recipients,
            journal: None,
            gate: None,
        })
    }

    /// Records every file's state in `journal` from now on.
    pub fn with_journal(mut self, journal: Arc<Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Refuses new files while the reaper says the spool is full.
    pub fn with_gate(mut self, gate: SpoolGate) -> Self {
        self.gate = Some(gate);
        self
    }

    fn check_room(&self, dir: &Path) -> Result<(), SpoolError> {
        let refusal = self
            .gate
            .as_ref()
            .and_then(|g| g.refusal(self.journal.as_deref()));
        match refusal {
            Some(why) => Err(SpoolError::DiskFull {
                path: dir.to_owned(),
                source: std::io::Error::other(why),
            }),
            None => Ok(()),
        }
    }

    pub fn journal(&self) -> Option<&Arc<Journal>> {
        self.journal.as_ref()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of one capture's segments.
    pub fn capture_dir(&self, capture_id: &str) -> Result<PathBuf, SpoolError> {
        check_id(capture_id, 64).map_err(|reason| SpoolError::BadId {
            id: capture_id.to_owned(),
            reason,
        })?;
        Ok(self.dir.join(capture_id))
    }

    /// Starts segment `seq` of `capture_id`.
    pub fn create(&self, capture_id: &str, seq: u32) -> Result<SegmentWriter, SpoolError> {
        let dir = self.capture_dir(capture_id)?;
        self.check_room(&dir)?;
        SegmentWriter::create(
            &dir,
            capture_id,
            &format!("{}.pcap", segment_stem(seq)),
            seq,
            &self.recipients,
            self.journal.clone(),
        )
    }

    /// Starts the session records file of `capture_id` (sealed as `sessions.json.age`).
    pub fn create_sessions(&self, capture_id: &str) -> Result<SegmentWriter, SpoolError> {
        let dir = self.capture_dir(capture_id)?;
        SegmentWriter::create(
            &dir,
            capture_id,
            SESSIONS_STEM,
            0,
            &self.recipients,
            self.journal.clone(),
        )
    }
}

/// The file name of segment `seq`, without suffix.
pub fn segment_stem(seq: u32) -> String {
    format!("{seq:06}")
}
