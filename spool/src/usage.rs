//! How much the spool holds and how much room its file system has left.

use std::path::Path;

use crate::journal::FILE_NAME as JOURNAL;

/// Bytes in the spool, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Capture files: sealed, being written, or kept after upload, and manifest bases.
    pub capture_bytes: u64,
    /// The journal.
    pub journal_bytes: u64,
}

impl Usage {
    /// Everything the spool directory holds.
    pub fn total(&self) -> u64 {
        self.capture_bytes + self.journal_bytes
    }
}

/// What the spool directory `dir` holds.
pub fn usage(dir: &Path) -> Usage {
    let journal_bytes = std::fs::metadata(dir.join(JOURNAL)).map_or(0, |m| m.len());
    Usage {
        capture_bytes: dir_size(dir).saturating_sub(journal_bytes),
        journal_bytes,
    }
}

/// Bytes of every file under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// Percentage of the file system holding `dir` still available to unprivileged writers.
pub fn free_percent(dir: &Path) -> Option<u8> {
    let s = nix::sys::statvfs::statvfs(dir).ok()?;
    let total = s.blocks() as f64;
    (total > 0.0).then(|| ((s.blocks_available() as f64 / total) * 100.0).floor() as u8)
}
