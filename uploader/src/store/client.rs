//! The store client: one [`Store`] for a local directory or an S3 bucket, with the key
//! layout of `pcap_protocol::store::keys` under the store's prefix.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::aws::AmazonS3;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use pcap_config::{S3, StoreUrl};
use pcap_protocol::store::keys;
use pcap_protocol::{CaptureId, Document, FileName, Serial, schema};
use tokio::io::AsyncReadExt;

use pcap_spool::checksum::Checksum;

use super::check::Check;
use super::error::{GetError, StoreError, UploadError, Uploaded, classify};
use super::{local, s3};
use crate::bandwidth::Bandwidth;

#[derive(Debug, Clone)]
enum Backend {
    Local {
        store: Arc<LocalFileSystem>,
        root: PathBuf,
    },
    S3(Arc<AmazonS3>),
}

/// An opened store.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    prefix: String,
    url: String,
}

impl Store {
    /// Opens the store at `url` with the S3 settings `s3` (used for `s3://` only).
    pub fn open(url: &StoreUrl, settings: &S3) -> Result<Self, StoreError> {
        s3::install_crypto_provider();
        let failed = |message: String| StoreError {
            url: url.to_string(),
            message,
        };
        let (backend, prefix) = match url {
            StoreUrl::File(root) => (
                Backend::Local {
                    store: local::open(root).map_err(failed)?,
                    root: root.clone(),
                },
                String::new(),
            ),
            StoreUrl::S3 { bucket, prefix } => (
                Backend::S3(s3::open(bucket, settings).map_err(failed)?),
                prefix.clone(),
            ),
        };
        Ok(Store {
            backend,
            prefix,
            url: url.to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The object store behind this store.
    pub fn objects(&self) -> Arc<dyn ObjectStore> {
        match &self.backend {
            Backend::Local { store, .. } => store.clone(),
            Backend::S3(s) => s.clone(),
        }
    }

    /// The key of `rel` (a path built from validated ids only) under the store's prefix.
    pub fn key(&self, rel: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(rel)
        } else {
            Key::from(format!("{}/{rel}", self.prefix))
        }
    }

    /// The key of one file of a capture.
    pub fn capture_key(&self, serial: &Serial, capture: &CaptureId, name: &FileName) -> Key {
        self.key(&keys::capture_file(serial, capture, name))
    }

    /// The object at `key` if it exists, refusing one over `max` bytes without reading it: a
    /// document from the store never makes the reader allocate more than its type allows.
    pub async fn get_limited(&self, key: &Key, max: usize) -> Result<Option<Vec<u8>>, GetError> {
        use futures::StreamExt;
        let result = match self.objects().get(key).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(GetError::Store(e.to_string())),
        };
        if result.meta.size > max as u64 {
            return Err(GetError::TooLarge(result.meta.size));
        }
        let mut out = Vec::with_capacity(result.meta.size as usize);
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| GetError::Store(e.to_string()))?;
            if out.len() + chunk.len() > max {
                return Err(GetError::TooLarge((out.len() + chunk.len()) as u64));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Some(out))
    }

    /// The document at `key` if there is one (at most `max` bytes, in a schema version this
    /// build reads).
    pub async fn get_document<T: Document>(
        &self,
        key: &Key,
        max: usize,
    ) -> Result<Option<T>, GetError> {
        match self.get_limited(key, max).await? {
            Some(bytes) => Ok(Some(schema::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Writes `doc` at `key` (a reader sees the old or the new document).
    pub async fn put_document<T: Document>(&self, key: &Key, doc: &T) -> Result<(), UploadError> {
        self.put_bytes(key, schema::encode(doc)).await
    }

    /// `key` without the store's prefix: the key as [`keys`] builds it.
    pub fn relative<'k>(&self, key: &'k Key) -> &'k str {
        let k = key.as_ref();
        if self.prefix.is_empty() {
            return k;
        }
        k.strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(k)
    }

    /// Stores `bytes` at `key` in one request.
    pub async fn put_bytes(&self, key: &Key, bytes: Vec<u8>) -> Result<(), UploadError> {
        self.objects()
            .put(key, PutPayload::from(bytes))
            .await
            .map(drop)
            .map_err(|e| classify(&format!("cannot store {key}"), e))
    }

    /// Uploads the file at `path` to `key`: one request up to `part_size`, else a multipart
    /// upload whose id is reported to `open` (to abort it after a crash; `None` once it is
    /// closed: completed or aborted). The bytes read are checked against `sealed` (the
    /// checksum recorded at sealing) before the object is completed: a file that changed on
    /// disk is never stored as good ([`UploadError::Corrupted`]). Checks the size the store
    /// reports afterwards. A local store on the spool's file system gets a hard link, which
    /// reads nothing (see [`local::link`]).
    pub async fn upload_file(
        &self,
        key: &Key,
        path: &Path,
        part_size: usize,
        bandwidth: &Bandwidth,
        sealed: Option<(Checksum, &str)>,
        open: impl FnMut(Option<&str>),
    ) -> Result<Uploaded, UploadError> {
        let io = |e: std::io::Error| {
            UploadError::Transient(format!("cannot read {}: {e}", path.display()))
        };
        if let Backend::Local { root, .. } = &self.backend
            && let Some(uploaded) = local::link(root, key, path).await?
        {
            return Ok(uploaded);
        }
        let mut file = tokio::fs::File::open(path).await.map_err(io)?;
        let size = file.metadata().await.map_err(io)?.len();
        let mut check = Check::new(sealed, path);
        if size <= part_size as u64 {
            let mut buf = Vec::with_capacity(size as usize);
            file.read_to_end(&mut buf).await.map_err(io)?;
            check.update(&buf);
            check.verify()?;
            bandwidth.take(buf.len() as u64).await;
            self.put_bytes(key, buf).await?;
        } else {
            match &self.backend {
                Backend::S3(s3) => {
                    s3::upload_parts(s3, key, &mut file, part_size, &mut check, bandwidth, open)
                        .await?
                }
                Backend::Local { store, .. } => {
                    local::upload_parts(store, key, &mut file, part_size, &mut check, bandwidth)
                        .await?
                }
            }
        }
        let stored = self
            .objects()
            .head(key)
            .await
            .map_err(|e| classify(&format!("cannot check {key} after its upload"), e))?;
        if stored.size != size {
            return Err(UploadError::Transient(format!(
                "{key} holds {} bytes after the upload, the spool file {size}",
                stored.size
            )));
        }
        Ok(Uploaded {
            size,
            verified: check.checked(),
        })
    }

    /// Abandons an upload that was interrupted (by a crash or a failure): aborts the S3
    /// multipart upload `upload_id`, or removes the staging files of a local one. An upload
    /// the store no longer knows counts as aborted. A network failure is an error (try again
    /// later, so nothing is left open); a refusal is logged and passed over, since retrying
    /// cannot help (the bucket's lifecycle rule for incomplete uploads covers it).
    pub async fn abort(&self, key: &Key, upload_id: Option<&str>) -> Result<(), UploadError> {
        match (&self.backend, upload_id) {
            (Backend::S3(s3), Some(id)) => s3::abort(s3, key, id).await,
            (Backend::Local { root, .. }, _) => {
                local::remove_staging(root, key);
                Ok(())
            }
            (Backend::S3(_), None) => Ok(()),
        }
    }
}
