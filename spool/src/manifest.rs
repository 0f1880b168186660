//! The capture's manifest on its way to the store. When a capture ends, the agent writes the
//! manifest's base (what it knows of the capture) into the capture's spool directory as
//! `capture.json` and journals it as `manifest.json`, sealed. When every other file of the
//! capture has settled, the uploader completes it from the journal (each file's state, size and
//! SHA-256 at sealing) and uploads it last.

use std::path::Path;

use jiff::Timestamp;
use pcap_protocol::store::{FileState, Manifest, ManifestFile};
use pcap_protocol::{CaptureId, FileName, schema};

use crate::MANIFEST_BASE;
use crate::fsio::{read_limited, write_atomic};
use crate::journal::{Entry, Journal, State};

/// Largest manifest base read back.
const MAX_BASE_LEN: usize = 4 << 20;

/// Writes `base` (a manifest without files) beside the capture's files and queues the manifest
/// for upload.
pub fn write_base(
    spool_dir: &Path,
    journal: &Journal,
    base: &Manifest,
    now: Timestamp,
) -> std::io::Result<()> {
    let dir = spool_dir.join(base.capture_id.as_str());
    std::fs::create_dir_all(&dir)?;
    let bytes = schema::encode(base);
    write_atomic(&dir.join(MANIFEST_BASE), &bytes)?;
    let mut entry = Entry::new(&base.capture_id, &FileName::manifest(), State::Sealed);
    entry.size = bytes.len() as u64;
    entry.sealed_at = Some(now);
    journal.put(entry)
}

/// The manifest of `capture` as it is uploaded: its base with every other file's state, size
/// and SHA-256 from the journal.
pub fn complete(
    spool_dir: &Path,
    journal: &Journal,
    capture: &CaptureId,
    now: Timestamp,
) -> Result<Manifest, String> {
    let path = spool_dir.join(capture.as_str()).join(MANIFEST_BASE);
    let bytes = read_limited(&path, MAX_BASE_LEN)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut manifest: Manifest =
        schema::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    manifest.files = journal
        .capture(capture)
        .into_iter()
        .filter(|e| !e.name.is_manifest())
        .map(file_of)
        .collect();
    manifest.completed_at = Some(now);
    Ok(manifest)
}

/// A journal entry as the manifest lists it. Uploaded is what matters to the reader, whether
/// or not the spool still has the file; the uploader completes a manifest only once every
/// other file is uploaded or lost.
fn file_of(e: Entry) -> ManifestFile {
    let (state, reason) = match e.state {
        State::Uploaded | State::Deleted => (FileState::Uploaded, e.reason),
        State::Lost => (FileState::Lost, e.reason),
        State::Open | State::Sealed | State::Uploading => (
            FileState::Lost,
            Some(format!(
                "still {} on the device when the manifest was completed",
                e.state.as_str()
            )),
        ),
    };
    ManifestFile {
        name: e.name,
        state,
        size: e.size,
        sha256: e.sha256,
        crc64nvme: e.crc64nvme,
        reason,
    }
}
