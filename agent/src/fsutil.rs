//! Small file-system helpers with the durability the state files need.

use std::path::Path;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

pub use pcap_spool::fsio::{read_limited, write_atomic};

/// A watch on a file's directory, or on its nearest existing ancestor while the directory does
/// not exist yet (a store's `devices/<serial>/` appears with the first grant). Directories are
/// watched rather than files because editors and `pcap-portal` replace files by renaming a new
/// one over them.
#[derive(Debug)]
pub struct FileWatch {
    _watcher: RecommendedWatcher,
    events: mpsc::Receiver<()>,
    /// Whether the file's own directory is watched (else an ancestor is).
    pub complete: bool,
}

impl FileWatch {
    /// Waits for the next change.
    pub async fn changed(&mut self) -> Option<()> {
        self.events.recv().await
    }
}

/// Watches for changes to `path`; [`FileWatch::changed`] returns after any change to the file or
/// to a directory on the way to it. `None` if nothing can be watched (callers poll as well).
pub fn watch_file(path: &Path) -> Option<FileWatch> {
    let parent = path.parent()?;
    let dir = parent.ancestors().find(|d| d.is_dir())?.to_owned();
    let target = path.to_owned();
    let (tx, rx) = mpsc::channel(1);
    let handler = move |event: notify::Result<notify::Event>| {
        // Opening or reading the file is not a change: the owner of this watch reads the file
        // when woken, and every read would wake it again. Closing after a write is a change.
        if let Ok(event) = event
            && is_change(&event.kind)
            && event.paths.iter().any(|p| target.starts_with(p))
        {
            // A full channel already holds a wake-up; dropping this one loses nothing.
            let _ = tx.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot create a file watcher; relying on polling.");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), error = %e, "Cannot watch a directory; relying on polling.");
        return None;
    }
    Some(FileWatch {
        _watcher: watcher,
        events: rx,
        complete: dir == parent,
    })
}

/// Waits for a change on an optional watch; never returns without one.
pub async fn changed(watch: &mut Option<FileWatch>) -> Option<()> {
    match watch {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::Duration;

    /// Whether a change is seen within `wait`.
    async fn woken_within(watch: &mut FileWatch, wait: Duration) -> bool {
        tokio::time::timeout(wait, watch.changed()).await.is_ok()
    }

    /// A change is seen (the notify thread gets 5 s on a busy host).
    async fn woken(watch: &mut FileWatch) -> bool {
        woken_within(watch, Duration::from_secs(5)).await
    }

    /// No change comes within half a second.
    async fn quiet(watch: &mut FileWatch) -> bool {
        !woken_within(watch, Duration::from_millis(500)).await
    }

    #[tokio::test]
    async fn reading_the_watched_file_is_not_a_change_but_replacing_or_writing_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grant.json");
        fs::write(&path, b"one").unwrap();
        let mut watch = watch_file(&path).expect("inotify is available");
        assert!(watch.complete);

        fs::read(&path).unwrap();
        read_limited(&path, 16).unwrap();
        assert!(quiet(&mut watch).await, "a read woke the watch");

        write_atomic(&path, b"two").unwrap();
        assert!(woken(&mut watch).await, "a replacement was not seen");
        while !quiet(&mut watch).await {}

        fs::write(&path, b"three").unwrap();
        assert!(woken(&mut watch).await, "an in-place write was not seen");
        while !quiet(&mut watch).await {}

        fs::remove_file(&path).unwrap();
        assert!(woken(&mut watch).await, "a removal was not seen");
    }
}
