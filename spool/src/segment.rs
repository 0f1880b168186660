//! One segment: an age stream written to `<seq>.pcap.age.partial`, sealed by finishing the
//! stream, fsyncing, renaming to `<seq>.pcap.age` and fsyncing the directory.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use age::stream::StreamWriter;
use jiff::Timestamp;
use pcap_protocol::{CaptureId, FileName};
use serde::Serialize;

use crate::PARTIAL;
use crate::checksum::Checksum;
use crate::error::SpoolError;
use crate::journal::{Entry, Journal, State};
use crate::sink::SpoolFile;

/// A sealed segment, as announced to the uploader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SealedSegment {
    pub capture_id: CaptureId,
    /// Segment number; 0 for the session records file.
    pub seq: u32,
    /// File name in the capture's spool directory (`000001.pcap.age`, `sessions.json.age`).
    pub name: FileName,
    pub path: PathBuf,
    /// Bytes of the encrypted file.
    pub size: u64,
    /// The checksum of the encrypted file, as written: its kind and value (hex).
    pub checksum: Checksum,
    pub checksum_value: String,
    /// Bytes of the pcap inside.
    pub plaintext_bytes: u64,
    pub sealed_at: Timestamp,
}

/// A segment being written. Dropping it without [`SegmentWriter::seal`] leaves the `.partial`
/// file, which is never uploaded; [`SegmentWriter::abandon`] removes it.
pub struct SegmentWriter {
    stream: Option<StreamWriter<SpoolFile>>,
    capture_id: CaptureId,
    seq: u32,
    /// File name once sealed.
    name: FileName,
    dir: PathBuf,
    partial: PathBuf,
    plaintext_bytes: u64,
    checksum: Checksum,
    journal: Option<Arc<Journal>>,
}

impl std::fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("partial", &self.partial)
            .field("plaintext_bytes", &self.plaintext_bytes)
            .finish()
    }
}

impl SegmentWriter {
    pub(crate) fn create(
        dir: &Path,
        capture_id: &CaptureId,
        name: FileName,
        seq: u32,
        recipients: &[age::x25519::Recipient],
        checksum: Checksum,
        journal: Option<Arc<Journal>>,
    ) -> Result<Self, SpoolError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| SpoolError::io("create the spool directory", dir, e))?;
        let partial = dir.join(format!("{name}{PARTIAL}"));
        if let Some(j) = &journal {
            j.put(Entry::new(capture_id, &name, State::Open))
                .map_err(|e| SpoolError::io("journal", &partial, e))?;
        }
        let file = SpoolFile::create(&partial, checksum)
            .map_err(|e| SpoolError::io("create", &partial, e))?;
        let encryptor =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| {
                    SpoolError::io("encrypt", &partial, io::Error::other(e.to_string()))
                })?;
        let stream = encryptor
            .wrap_output(file)
            .map_err(|e| SpoolError::io("write", &partial, e))?;
        Ok(SegmentWriter {
            stream: Some(stream),
            capture_id: capture_id.clone(),
            seq,
            name,
            dir: dir.to_owned(),
            partial,
            plaintext_bytes: 0,
            checksum,
            journal,
        })
    }

    /// Plaintext bytes written so far.
    pub fn plaintext_bytes(&self) -> u64 {
        self.plaintext_bytes
    }

    /// Appends plaintext; it is encrypted before it reaches the file.
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), SpoolError> {
        let stream = self.stream.as_mut().ok_or_else(|| closed(&self.partial))?;
        stream
            .write_all(data)
            .map_err(|e| SpoolError::io("write", &self.partial, e))?;
        self.plaintext_bytes += data.len() as u64;
        Ok(())
    }

    /// Finishes the age stream, fsyncs, and renames the file into place: the segment is sealed.
    pub fn seal(mut self) -> Result<SealedSegment, SpoolError> {
        let stream = self.stream.take().ok_or_else(|| closed(&self.partial))?;
        let partial = &self.partial;
        let step = |step: &'static str| move |e| SpoolError::io(step, partial, e);
        let sink = stream.finish().map_err(step("finish"))?;
        let (file, size, value) = sink.finish().map_err(step("write"))?;
        file.sync_all().map_err(step("fsync"))?;
        drop(file);
        let sealed = self.dir.join(self.name.as_str());
        fs::rename(&self.partial, &sealed).map_err(step("rename"))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| SpoolError::io("fsync", &self.dir, e))?;
        let sealed_at = Timestamp::now();
        if let Some(j) = &self.journal {
            j.update(&self.capture_id, &self.name, |e| {
                e.state = State::Sealed;
                e.size = size;
                e.sealed_at = Some(sealed_at);
                e.set_checksum(self.checksum, value.clone());
            })
            .map_err(|e| SpoolError::io("journal", &sealed, e))?;
        }
        Ok(SealedSegment {
            capture_id: self.capture_id.clone(),
            seq: self.seq,
            name: self.name.clone(),
            path: sealed,
            size,
            checksum: self.checksum,
            checksum_value: value,
            plaintext_bytes: self.plaintext_bytes,
            sealed_at,
        })
    }

    /// Gives up on this segment and removes its `.partial` (after a write failure: what it
    /// holds was never sealed and cannot be).
    pub fn abandon(mut self) {
        self.stream = None;
        let _ = fs::remove_file(&self.partial);
        if let Some(j) = &self.journal {
            let _ = j.update(&self.capture_id, &self.name, |e| {
                e.state = State::Lost;
                e.reason = Some("the write failed before it was sealed".to_owned());
            });
        }
    }
}

fn closed(path: &Path) -> SpoolError {
    SpoolError::io(
        "write",
        path,
        io::Error::other("the segment is already closed"),
    )
}
