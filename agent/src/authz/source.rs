//! Reading the grant file and noticing when it changes. The parent directory is watched, not
//! the file, because editors and `pcap-portal` replace files by renaming a new one over them.

use std::path::Path;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use pcap_protocol::envelope::MAX_ENVELOPE_LEN;
use pcap_protocol::{AuthorizationDocument, Serial, VerifyKeys};
use tokio::sync::mpsc;

use crate::fsutil::read_limited;

/// What was found at the grant source.
#[derive(Debug)]
pub enum Reading {
    /// No document: the file does not exist.
    Missing(String),
    /// A verified document for this device, with the SHA-256 of its signed payload.
    Document {
        doc: AuthorizationDocument,
        digest: String,
    },
    /// A document that is unreadable or fails verification.
    Refused(String),
}

/// Reads and verifies the grant file at `path`.
pub fn read_grant(path: &Path, keys: &VerifyKeys, serial: &Serial) -> Reading {
    let bytes = match read_limited(path, MAX_ENVELOPE_LEN) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Reading::Missing(format!("there is no grant file at {}", path.display()));
        }
        Err(e) => {
            return Reading::Refused(format!(
                "cannot read the grant file {}: {e}",
                path.display()
            ));
        }
    };
    match AuthorizationDocument::verify_with_digest(&bytes, keys, serial) {
        Ok((doc, digest)) => Reading::Document { doc, digest },
        Err(e) => Reading::Refused(format!("grant file {}: {e}", path.display())),
    }
}

/// A watch on the grant file's directory, or on its nearest existing ancestor while the
/// directory does not exist yet (a store's `devices/<serial>/` appears with the first grant).
#[derive(Debug)]
pub struct GrantWatch {
    _watcher: RecommendedWatcher,
    pub events: mpsc::Receiver<()>,
    /// Whether the grant file's own directory is watched (else an ancestor is).
    pub complete: bool,
}

/// Watches for changes to `path`; a message arrives on `events` after any change to the file or
/// to a directory on the way to it. `None` if nothing can be watched (the poll timer still
/// covers it).
pub fn watch(path: &Path) -> Option<GrantWatch> {
    let parent = path.parent()?;
    let dir = parent.ancestors().find(|d| d.is_dir())?.to_owned();
    let target = path.to_owned();
    let (tx, rx) = mpsc::channel(1);
    let handler = move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && event.paths.iter().any(|p| target.starts_with(p))
        {
            // A full channel already holds a wake-up; dropping this one loses nothing.
            let _ = tx.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot create a file watcher; relying on the poll timer.");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), error = %e, "Cannot watch the grant file's directory; relying on the poll timer.");
        return None;
    }
    Some(GrantWatch {
        _watcher: watcher,
        events: rx,
        complete: dir == parent,
    })
}
