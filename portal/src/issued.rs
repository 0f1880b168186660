//! The portal's own record of the sequences it issued, per store and device, kept on the
//! administrator's machine (`--state-dir`, `PCAP_PORTAL_STATE`, else
//! `$XDG_STATE_HOME/pcap-portal` or `~/.local/state/pcap-portal`).
//!
//! A device refuses any document whose sequence is not above the highest it accepted. The
//! portal therefore issues its next document above everything it can see: the document in the
//! store (which may have been rolled back), the sequence the device reports in its heartbeat,
//! and this record. A damaged record is an error, not a guess.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use pcap_protocol::Serial;
use pcap_spool::fsio::{read_limited, write_atomic};

/// Largest record file read.
const MAX_LEN: usize = 16 << 20;
const FILE_NAME: &str = "issued.json";

/// Highest sequence issued, by store URL, then serial.
type Sequences = BTreeMap<String, BTreeMap<Serial, u64>>;

/// See the module docs.
#[derive(Debug)]
pub struct Issued {
    /// `None`: no state directory could be found; nothing is remembered.
    path: Option<PathBuf>,
    store: String,
    sequences: Sequences,
}

/// Where the record lives when no `--state-dir` is given.
pub fn default_dir() -> Option<PathBuf> {
    let state_home = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state_home.join("pcap-portal"))
}

impl Issued {
    /// Opens the record in `dir` for the store at `store`.
    pub fn open(dir: Option<&Path>, store: String) -> anyhow::Result<Self> {
        let path = dir.map(|d| d.join(FILE_NAME));
        let sequences = match &path {
            None => Sequences::new(),
            Some(path) => match read_limited(path, MAX_LEN) {
                Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "the record of issued sequences {} is damaged; repair or remove it (the store and the devices' heartbeats still keep sequences rising)",
                        path.display()
                    )
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Sequences::new(),
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot read {}", path.display()));
                }
            },
        };
        Ok(Issued {
            path,
            store,
            sequences,
        })
    }

    /// The highest sequence this portal issued for `serial` in this store.
    pub fn highest(&self, serial: &Serial) -> Option<u64> {
        self.sequences.get(&self.store)?.get(serial).copied()
    }

    /// Remembers that `sequence` was issued for `serial`.
    pub fn record(&mut self, serial: &Serial, sequence: u64) -> anyhow::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let highest = self
            .sequences
            .entry(self.store.clone())
            .or_default()
            .entry(serial.clone())
            .or_default();
        *highest = (*highest).max(sequence);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let bytes = serde_json::to_vec_pretty(&self.sequences).unwrap_or_default();
        write_atomic(path, &bytes).with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_sequences_survive_a_reopen_per_store_and_device() {
        let dir = tempfile::tempdir().unwrap();
        let serial = Serial::parse("PA-1").unwrap();
        let mut a = Issued::open(Some(dir.path()), "file:///a".into()).unwrap();
        a.record(&serial, 4).unwrap();
        a.record(&serial, 3).unwrap();
        let a = Issued::open(Some(dir.path()), "file:///a".into()).unwrap();
        assert_eq!(a.highest(&serial), Some(4));
        let b = Issued::open(Some(dir.path()), "file:///b".into()).unwrap();
        assert_eq!(b.highest(&serial), None);
        std::fs::write(dir.path().join(FILE_NAME), b"{").unwrap();
        let damaged = Issued::open(Some(dir.path()), "file:///a".into()).unwrap_err();
        assert!(format!("{damaged:#}").contains("damaged"), "{damaged:#}");
    }
}
