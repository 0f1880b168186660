//! Crash recovery of the spool directory: what a crashed process left half-written is
//! discarded and reported, so its capture's record can count it as lost.

use std::fs;
use std::path::{Path, PathBuf};

use super::{PARTIAL, PARTIAL_SUFFIX};

/// A `.partial` segment removed at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discarded {
    pub capture_id: String,
    pub path: PathBuf,
    /// Whether it was a pcap segment (else the session records file).
    pub segment: bool,
}

/// Removes every `<capture_id>/*.partial` under `dir` and returns what it removed.
/// A missing spool directory is an empty spool.
pub fn recover(dir: &Path) -> std::io::Result<Vec<Discarded>> {
    let mut discarded = Vec::new();
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
        for file in fs::read_dir(capture.path())?.filter_map(Result::ok) {
            let name = file.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(PARTIAL) {
                let path = file.path();
                fs::remove_file(&path)?;
                tracing::warn!(capture = %capture_id, file = %path.display(), "Discarded a segment left unsealed by a crash.");
                discarded.push(Discarded {
                    capture_id: capture_id.clone(),
                    path,
                    segment: name.ends_with(PARTIAL_SUFFIX),
                });
            }
        }
    }
    Ok(discarded)
}
