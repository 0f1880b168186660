//! The portal's cache of store documents, keyed by each object's ETag: a listing GETs only the
//! documents that changed since the last one. It lives in the portal's state directory, one
//! file per store; it is only a cache (a damaged or missing one costs GETs, nothing else), and
//! a document read from it is parsed and verified exactly as one fresh from the store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One cached document: the version it was read at and its text.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    version: String,
    text: String,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Cache {
    path: Option<PathBuf>,
    entries: HashMap<String, Entry>,
    /// Keys seen in this run: entries of objects that are gone are dropped on save.
    seen: std::collections::HashSet<String>,
    changed: bool,
}

impl Cache {
    /// The cache of `store_url` under `state_dir` (none without a state directory).
    pub fn open(state_dir: Option<&Path>, store_url: &str) -> Self {
        let Some(dir) = state_dir else {
            return Cache::default();
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, store_url.as_bytes());
        let name = format!(
            "documents-{}.json",
            &pcap_protocol::keys::hex(digest.as_ref())[..16]
        );
        let path = dir.join("cache").join(name);
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Cache {
            path: Some(path),
            entries,
            ..Cache::default()
        }
    }

    /// The text of `key` if the cache holds it at `version`.
    pub fn get(&mut self, key: &str, version: &str) -> Option<Vec<u8>> {
        self.seen.insert(key.to_owned());
        self.entries
            .get(key)
            .filter(|e| e.version == version)
            .map(|e| e.text.as_bytes().to_vec())
    }

    /// Remembers `bytes` as `key` at `version` (documents that are not UTF-8 are not kept).
    pub fn put(&mut self, key: &str, version: &str, bytes: &[u8]) {
        self.seen.insert(key.to_owned());
        if let Ok(text) = std::str::from_utf8(bytes) {
            self.entries.insert(
                key.to_owned(),
                Entry {
                    version: version.to_owned(),
                    text: text.to_owned(),
                },
            );
            self.changed = true;
        }
    }

    /// Writes back a cache that readers shared (see [`Cache::save`]).
    pub fn save_shared(cache: std::sync::Mutex<Cache>, prefix: &str) {
        cache
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .save(prefix);
    }

    /// Writes the cache back if it changed, keeping only entries of `prefix` seen in this run
    /// (and every entry outside it).
    pub fn save(&mut self, prefix: &str) {
        let Some(path) = &self.path else { return };
        let before = self.entries.len();
        let seen = &self.seen;
        self.entries
            .retain(|k, _| !k.starts_with(prefix) || seen.contains(k));
        if !self.changed && self.entries.len() == before {
            return;
        }
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir);
        }
        if let Ok(bytes) = serde_json::to_vec(&self.entries)
            && let Err(e) = pcap_spool::fsio::write_atomic(path, &bytes)
        {
            eprintln!(
                "pcap-portal: cannot write the cache {}: {e}",
                path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_served_only_at_the_version_it_was_read_at() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = Cache::open(Some(dir.path()), "s3://b/p");
        cache.put("devices/A/status.json", "\"e1\"", b"{}");
        assert_eq!(
            cache.get("devices/A/status.json", "\"e1\""),
            Some(b"{}".to_vec())
        );
        assert_eq!(cache.get("devices/A/status.json", "\"e2\""), None);
        cache.put("devices/B/status.json", "\"e9\"", b"{\"b\":1}");
        cache.save("devices/");

        // Read back: B was not seen in the next run, so it is dropped at its save.
        let mut again = Cache::open(Some(dir.path()), "s3://b/p");
        assert_eq!(
            again.get("devices/A/status.json", "\"e1\""),
            Some(b"{}".to_vec())
        );
        again.save("devices/");
        let mut third = Cache::open(Some(dir.path()), "s3://b/p");
        assert_eq!(third.get("devices/B/status.json", "\"e9\""), None);
        // Another store has its own cache.
        let mut other = Cache::open(Some(dir.path()), "s3://other/p");
        assert_eq!(other.get("devices/A/status.json", "\"e1\""), None);
    }
}
