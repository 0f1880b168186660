//! Who may use the control socket. The kernel tells who is on the other end (SO_PEERCRED); a
//! peer is allowed if it is root, the daemon's own user, in `control.allowed_uids`, or a member
//! (primary or supplementary) of a group in `control.allowed_gids` (by default the socket's
//! group). File permissions alone would let in anyone who can reach the socket file; this check
//! holds even when those are wider than intended.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, RawFd};

use nix::unistd::{Gid, Group, Uid, User};
use pcap_config::{Control, units::Principal};

/// The credentials of a connected peer, as the kernel recorded them at `connect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
    /// Supplementary groups (SO_PEERGROUPS); empty if the kernel cannot tell.
    pub groups: Vec<u32>,
}

impl Peer {
    pub fn of(stream: &tokio::net::UnixStream) -> std::io::Result<Self> {
        let cred = stream.peer_cred()?;
        Ok(Peer {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
            groups: peer_groups(stream.as_raw_fd()).unwrap_or_default(),
        })
    }
}

/// Most supplementary groups a process can have (NGROUPS_MAX on Linux).
const MAX_GROUPS: usize = 65_536;

/// The peer's supplementary groups, from SO_PEERGROUPS (Linux 4.13+). Unlike reading
/// `/proc/<pid>/status`, this cannot race with the peer exiting and works under
/// `ProtectProc=invisible`.
#[allow(unsafe_code)]
fn peer_groups(fd: RawFd) -> std::io::Result<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (groups.len() * size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: `groups` is valid for writes of `len` bytes, and the kernel writes at most
        // `len` bytes and stores the length it wrote (or needs) back in `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let count = len as usize / size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(count);
            return Ok(groups);
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ERANGE) && count > groups.len() && count <= MAX_GROUPS {
            groups.resize(count, 0);
            continue;
        }
        return Err(err);
    }
}

/// The resolved allowlist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    uids: BTreeSet<u32>,
    gids: BTreeSet<u32>,
}

impl Access {
    /// Resolves names in the config; `socket_gid` is the group owning the socket file.
    pub fn resolve(control: &Control, socket_gid: u32) -> Result<Self, String> {
        let mut uids: BTreeSet<u32> = [0, Uid::effective().as_raw()].into();
        let mut gids = BTreeSet::new();
        if control.allowed_gids.is_none() {
            gids.insert(socket_gid);
        }
        for (i, p) in control.allowed_uids.iter().enumerate() {
            uids.insert(match p {
                Principal::Id(id) => *id,
                Principal::Name(name) => match User::from_name(name) {
                    Ok(Some(u)) => u.uid.as_raw(),
                    _ => {
                        return Err(format!(
                            "control.allowed_uids[{i}]: there is no user {name:?} on this host"
                        ));
                    }
                },
            });
        }
        for (i, p) in control.allowed_gids.iter().flatten().enumerate() {
            gids.insert(match p {
                Principal::Id(id) => *id,
                Principal::Name(name) => resolve_group(name).ok_or_else(|| {
                    format!("control.allowed_gids[{i}]: there is no group {name:?} on this host")
                })?,
            });
        }
        Ok(Access { uids, gids })
    }

    pub fn allows(&self, peer: &Peer) -> bool {
        self.uids.contains(&peer.uid)
            || self.gids.contains(&peer.gid)
            || peer.groups.iter().any(|g| self.gids.contains(g))
    }
}

/// The gid of group `name`, if it exists.
pub fn resolve_group(name: &str) -> Option<u32> {
    Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// The daemon's effective gid.
pub fn own_gid() -> u32 {
    Gid::effective().as_raw()
}
