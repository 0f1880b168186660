//! Binding the control socket safely: a stale socket left by a crashed daemon is replaced, a
//! live one (another agent answering) or a non-socket file at the path is never touched.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use pcap_config::Control;
use tokio::net::UnixListener;

use super::peer::{own_gid, resolve_group};

/// A bound control socket.
#[derive(Debug)]
pub struct BoundSocket {
    pub listener: UnixListener,
    pub path: PathBuf,
    /// The group owning the socket file.
    pub gid: u32,
    pub file: SocketFile,
}

/// The socket file's identity, to remove it at shutdown only if it is still ours.
#[derive(Debug, Clone)]
pub struct SocketFile {
    path: PathBuf,
    inode: (u64, u64),
}

impl SocketFile {
    /// Removes the socket file unless another process has replaced it since.
    pub fn remove(&self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.inode
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the socket of `control`, with its mode and group.
pub fn bind(control: &Control) -> Result<BoundSocket, String> {
    let path = &control.socket;
    let show = path.display();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the socket directory {}: {e}", dir.display()))?;
    }
    clear_stale(path)?;
    let listener = UnixListener::bind(path)
        .map_err(|e| format!("cannot bind the control socket {show}: {e}"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(control.mode))
        .map_err(|e| format!("cannot set mode {:#o} on {show}: {e}", control.mode))?;
    let gid = match &control.group {
        Some(name) => {
            let gid = resolve_group(name)
                .ok_or_else(|| format!("control.group: there is no group {name:?} on this host"))?;
            nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
                .map_err(|e| format!("cannot give {show} to group {name}: {e}"))?;
            gid
        }
        None => own_gid(),
    };
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("cannot stat {show}: {e}"))?;
    Ok(BoundSocket {
        listener,
        path: path.clone(),
        gid,
        file: SocketFile {
            path: path.clone(),
            inode: (meta.dev(), meta.ino()),
        },
    })
}

fn clear_stale(path: &Path) -> Result<(), String> {
    let show = path.display();
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot stat {show}: {e}")),
    };
    if !meta.file_type().is_socket() {
        return Err(format!(
            "{show} exists and is not a socket; refusing to replace it (move it away or set control.socket)"
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(format!(
            "another process is answering on {show}; is pcap-agent already running?"
        )),
        Err(_) => {
            tracing::info!(socket = %show, "Replacing a stale control socket.");
            std::fs::remove_file(path)
                .map_err(|e| format!("cannot remove the stale socket {show}: {e}"))
        }
    }
}
