//! Where a capture's files are written, and to whom they are encrypted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use age::x25519::Recipient;
use pcap_protocol::{CaptureId, FileName};

use crate::checksum::Checksum;
use crate::error::SpoolError;
use crate::gate::SpoolGate;
use crate::journal::Journal;
use crate::segment::SegmentWriter;

/// A spool directory, its recipients, and (in the agent) its journal and admission gate.
#[derive(Clone)]
pub struct Spool {
    dir: PathBuf,
    recipients: Vec<Recipient>,
    journal: Option<Arc<Journal>>,
    gate: Option<SpoolGate>,
    checksum: Checksum,
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
    /// A spool in `dir`, encrypting to `recipients`.
    pub fn new(dir: impl Into<PathBuf>, recipients: Vec<Recipient>) -> Result<Self, SpoolError> {
        if recipients.is_empty() {
            return Err(SpoolError::NoRecipient);
        }
        Ok(Spool {
            dir: dir.into(),
            recipients,
            journal: None,
            gate: None,
            checksum: Checksum::default(),
        })
    }

    /// Gives every file this checksum at sealing (CRC-64/NVME unless told otherwise).
    pub fn with_checksum(mut self, checksum: Checksum) -> Self {
        self.checksum = checksum;
        self
    }

    /// Records every file's state in `journal` from now on.
    pub fn with_journal(mut self, journal: Arc<Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Refuses new segments while the gate says the spool is full.
    pub fn with_gate(mut self, gate: SpoolGate) -> Self {
        self.gate = Some(gate);
        self
    }

    pub fn journal(&self) -> Option<&Arc<Journal>> {
        self.journal.as_ref()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of one capture's files.
    pub fn capture_dir(&self, capture_id: &CaptureId) -> PathBuf {
        self.dir.join(capture_id.as_str())
    }

    /// Starts segment `seq` of `capture_id`, if the gate admits it.
    pub fn create(&self, capture_id: &CaptureId, seq: u32) -> Result<SegmentWriter, SpoolError> {
        let dir = self.capture_dir(capture_id);
        if let Some(why) = self
            .gate
            .as_ref()
            .and_then(|g| g.refusal(self.journal.as_deref()))
        {
            return Err(SpoolError::Full { dir, why });
        }
        SegmentWriter::create(
            &dir,
            capture_id,
            FileName::segment(seq),
            seq,
            &self.recipients,
            self.checksum,
            self.journal.clone(),
        )
    }

    /// Starts the session records file of `capture_id` (sealed as `sessions.json.age`). It is
    /// admitted whatever the gate says: the capture's own records are small and end it.
    pub fn create_sessions(&self, capture_id: &CaptureId) -> Result<SegmentWriter, SpoolError> {
        SegmentWriter::create(
            &self.capture_dir(capture_id),
            capture_id,
            FileName::sessions(),
            0,
            &self.recipients,
            self.checksum,
            self.journal.clone(),
        )
    }
}
