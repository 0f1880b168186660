//! The store as the portal sees it. For now a `file://` directory laid out with the store keys
//! of DESIGN.md, so `devices/<serial>/grant.json` is the very file an agent's grant source
//! points at. Keys are built only from validated serials.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use pcap_protocol::Serial;

#[derive(Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `url` (`file:///absolute/path`).
    pub fn open(url: Option<&str>) -> anyhow::Result<Self> {
        let Some(url) = url else {
            bail!("no store given: pass --store file:///path or set PCAP_STORE");
        };
        let Some(path) = url.strip_prefix("file://") else {
            bail!("{url:?} is not a store URL this version can use; use file:///absolute/path");
        };
        let root = PathBuf::from(path);
        if !root.is_absolute() {
            bail!("{url:?}: the store path must be absolute (file:///var/lib/pcap-agent/store)");
        }
        fs::create_dir_all(&root)
            .with_context(|| format!("cannot create the store directory {}", root.display()))?;
        Ok(Store { root })
    }

    pub fn grant_key(serial: &Serial) -> String {
        format!("devices/{serial}/grant.json")
    }

    /// The object at `key`, or `None` if there is none.
    pub fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let path = self.root.join(key);
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the object at `key` atomically (a reader sees the old or the new document).
    pub fn put(&self, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let path = self.root.join(key);
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = dir.join(format!(".{}.tmp", std::process::id()));
        let write = |tmp: &Path| -> std::io::Result<()> {
            let mut f = fs::File::create(tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(tmp, &path)?;
            fs::File::open(dir)?.sync_all()
        };
        write(&tmp).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Device serials that have a directory under `devices/`.
    pub fn devices(&self) -> anyhow::Result<Vec<Serial>> {
        let dir = self.root.join("devices");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
        };
        let mut serials: Vec<Serial> = entries
            .filter_map(Result::ok)
            .filter_map(|e| Serial::parse(&e.file_name().to_string_lossy()).ok())
            .collect();
        serials.sort();
        Ok(serials)
    }
}
