//! Crash recovery of the spool directory, at start, before anything writes to it: what a
//! crashed process left half-written is discarded and reported (so its capture's record can
//! count it as lost), and the journal is made to agree with the files.

use std::fs;
use std::path::{Path, PathBuf};

use pcap_protocol::{CaptureId, FileName};

use crate::journal::{Entry, Journal, State};
use crate::{MANIFEST_BASE, PARTIAL};

/// A `.partial` file removed at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discarded {
    pub capture_id: CaptureId,
    pub path: PathBuf,
    /// Whether it was a pcap segment (else the session records file).
    pub segment: bool,
}

/// What the spool directory holds, as found at start.
#[derive(Debug, Default)]
struct Found {
    discarded: Vec<Discarded>,
    /// Sealed files, with their sizes.
    sealed: Vec<(CaptureId, FileName, u64)>,
    /// Captures whose manifest base is there.
    manifests: Vec<CaptureId>,
}

/// Removes every `<capture_id>/*.partial` under `dir` and returns what it removed. With a
/// journal: discarded files are recorded as lost; sealed files the journal does not know (a
/// crash between rename and journal write) are recorded as sealed; sealed or uploading entries
/// whose file is gone are recorded as lost; interrupted uploads go back to sealed, to start
/// over. A missing spool directory is an empty spool. Directories and files whose names are
/// not a capture id or a file name are left alone.
pub fn recover(dir: &Path, journal: Option<&Journal>) -> std::io::Result<Vec<Discarded>> {
    let found = scan(dir, journal)?;
    if let Some(j) = journal {
        reconcile(j, &found)?;
    }
    Ok(found.discarded)
}

/// Walks the capture directories, discarding `.partial` files on the way.
fn scan(dir: &Path, journal: Option<&Journal>) -> std::io::Result<Found> {
    let mut found = Found::default();
    let captures = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for capture in captures.filter_map(Result::ok) {
        if !capture.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let capture_id = match CaptureId::parse(&capture.file_name().to_string_lossy()) {
            Ok(id) => id,
            Err(why) => {
                tracing::warn!(dir = %capture.path().display(), error = %why, "Left alone a directory in the spool that is not a capture's.");
                continue;
            }
        };
        for file in fs::read_dir(capture.path())?.filter_map(Result::ok) {
            let path = file.path();
            let name = match FileName::parse(&file.file_name().to_string_lossy()) {
                Ok(name) => name,
                Err(why) => {
                    tracing::warn!(file = %path.display(), error = %why, "Left alone a file in the spool that is not a capture's.");
                    continue;
                }
            };
            if let Some(sealed_name) = name.as_str().strip_suffix(PARTIAL) {
                fs::remove_file(&path)?;
                tracing::warn!(capture = %capture_id, file = %path.display(), "Discarded a file left unsealed by a crash.");
                if let (Some(j), Ok(sealed_name)) = (journal, FileName::parse(sealed_name)) {
                    j.update(&capture_id, &sealed_name, |e| {
                        e.state = State::Lost;
                        e.reason = Some("left unsealed by a crash".to_owned());
                    })?;
                }
                found.discarded.push(Discarded {
                    capture_id: capture_id.clone(),
                    segment: sealed_name.ends_with(FileName::SEGMENT_SUFFIX),
                    path,
                });
            } else if name.as_str().ends_with(".age") {
                found
                    .sealed
                    .push((capture_id.clone(), name, file.metadata()?.len()));
            } else if name.as_str() == MANIFEST_BASE {
                // The manifest is built from its base when it is uploaded.
                found.manifests.push(capture_id.clone());
            }
        }
    }
    Ok(found)
}

/// Makes the journal agree with what is on disk.
fn reconcile(j: &Journal, found: &Found) -> std::io::Result<()> {
    for (capture, name, size) in &found.sealed {
        let known = j.get(capture, name);
        if known.as_ref().is_none_or(|e| e.state == State::Open) {
            let mut e = Entry::new(capture, name, State::Sealed);
            e.size = *size;
            j.put(e)?;
            tracing::info!(capture = %capture, file = %name, "Adopted a sealed file the journal did not record.");
        }
    }
    for e in j.entries() {
        let on_disk = if e.name.is_manifest() {
            found.manifests.contains(&e.capture)
        } else {
            found
                .sealed
                .iter()
                .any(|(c, n, _)| *c == e.capture && *n == e.name)
        };
        match e.state {
            State::Sealed | State::Uploading | State::Open if !on_disk => {
                j.update(&e.capture, &e.name, |e| {
                    e.state = State::Lost;
                    e.reason = Some("missing from the spool at start".to_owned());
                })?;
            }
            State::Uploading => {
                j.update(&e.capture, &e.name, |e| {
                    e.state = State::Sealed;
                    e.interrupted = true;
                })?;
            }
            _ => {}
        }
    }
    Ok(())
}
