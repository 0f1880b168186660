//! Crash recovery of the spool directory, at start, before anything writes to it: what a
//! crashed process left half-written is discarded and reported (so its capture's record can
//! count it as lost), and the journal is made to agree with the files.

use std::fs;
use std::path::{Path, PathBuf};

use super::journal::{Entry, Journal, State};
use pcap_protocol::ids::check_id;

use super::{MANIFEST, MANIFEST_BASE, PARTIAL, PARTIAL_SUFFIX};

/// A `.partial` file removed at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discarded {
    pub capture_id: String,
    pub path: PathBuf,
    /// Whether it was a pcap segment (else the session records file).
    pub segment: bool,
}

/// Removes every `<capture_id>/*.partial` under `dir` and returns what it removed. With a
/// journal: discarded files are recorded as lost; sealed files the journal does not know (a
/// crash between rename and journal write) are recorded as sealed; sealed or uploading entries
/// whose file is gone are recorded as lost; interrupted uploads go back to sealed, to start
/// over. A missing spool directory is an empty spool.
pub fn recover(dir: &Path, journal: Option<&Journal>) -> std::io::Result<Vec<Discarded>> {
    let mut discarded = Vec::new();
    let mut present: Vec<(String, String, u64)> = Vec::new();
    let mut manifests: Vec<String> = Vec::new();
    let captures = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(discarded),
        Err(e) => return Err(e),
    };
    for capture in captures.filter_map(Result::ok) {
        if !capture.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let capture_id = capture.file_name().to_string_lossy().into_owned();
        if let Err(why) = check_id(&capture_id, 64) {
            tracing::warn!(dir = %capture.path().display(), error = %why, "Left alone a directory in the spool that is not a capture's.");
            continue;
        }
        for file in fs::read_dir(capture.path())?.filter_map(Result::ok) {
            let name = file.file_name().to_string_lossy().into_owned();
            let path = file.path();
            if let Err(why) = check_id(&name, 64) {
                tracing::warn!(file = %path.display(), error = %why, "Left alone a file in the spool that is not a capture's.");
                continue;
            }
            if name.ends_with(PARTIAL) {
                fs::remove_file(&path)?;
                tracing::warn!(capture = %capture_id, file = %path.display(), "Discarded a file left unsealed by a crash.");
                if let Some(j) = journal {
                    let sealed_name = name.trim_end_matches(PARTIAL);
                    j.update(&capture_id, sealed_name, |e| {
                        e.state = State::Lost;
                        e.reason = Some("left unsealed by a crash".to_owned());
                    })?;
                }
                discarded.push(Discarded {
                    capture_id: capture_id.clone(),
                    segment: name.ends_with(PARTIAL_SUFFIX),
                    path,
                });
            } else if name.ends_with(".age") {
                present.push((capture_id.clone(), name, file.metadata()?.len()));
            } else if name == MANIFEST_BASE {
                // The manifest is built from its base when it is uploaded.
                manifests.push(capture_id.clone());
            }
        }
    }
    let Some(j) = journal else {
        return Ok(discarded);
    };
    for (capture, name, size) in &present {
        let known = j.get(capture, name);
        if known.as_ref().is_none_or(|e| e.state == State::Open) {
            let mut e = Entry::new(capture, name, State::Sealed);
            e.size = *size;
            j.put(e)?;
            tracing::info!(capture = %capture, file = %name, "Adopted a sealed file the journal did not record.");
        }
    }
    for e in j.entries() {
        let on_disk = if e.name == MANIFEST {
            manifests.contains(&e.capture)
        } else {
            present
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
    Ok(discarded)
}
