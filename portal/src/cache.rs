//! The portal's cache of store documents, keyed by each object's ETag: a listing GETs only the
//! documents that changed since the last one. It holds only documents that parsed (junk is
//! read again each time, never kept), within a byte budget: past it, the least recently used
//! documents go first. The CLI keeps one in its state directory per store; the console keeps
//! its own in memory (`serve --cache-budget`). It is only a cache (a damaged or missing one
//! costs GETs, nothing else), and a document read from it is parsed and verified exactly as
//! one fresh from the store.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use lru::LruCache;
use serde::{Deserialize, Serialize};

/// The budget of a cache when none is given: 64 MiB of documents.
pub const DEFAULT_BUDGET: u64 = 64 << 20;
/// What an entry costs beyond its key, version and text (the map's own bookkeeping).
const ENTRY_OVERHEAD: usize = 96;

/// One cached document: the version it was read at and its text.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    version: String,
    text: String,
}

fn cost(key: &str, e: &Entry) -> usize {
    key.len() + e.version.len() + e.text.len() + ENTRY_OVERHEAD
}

/// See the module docs.
#[derive(Debug)]
pub struct Cache {
    path: Option<PathBuf>,
    entries: LruCache<String, Entry>,
    /// What the entries cost, at most `budget`.
    bytes: usize,
    budget: usize,
    /// Keys seen in this run (only for a cache that is saved): entries of objects that are
    /// gone are dropped on save.
    seen: HashSet<String>,
    changed: bool,
}

impl Default for Cache {
    fn default() -> Self {
        Cache::in_memory(DEFAULT_BUDGET)
    }
}

impl Cache {
    /// A cache that lives in memory only, holding at most `budget` bytes of documents.
    pub fn in_memory(budget: u64) -> Self {
        Cache {
            path: None,
            entries: LruCache::unbounded(),
            bytes: 0,
            budget: usize::try_from(budget).unwrap_or(usize::MAX),
            seen: HashSet::new(),
            changed: false,
        }
    }

    /// The cache of `store_url` under `state_dir` (in memory only without a state directory),
    /// holding at most `budget` bytes of documents.
    pub fn open(state_dir: Option<&Path>, store_url: &str, budget: u64) -> Self {
        let mut cache = Cache::in_memory(budget);
        let Some(dir) = state_dir else {
            return cache;
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, store_url.as_bytes());
        let name = format!(
            "documents-{}.json",
            &pcap_protocol::keys::hex(digest.as_ref())[..16]
        );
        let path = dir.join("cache").join(name);
        let entries: HashMap<String, Entry> =
            pcap_spool::fsio::read_limited(&path, cache.budget.saturating_mul(2))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
        for (key, entry) in entries {
            cache.insert(key, entry);
        }
        cache.path = Some(path);
        cache.changed = false;
        cache
    }

    /// What the cached documents cost, in bytes (at most the budget).
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The text of `key` if the cache holds it at `version`.
    pub fn get(&mut self, key: &str, version: &str) -> Option<Vec<u8>> {
        if self.path.is_some() && !self.seen.contains(key) {
            self.seen.insert(key.to_owned());
        }
        self.entries
            .get(key)
            .filter(|e| e.version == version)
            .map(|e| e.text.as_bytes().to_vec())
    }

    /// Remembers `bytes` as `key` at `version`: a document that parsed (the caller's word).
    /// One that is not UTF-8, or larger than the whole budget, is not kept.
    pub fn put(&mut self, key: &str, version: &str, bytes: &[u8]) {
        if self.path.is_some() {
            self.seen.insert(key.to_owned());
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return;
        };
        self.insert(
            key.to_owned(),
            Entry {
                version: version.to_owned(),
                text: text.to_owned(),
            },
        );
    }

    fn insert(&mut self, key: String, entry: Entry) {
        if let Some(old) = self.entries.pop(&key) {
            self.bytes -= cost(&key, &old);
        }
        let size = cost(&key, &entry);
        if size > self.budget {
            return;
        }
        self.bytes += size;
        self.entries.put(key, entry);
        while self.bytes > self.budget {
            let Some((k, e)) = self.entries.pop_lru() else {
                break;
            };
            self.bytes -= cost(&k, &e);
        }
        self.changed = true;
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
        let Some(path) = self.path.clone() else {
            return;
        };
        let gone: Vec<String> = self
            .entries
            .iter()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with(prefix) && !self.seen.contains(*k))
            .cloned()
            .collect();
        for k in &gone {
            if let Some(e) = self.entries.pop(k) {
                self.bytes -= cost(k, &e);
            }
        }
        if !self.changed && gone.is_empty() {
            return;
        }
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir);
        }
        let entries: HashMap<&String, &Entry> = self.entries.iter().collect();
        if let Ok(bytes) = serde_json::to_vec(&entries)
            && let Err(e) = pcap_spool::fsio::write_atomic(&path, &bytes)
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
        let mut cache = Cache::open(Some(dir.path()), "s3://b/p", DEFAULT_BUDGET);
        cache.put("devices/A/status.json", "\"e1\"", b"{}");
        assert_eq!(
            cache.get("devices/A/status.json", "\"e1\""),
            Some(b"{}".to_vec())
        );
        assert_eq!(cache.get("devices/A/status.json", "\"e2\""), None);
        cache.put("devices/B/status.json", "\"e9\"", b"{\"b\":1}");
        cache.save("devices/");

        // Read back: B was not seen in the next run, so it is dropped at its save.
        let mut again = Cache::open(Some(dir.path()), "s3://b/p", DEFAULT_BUDGET);
        assert_eq!(
            again.get("devices/A/status.json", "\"e1\""),
            Some(b"{}".to_vec())
        );
        again.save("devices/");
        let mut third = Cache::open(Some(dir.path()), "s3://b/p", DEFAULT_BUDGET);
        assert_eq!(third.get("devices/B/status.json", "\"e9\""), None);
        // Another store has its own cache.
        let mut other = Cache::open(Some(dir.path()), "s3://other/p", DEFAULT_BUDGET);
        assert_eq!(other.get("devices/A/status.json", "\"e1\""), None);
    }

    #[test]
    fn the_cache_stays_within_its_budget_dropping_the_least_recently_used() {
        let doc = vec![b'x'; 1000];
        let mut cache = Cache::in_memory(10 * 1200);
        for i in 0..30 {
            cache.put(&format!("captures/A/{i}/manifest.json"), "v", &doc);
            // The first document stays in use, so it is never the one dropped.
            assert!(cache.get("captures/A/0/manifest.json", "v").is_some());
            assert!(cache.bytes() <= 10 * 1200, "{} bytes", cache.bytes());
        }
        assert!(cache.get("captures/A/1/manifest.json", "v").is_none());
        assert!(cache.get("captures/A/29/manifest.json", "v").is_some());
        // A document larger than the whole budget is not kept, and evicts nothing.
        let before = cache.bytes();
        cache.put("captures/A/big/manifest.json", "v", &vec![b'y'; 20_000]);
        assert!(cache.get("captures/A/big/manifest.json", "v").is_none());
        assert_eq!(cache.bytes(), before);
    }
}
