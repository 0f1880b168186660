//! The operator's IP-to-user map: a text file with one `address user` (or `address,user`)
//! per line and `#` comments, read again when it changes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Largest user map file read.
const MAX_FILE_LEN: u64 = 16 << 20;

/// Addresses and their users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserMap(HashMap<IpAddr, String>);

impl UserMap {
    /// Parses the file's text; lines that are not `address user` are reported, not fatal.
    pub fn parse(text: &str) -> (Self, Vec<String>) {
        let mut map = HashMap::new();
        let mut bad = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.splitn(2, [',', ' ', '\t']);
            let (Some(addr), Some(user)) = (parts.next(), parts.next()) else {
                bad.push(format!("line {}: expected `address user`", n + 1));
                continue;
            };
            match addr.trim().parse::<IpAddr>() {
                Ok(ip) if !user.trim().is_empty() => {
                    map.insert(ip, super::proto::clean(user.trim().as_bytes()));
                }
                _ => bad.push(format!(
                    "line {}: {:?} is not an IP address and a user",
                    n + 1,
                    line
                )),
            }
        }
        (UserMap(map), bad)
    }

    pub fn get(&self, ip: &IpAddr) -> Option<&str> {
        self.0.get(ip).map(String::as_str)
    }
}

/// The map of one file, re-read when its modification time changes.
#[derive(Debug, Clone)]
pub struct UserMapFile {
    path: PathBuf,
    seen: Option<SystemTime>,
    map: UserMap,
}

impl UserMapFile {
    pub fn new(path: &Path) -> Self {
        let mut f = UserMapFile {
            path: path.to_owned(),
            seen: None,
            map: UserMap::default(),
        };
        f.refresh();
        f
    }

    /// Re-reads the file if it changed; a missing or unreadable file keeps the last map.
    pub fn refresh(&mut self) -> &UserMap {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return &self.map;
        };
        let modified = meta.modified().ok();
        if modified.is_some() && modified == self.seen {
            return &self.map;
        }
        if meta.len() > MAX_FILE_LEN {
            tracing::warn!(file = %self.path.display(), "The user map is larger than 16 MiB; ignoring it.");
            return &self.map;
        }
        if let Ok(text) = std::fs::read_to_string(&self.path) {
            let (map, bad) = UserMap::parse(&text);
            for b in bad.iter().take(5) {
                tracing::warn!(file = %self.path.display(), problem = %b, "Skipping a line of the user map.");
            }
            self.map = map;
            self.seen = modified;
        }
        &self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_reads_addresses_and_users_and_skips_bad_lines() {
        let (map, bad) = UserMap::parse(
            "# users\n10.0.0.5 alice\n10.0.0.6,bob\nfe80::1 carol # lab\nnot-an-ip dave\n\n",
        );
        assert_eq!(map.get(&"10.0.0.5".parse().unwrap()), Some("alice"));
        assert_eq!(map.get(&"10.0.0.6".parse().unwrap()), Some("bob"));
        assert_eq!(map.get(&"fe80::1".parse().unwrap()), Some("carol"));
        assert_eq!(bad.len(), 1);
    }
}
