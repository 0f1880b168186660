//! The store as the portal sees it: the same client as the agent's (object_store), on
//! `file:///path` or `s3://bucket/prefix`, with the key layout of `pcap_protocol::store::keys`.
//! S3 settings come from `--s3-endpoint`, `--s3-region`, `--s3-path-style`,
//! `--s3-credentials` (or `PCAP_S3_ENDPOINT`, `PCAP_S3_REGION`, `PCAP_S3_PATH_STYLE`,
//! `PCAP_S3_CREDENTIALS`), else the standard AWS environment. The portal's commands run one
//! after the other, so this wrapper blocks on each request.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use object_store::ObjectStoreExt;
use object_store::path::Path as Key;
use pcap_config::StoreUrl;
use pcap_protocol::store::keys;
use pcap_protocol::{Document, Serial};

/// Largest document (grant, heartbeat, result, manifest) read from the store.
const MAX_DOCUMENT: usize = 1 << 20;

/// How to reach an S3 store (ignored for file://).
#[derive(Debug, Clone, clap::Args)]
pub struct S3Args {
    /// S3 endpoint (http(s)://host[:port]) when the store is not AWS's own.
    #[arg(long, global = true, env = "PCAP_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    #[arg(long, global = true, env = "PCAP_S3_REGION")]
    s3_region: Option<String>,
    /// Path-style requests (endpoint/bucket/key), as most private services want.
    #[arg(long, global = true, env = "PCAP_S3_PATH_STYLE")]
    s3_path_style: bool,
    /// A 0600 TOML file with access_key_id and secret_access_key.
    #[arg(long, global = true, env = "PCAP_S3_CREDENTIALS")]
    s3_credentials: Option<PathBuf>,
}

/// One object of a listing.
#[derive(Debug, Clone)]
pub struct Object {
    /// The key relative to the store's prefix.
    pub key: String,
    pub size: u64,
    pub last_modified: Timestamp,
}

pub struct Store {
    inner: pcap_uploader::store::Store,
    url: StoreUrl,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.url).finish()
    }
}

impl Store {
    /// Opens the store at `url`.
    pub fn open(url: Option<&str>, s3: &S3Args) -> anyhow::Result<Self> {
        let Some(url) = url else {
            bail!(
                "no store given: pass --store file:///path or s3://bucket/prefix, or set PCAP_STORE"
            );
        };
        let url: StoreUrl = url.parse().map_err(anyhow::Error::msg)?;
        let settings = pcap_config::S3 {
            endpoint: s3.s3_endpoint.clone(),
            region: s3.s3_region.clone(),
            path_style: s3.s3_path_style,
            credentials_file: s3.s3_credentials.clone(),
            ca_bundle: None,
        };
        let inner = pcap_uploader::store::Store::open(&url, &settings)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the I/O runtime")?;
        Ok(Store {
            inner,
            url,
            runtime,
        })
    }

    /// The store's URL.
    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    fn key(&self, rel: &str) -> Key {
        self.inner.key(rel)
    }

    /// The object at `rel`, or `None` if there is none (at most `max` bytes).
    pub fn get_limited(&self, rel: &str, max: usize) -> anyhow::Result<Option<Vec<u8>>> {
        let key = self.key(rel);
        self.runtime
            .block_on(self.inner.get_limited(&key, max))
            .with_context(|| format!("cannot read {rel}"))
    }

    /// The raw bytes of a document (a signed envelope): at most 1 MiB.
    pub fn get(&self, rel: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.get_limited(rel, MAX_DOCUMENT)
    }

    /// The document at `rel` as `T` (refusing a newer major schema version), if there is one.
    pub fn document<T: Document>(&self, rel: &str) -> anyhow::Result<Option<T>> {
        let key = self.key(rel);
        self.runtime
            .block_on(self.inner.get_document(&key, MAX_DOCUMENT))
            .with_context(|| format!("cannot read {rel}"))
    }

    /// Writes the object at `rel` (a reader sees the old or the new document).
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let key = self.key(rel);
        self.runtime
            .block_on(self.inner.put_bytes(&key, bytes))
            .with_context(|| format!("cannot write {rel}"))
    }

    pub fn delete(&self, rel: &str) -> anyhow::Result<()> {
        let key = self.key(rel);
        match self.runtime.block_on(self.inner.objects().delete(&key)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot delete {rel}")),
        }
    }

    /// Every object under `rel/`, recursively.
    pub fn list(&self, rel: &str) -> anyhow::Result<Vec<Object>> {
        let key = self.key(rel);
        let found: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(self.inner.objects().list(Some(&key)).try_collect())
            .with_context(|| format!("cannot list {rel}/"))?;
        Ok(found
            .into_iter()
            .map(|m| Object {
                key: self.inner.relative(&m.location).to_owned(),
                size: m.size,
                last_modified: Timestamp::from_millisecond(m.last_modified.timestamp_millis())
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// The names directly under `rel/` that are "folders" (common prefixes).
    pub fn folders(&self, rel: &str) -> anyhow::Result<Vec<String>> {
        let key = self.key(rel);
        let listing = self
            .runtime
            .block_on(self.inner.objects().list_with_delimiter(Some(&key)))
            .with_context(|| format!("cannot list {rel}/"))?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Device serials with a folder under `devices/`.
    pub fn devices(&self) -> anyhow::Result<Vec<Serial>> {
        Ok(self
            .folders(keys::DEVICES)?
            .iter()
            .filter_map(|s| Serial::parse(s).ok())
            .collect())
    }

    /// Streams the object at `rel` into `out`, calling `progress` with the bytes so far;
    /// returns the SHA-256 (hex) of what was written.
    pub fn download(
        &self,
        rel: &str,
        out: &mut impl Write,
        mut progress: impl FnMut(u64),
    ) -> anyhow::Result<String> {
        let key = self.key(rel);
        self.runtime.block_on(async {
            let result = self
                .inner
                .objects()
                .get(&key)
                .await
                .with_context(|| format!("cannot read {rel}"))?;
            let mut stream = result.into_stream();
            let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
            let mut done = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.with_context(|| format!("cannot read {rel}"))?;
                hash.update(&chunk);
                out.write_all(&chunk)?;
                done += chunk.len() as u64;
                progress(done);
            }
            Ok(pcap_protocol::keys::hex(hash.finish().as_ref()))
        })
    }
}
