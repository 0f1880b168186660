//! The store as the portal sees it: the same client as the agent's (object_store), on
//! `file:///path` or `s3://bucket/prefix`, with the key layout of `pcap_protocol::store::keys`.
//! S3 settings come from `--s3-endpoint`, `--s3-region`, `--s3-path-style`,
//! `--s3-credentials` (or `PCAP_S3_ENDPOINT`, `PCAP_S3_REGION`, `PCAP_S3_PATH_STYLE`,
//! `PCAP_S3_CREDENTIALS`), else the standard AWS environment.
//!
//! Every call is async: the CLI runs each command on one runtime at its edge (`main.rs`), the
//! console calls the same functions from its handlers. Listings stream: [`Store::list_stream`]
//! pages through the store's LIST results as they come, and [`Store::fetch`] reads a listed
//! document through a [`Cache`] of parsed documents; the commands run up to
//! [`Store::concurrency`] of those at once.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, bail};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use object_store::ObjectStoreExt;
use object_store::path::Path as Key;
use pcap_config::StoreUrl;
use pcap_protocol::Document;

use crate::bell::Bell;
use crate::cache::Cache;

/// Largest document (grant, heartbeat, result, manifest) read from the store.
pub const MAX_DOCUMENT: usize = 1 << 20;

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
    /// What changes when the object is written again: its ETag (else time and size).
    pub version: String,
}

impl Object {
    fn from_meta(inner: &pcap_uploader::store::Store, m: object_store::ObjectMeta) -> Self {
        let last_modified =
            Timestamp::from_millisecond(m.last_modified.timestamp_millis()).unwrap_or_default();
        Object {
            key: inner.relative(&m.location).to_owned(),
            size: m.size,
            version: m
                .e_tag
                .unwrap_or_else(|| format!("{}-{}", last_modified.as_millisecond(), m.size)),
            last_modified,
        }
    }
}

pub struct Store {
    inner: pcap_uploader::store::Store,
    url: StoreUrl,
    concurrency: usize,
    /// The devices' doorbell, rung after a document for them is written.
    bell: Bell,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.url).finish()
    }
}

impl Store {
    /// Opens the store at `url`.
    pub fn open(url: Option<&str>, s3: &S3Args, concurrency: usize) -> anyhow::Result<Self> {
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
        Ok(Store {
            inner,
            url,
            concurrency: concurrency.max(1),
            bell: Bell::default(),
        })
    }

    /// Rings `bell` after each document written for devices ([`Store::ring`]).
    pub fn with_bell(mut self, bell: Bell) -> Self {
        self.bell = bell;
        self
    }

    /// Tells `serials` to read the store now (if a doorbell is configured).
    pub async fn ring(&self, serials: &[pcap_protocol::Serial]) {
        self.bell.ring(serials).await;
    }

    /// Store requests a listing keeps in flight at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Every object under `rel/`, streamed as the store's LIST pages arrive. The objects of one
    /// folder come one after the other (S3 lists in key order; a local store is sorted here).
    pub fn list_stream(&self, rel: &str) -> BoxStream<'static, anyhow::Result<Object>> {
        let key = self.key(rel);
        let inner = self.inner.clone();
        let what = format!("cannot list {rel}/");
        let listing = self.inner.objects().list(Some(&key));
        if matches!(self.url, StoreUrl::File(_)) {
            let sorted = async move {
                let mut found: Vec<object_store::ObjectMeta> = listing.try_collect().await?;
                found.sort_by(|a, b| a.location.cmp(&b.location));
                Ok::<_, object_store::Error>(futures::stream::iter(
                    found.into_iter().map(Ok::<_, object_store::Error>),
                ))
            };
            return futures::stream::once(sorted)
                .try_flatten()
                .map(move |r| {
                    r.map(|m| Object::from_meta(&inner, m))
                        .map_err(|e| anyhow::Error::new(e).context(what.clone()))
                })
                .boxed();
        }
        listing
            .map(move |r| {
                r.map(|m| Object::from_meta(&inner, m))
                    .map_err(|e| anyhow::Error::new(e).context(what.clone()))
            })
            .boxed()
    }

    /// The listed document `o` (at most [`MAX_DOCUMENT`]) as `parse` reads it: from `cache`
    /// if it holds `o`'s version, else from the store. Only a document that `parse` accepts
    /// is cached. `None` if it is gone since it was listed.
    pub async fn fetch<T>(
        &self,
        o: &Object,
        cache: &Mutex<Cache>,
        parse: impl Fn(&[u8]) -> anyhow::Result<T>,
    ) -> anyhow::Result<Option<T>> {
        let cached = cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&o.key, &o.version);
        if let Some(parsed) = cached.and_then(|bytes| parse(&bytes).ok()) {
            return Ok(Some(parsed));
        }
        let Some(bytes) = self
            .inner
            .get_limited(&self.key(&o.key), MAX_DOCUMENT)
            .await
            .with_context(|| format!("cannot read {}", o.key))?
        else {
            return Ok(None);
        };
        let parsed = parse(&bytes).with_context(|| format!("cannot read {}", o.key))?;
        cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(&o.key, &o.version, &bytes);
        Ok(Some(parsed))
    }

    /// Deletes every object of `keys` (S3 deletes up to 1,000 in one request); returns how
    /// many were deleted. Objects already gone count as deleted.
    pub async fn delete_many(&self, keys: Vec<String>) -> anyhow::Result<usize> {
        let locations: Vec<Key> = keys.iter().map(|k| self.key(k)).collect();
        let n = locations.len();
        let input = futures::stream::iter(locations.into_iter().map(Ok)).boxed();
        let mut results = self.inner.objects().delete_stream(input);
        while let Some(r) = results.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e).context("cannot delete"),
            }
        }
        Ok(n)
    }

    /// The store's URL.
    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    fn key(&self, rel: &str) -> Key {
        self.inner.key(rel)
    }

    /// The object at `rel`, or `None` if there is none (at most `max` bytes).
    pub async fn get_limited(&self, rel: &str, max: usize) -> anyhow::Result<Option<Vec<u8>>> {
        self.inner
            .get_limited(&self.key(rel), max)
            .await
            .with_context(|| format!("cannot read {rel}"))
    }

    /// The raw bytes of a document (a signed envelope): at most [`MAX_DOCUMENT`].
    pub async fn get(&self, rel: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.get_limited(rel, MAX_DOCUMENT).await
    }

    /// The document at `rel` as `T` (refusing a newer major schema version), if there is one.
    pub async fn document<T: Document>(&self, rel: &str) -> anyhow::Result<Option<T>> {
        self.inner
            .get_document(&self.key(rel), MAX_DOCUMENT)
            .await
            .with_context(|| format!("cannot read {rel}"))
    }

    /// Writes the object at `rel` (a reader sees the old or the new document).
    pub async fn put(&self, rel: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.inner
            .put_bytes(&self.key(rel), bytes)
            .await
            .with_context(|| format!("cannot write {rel}"))
    }

    /// The bytes of the object at `rel` as they arrive.
    pub async fn get_stream(
        &self,
        rel: &str,
    ) -> anyhow::Result<BoxStream<'static, object_store::Result<bytes::Bytes>>> {
        let result = self
            .inner
            .objects()
            .get(&self.key(rel))
            .await
            .with_context(|| format!("cannot read {rel}"))?;
        Ok(result.into_stream())
    }
}
