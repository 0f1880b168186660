//! Who may use the control socket. The kernel tells who is on the other end (SO_PEERCRED); a
//! peer is allowed if it is root, the daemon's own user, in `control.allowed_uids`, or a member
//! (primary or supplementary) of a group in `control.allowed_gids` (by default the socket's
//! group). File permissions alone would let in anyone who can reach the socket file; this check
//! holds even when those are wider than intended.

use std::collections::BTreeSet;

use nix::unistd::{Gid, Group, Uid, User};
use pcap_config::{Control, units::Principal};

/// The credentials of a connected peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

impl Peer {
    pub fn of(stream: &tokio::net::UnixStream) -> std::io::Result<Self> {
        let cred = stream.peer_cred()?;
        Ok(Peer {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
        })
    }

    /// Supplementary groups of the peer process, from `/proc/<pid>/status` (empty if gone).
    fn supplementary_groups(&self) -> Vec<u32> {
        let Some(pid) = self.pid else {
            return Vec::new();
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            return Vec::new();
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix("Groups:"))
            .map(|g| {
                g.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
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
            || peer
                .supplementary_groups()
                .iter()
                .any(|g| self.gids.contains(g))
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
