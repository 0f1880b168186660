//! The spool journal: the one record of each spool file's state, appended and fsynced at every
//! change, replayed at start.
//!
//! ```text
//! <spool_dir>/journal.log
//!   record  := length (u32 LE) | crc32 of payload (u32 LE) | payload (JSON, `length` bytes)
//!   payload := {"capture": "<id>", "name": "000001.pcap.age", "state": "sealed", ...}
//! ```
//!
//! A record is the whole new entry of one file. At start the log is read up to the first
//! record that is short, too long or fails its checksum: the torn tail a crash leaves; the file
//! is truncated there and the torn bytes counted. A whole record that is not a valid entry (a
//! name that is not a capture id or a file name: the journal was altered) is logged, counted
//! and passed over; the records after it still count. When the log has grown well past the
//! number of live entries it is rewritten compactly (write beside, fsync, rename).

use crate::checksum::Checksum;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;
use pcap_protocol::{CaptureId, FileName};
use serde::{Deserialize, Serialize};

/// Largest record accepted when reading the log back.
const MAX_RECORD: u32 = 64 * 1024;
/// The journal's file in the spool directory.
pub const FILE_NAME: &str = "journal.log";

/// The state of one spool file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Being written (`.partial`).
    Open,
    /// Complete and waiting for upload.
    Sealed,
    /// An upload is under way (a multipart upload id may be recorded).
    Uploading,
    /// The store has confirmed it.
    Uploaded,
    /// Gone before it was uploaded: a crash mid-write, the reaper's age or quota rule, a purge.
    Lost,
    /// Removed by the reaper after upload.
    Deleted,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Open,
        State::Sealed,
        State::Uploading,
        State::Uploaded,
        State::Lost,
        State::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Sealed => "sealed",
            State::Uploading => "uploading",
            State::Uploaded => "uploaded",
            State::Lost => "lost",
            State::Deleted => "deleted",
        }
    }
}

/// One spool file and what is known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub capture: CaptureId,
    pub name: FileName,
    pub state: State,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc64nvme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<Timestamp>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Why a file was lost or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The store's id of a multipart upload under way (to abort it after a crash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// Set while an upload is under way or was interrupted: its leftovers must be cleaned.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

impl Entry {
    /// The checksum recorded at sealing, if any.
    pub fn checksum(&self) -> Option<(Checksum, &str)> {
        match (&self.sha256, &self.crc64nvme) {
            (Some(v), _) => Some((Checksum::Sha256, v)),
            (None, Some(v)) => Some((Checksum::Crc64Nvme, v)),
            (None, None) => None,
        }
    }

    /// Records the checksum of the sealed file.
    pub fn set_checksum(&mut self, kind: Checksum, value: String) {
        match kind {
            Checksum::Sha256 => self.sha256 = Some(value),
            Checksum::Crc64Nvme => self.crc64nvme = Some(value),
        }
    }

    pub fn new(capture: &CaptureId, name: &FileName, state: State) -> Self {
        Entry {
            capture: capture.clone(),
            name: name.clone(),
            state,
            size: 0,
            sha256: None,
            crc64nvme: None,
            sealed_at: None,
            uploaded_at: None,
            attempts: 0,
            last_error: None,
            reason: None,
            upload_id: None,
            interrupted: false,
        }
    }

    /// Whether the file is a pcap segment (not the session records or the manifest).
    pub fn is_segment(&self) -> bool {
        self.name.is_segment()
    }
}

/// What replaying the log found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replay {
    pub records: u64,
    /// Bytes cut off the end (a record a crash left half-written).
    pub torn_bytes: u64,
    /// Whole records ignored because they are not an entry: their names are not a capture id
    /// and a file name (the journal was altered), or a field is not what this build reads.
    pub invalid: u64,
}

type Entries = BTreeMap<CaptureId, BTreeMap<FileName, Entry>>;

struct Inner {
    file: File,
    entries: Entries,
    records: u64,
}

/// The journal of a spool directory.
pub struct Journal {
    path: PathBuf,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, replaying it and cutting a torn tail.
    pub fn open(dir: &Path) -> std::io::Result<(Self, Replay)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut entries = Entries::new();
        let mut replay = Replay::default();
        let mut at = 0usize;
        while let Some((record, next)) = decode(&bytes, at) {
            // Names become paths the uploader reads and the reaper deletes: a record naming
            // anything but a file of a capture directory is ignored, never acted on.
            match record {
                Ok(entry) => apply(&mut entries, entry),
                Err(why) => {
                    replay.invalid += 1;
                    tracing::error!(journal = %path.display(), offset = at, error = %why, "Ignored a spool journal record that is not a valid entry.");
                }
            }
            replay.records += 1;
            at = next;
        }
        if at < bytes.len() {
            replay.torn_bytes = (bytes.len() - at) as u64;
            file.set_len(at as u64)?;
            file.sync_all()?;
            tracing::warn!(journal = %path.display(), bytes = replay.torn_bytes, "Cut a torn record off the end of the spool journal.");
        }
        file.seek(SeekFrom::End(0))?;
        let journal = Journal {
            path,
            inner: Mutex::new(Inner {
                file,
                entries,
                records: replay.records,
            }),
        };
        journal.compact_if_needed()?;
        Ok((journal, replay))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `entry` as the new state of its file (appended and fsynced before it counts).
    pub fn put(&self, entry: Entry) -> std::io::Result<()> {
        let record = encode(&entry);
        let mut inner = self.lock();
        inner.file.write_all(&record)?;
        inner.file.sync_data()?;
        inner.records += 1;
        apply(&mut inner.entries, entry);
        Ok(())
    }

    /// Bytes of sealed files not yet uploaded (or being uploaded).
    pub fn unuploaded_bytes(&self) -> u64 {
        self.lock()
            .entries
            .values()
            .flat_map(BTreeMap::values)
            .filter(|e| matches!(e.state, State::Sealed | State::Uploading))
            .map(|e| e.size)
            .sum()
    }

    /// Changes one file's entry with `change` (creating it in state `Open` if unknown).
    pub fn update(
        &self,
        capture: &CaptureId,
        name: &FileName,
        change: impl FnOnce(&mut Entry),
    ) -> std::io::Result<Entry> {
        let mut entry = self
            .get(capture, name)
            .unwrap_or_else(|| Entry::new(capture, name, State::Open));
        change(&mut entry);
        self.put(entry.clone())?;
        Ok(entry)
    }

    pub fn get(&self, capture: &CaptureId, name: &FileName) -> Option<Entry> {
        self.lock().entries.get(capture)?.get(name).cloned()
    }

    /// Every entry, by capture and name.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock()
            .entries
            .values()
            .flat_map(BTreeMap::values)
            .cloned()
            .collect()
    }

    /// The entries of one capture, by name.
    pub fn capture(&self, capture: &CaptureId) -> Vec<Entry> {
        self.lock()
            .entries
            .get(capture)
            .map(|files| files.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Rewrites the log with one record per entry when it has grown past twice the entries.
    pub fn compact_if_needed(&self) -> std::io::Result<()> {
        let mut inner = self.lock();
        let live = inner.entries.values().map(BTreeMap::len).sum::<usize>() as u64;
        if inner.records <= 2 * live + 1024 {
            return Ok(());
        }
        let tmp = self.path.with_extension("log.tmp");
        {
            let mut out = File::create(&tmp)?;
            for e in inner.entries.values().flat_map(BTreeMap::values) {
                out.write_all(&encode(e))?;
            }
            out.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        inner.file = OpenOptions::new().append(true).open(&self.path)?;
        inner.records = live;
        Ok(())
    }

    /// Forgets entries that need no more work and no more reporting (deleted after upload).
    pub fn forget_deleted(&self) {
        let mut inner = self.lock();
        for files in inner.entries.values_mut() {
            files.retain(|_, e| e.state != State::Deleted);
        }
        inner.entries.retain(|_, files| !files.is_empty());
    }
}

fn apply(entries: &mut Entries, entry: Entry) {
    entries
        .entry(entry.capture.clone())
        .or_default()
        .insert(entry.name.clone(), entry);
}

fn encode(entry: &Entry) -> Vec<u8> {
    let payload = serde_json::to_vec(entry).unwrap_or_default();
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// The record at `at`, and where the next one starts; `None` at the end or a torn record
/// (short, too long, or failing its checksum). A whole record that is not a valid entry is an
/// `Err` with the reason, and the replay goes on after it.
fn decode(bytes: &[u8], at: usize) -> Option<(Result<Entry, String>, usize)> {
    let header = bytes.get(at..at + 8)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD {
        return None;
    }
    let payload = bytes.get(at + 8..at + 8 + len as usize)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let entry = serde_json::from_slice(payload).map_err(|e| e.to_string());
    Some((entry, at + 8 + len as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c1() -> CaptureId {
        CaptureId::parse("c1").unwrap()
    }

    fn sealed(seq: u32) -> Entry {
        let mut e = Entry::new(&c1(), &FileName::segment(seq), State::Sealed);
        e.size = 1000 + u64::from(seq);
        e
    }

    #[test]
    fn entries_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path()).unwrap();
        j.put(sealed(1)).unwrap();
        j.put(sealed(2)).unwrap();
        j.update(&c1(), &FileName::segment(1), |e| e.state = State::Uploaded)
            .unwrap();
        drop(j);
        let (j, replay) = Journal::open(dir.path()).unwrap();
        assert_eq!(replay.records, 3);
        assert_eq!(
            j.get(&c1(), &FileName::segment(1)).unwrap().state,
            State::Uploaded
        );
        assert_eq!(j.capture(&c1()).len(), 2);
    }

    #[test]
    fn a_torn_tail_is_cut_and_counted_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path()).unwrap();
        j.put(sealed(1)).unwrap();
        j.put(sealed(2)).unwrap();
        drop(j);
        let path = dir.path().join(FILE_NAME);
        let full = std::fs::read(&path).unwrap();
        // A crash in the middle of writing the second record.
        std::fs::write(&path, &full[..full.len() - 7]).unwrap();
        let (j, replay) = Journal::open(dir.path()).unwrap();
        assert_eq!(replay.records, 1);
        assert!(replay.torn_bytes > 0);
        assert_eq!(j.entries().len(), 1);
        j.put(sealed(3)).unwrap();
        drop(j);
        let (j, replay) = Journal::open(dir.path()).unwrap();
        assert_eq!(
            (replay.records, replay.torn_bytes),
            (2, 0),
            "appends continue after the cut"
        );
        assert!(j.get(&c1(), &FileName::segment(3)).is_some());
    }

    #[test]
    fn a_flipped_bit_ends_the_replay_at_that_record() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path()).unwrap();
        for seq in 1..=3 {
            j.put(sealed(seq)).unwrap();
        }
        drop(j);
        let path = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        let second = encode(&sealed(1)).len();
        bytes[second + 12] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let (j, replay) = Journal::open(dir.path()).unwrap();
        assert_eq!(replay.records, 1);
        assert_eq!(j.entries().len(), 1);
    }

    #[test]
    fn a_whole_record_with_a_bad_name_is_passed_over_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path()).unwrap();
        j.put(sealed(1)).unwrap();
        drop(j);
        let path = dir.path().join(FILE_NAME);
        let payload = br#"{"capture":"..","name":"../../etc/passwd","state":"sealed"}"#;
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        bytes.extend_from_slice(payload);
        bytes.extend_from_slice(&encode(&sealed(2)));
        std::fs::write(&path, &bytes).unwrap();
        let (j, replay) = Journal::open(dir.path()).unwrap();
        assert_eq!(
            (replay.records, replay.invalid, replay.torn_bytes),
            (3, 1, 0)
        );
        assert_eq!(j.entries().len(), 2);
    }

    #[test]
    fn the_log_is_compacted_when_it_grows() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path()).unwrap();
        for i in 0..3000u32 {
            j.update(&c1(), &FileName::segment(1), |e| e.attempts = i)
                .unwrap();
        }
        drop(j);
        let before = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len();
        let (j, _) = Journal::open(dir.path()).unwrap();
        let after = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len();
        assert!(after < before / 100, "{before} -> {after}");
        assert_eq!(j.get(&c1(), &FileName::segment(1)).unwrap().attempts, 2999);
    }
}
