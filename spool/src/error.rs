//! Spool errors, each naming the file and the step that failed.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("no age recipient is configured; captures could not be encrypted")]
    NoRecipient,
    #[error("the spool is full: cannot write {}: {source}", path.display())]
    DiskFull {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the spool is full: no new file in {}: {why}", dir.display())]
    Full { dir: PathBuf, why: String },
    #[error("cannot {step} {}: {source}", path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SpoolError {
    /// Wraps an I/O error, telling a full disk apart from other failures.
    pub fn io(step: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if is_disk_full(&source) {
            SpoolError::DiskFull { path, source }
        } else {
            SpoolError::Io { step, path, source }
        }
    }

    /// Whether the spool has no room: the file system is full, or the quota refuses.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, SpoolError::DiskFull { .. } | SpoolError::Full { .. })
    }
}

/// Whether an I/O error means the file system is out of space or quota.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}
