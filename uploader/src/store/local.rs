//! A local directory as a store. Objects are written through object_store's
//! `LocalFileSystem` with fsync; a sealed spool file on the same file system becomes an object
//! by a hard link instead of a copy.

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStoreExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use tokio::io::AsyncReadExt;

use super::error::{UploadError, Uploaded, classify};
use crate::bandwidth::Bandwidth;

/// A local directory as a store; created if missing. Every object is fsynced when written.
pub(super) fn open(root: &Path) -> Result<Arc<LocalFileSystem>, String> {
    std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let store = LocalFileSystem::new_with_prefix(root)
        .map_err(|e| e.to_string())?
        .with_fsync(true);
    Ok(Arc::new(store))
}

/// Puts the sealed file at `path` into a local store on the same file system as a hard link
/// instead of a copy: a sealed file never changes, so the store's object can be the same
/// bytes, and nothing is read or written. The link is made under a staging name (`<name>#0`,
/// which listings skip and [`Store::abort`] removes), then renamed into place. A file damaged
/// on disk after its sealing is the same damaged inode in the store: the checksum in the
/// manifest and age's per-chunk authentication find it when it is fetched. `None` if the
/// store is on another file system (or cannot hold links): the caller copies.
pub(super) async fn link(
    root: &Path,
    key: &Key,
    path: &Path,
) -> Result<Option<Uploaded>, UploadError> {
    let dest = root.join(key.as_ref());
    let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Ok(None);
    };
    let staging = dir.join(format!("{}#0", name.to_string_lossy()));
    let failed = |what: &str, e: std::io::Error| {
        UploadError::Transient(format!("cannot {what} {}: {e}", dest.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| failed("create the directory of", e))?;
    remove_if_present(&staging).map_err(|e| failed("clear the staging name of", e))?;
    match std::fs::hard_link(path, &staging) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EXDEV | libc::EPERM | libc::EOPNOTSUPP | libc::EMLINK)
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(failed("link the spool file into", e)),
    }
    let result = (|| {
        let size = std::fs::metadata(&staging)
            .map_err(|e| UploadError::Transient(format!("cannot read {}: {e}", path.display())))?
            .len();
        std::fs::rename(&staging, &dest)
            .and_then(|()| std::fs::File::open(dir)?.sync_all())
            .map_err(|e| failed("rename the link into place at", e))?;
        // When `dest` already was a link to the same file (an upload repeated after a crash
        // between the rename and the journal), rename does nothing and the staging name stays.
        remove_if_present(&staging).map_err(|e| failed("remove the staging name of", e))?;
        Ok(Uploaded {
            size,
            verified: false,
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    result.map(Some)
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Uploads the rest of `file` to `key` in parts of `part_size` (object_store's staged
/// multipart upload, renamed into place when complete), checking it on the way.
pub(super) async fn upload_parts(
    store: &LocalFileSystem,
    key: &Key,
    file: &mut tokio::fs::File,
    part_size: usize,
    check: &mut super::check::Check<'_>,
    bandwidth: &Bandwidth,
) -> Result<(), UploadError> {
    let io = |e: std::io::Error| UploadError::Transient(format!("cannot read the spool file: {e}"));
    let upload = store
        .put_multipart(key)
        .await
        .map_err(|e| classify(&format!("cannot start the upload of {key}"), e))?;
    let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, part_size);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        check.update(&buf[..n]);
        bandwidth.take(n as u64).await;
        writer
            .wait_for_capacity(1)
            .await
            .map_err(|e| classify(&format!("cannot upload {key}"), e))?;
        writer.write(&buf[..n]);
    }
    if let Err(e) = check.verify() {
        let _ = writer.abort().await;
        return Err(e);
    }
    writer
        .finish()
        .await
        .map_err(|e| classify(&format!("cannot complete the upload of {key}"), e))?;
    Ok(())
}

/// Removes the staging files (`<name>#<n>`) an interrupted upload of `key` left.
pub(super) fn remove_staging(root: &Path, key: &Key) {
    let dest = root.join(key.as_ref());
    let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else {
        return;
    };
    let staging = format!("{}#", name.to_string_lossy());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            if e.file_name().to_string_lossy().starts_with(&staging) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
