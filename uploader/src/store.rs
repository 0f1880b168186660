//! The store, through the `object_store` crate: a local directory (`file:///path`, the
//! embedded default) or any S3-compatible service (`s3://bucket/prefix`). Keys come from
//! `pcap_protocol::store::keys` (`captures/<serial>/<capture_id>/<file>`, `devices/<serial>/...`)
//! under the store's prefix. Uploads stream the spool file in parts (multipart above one part),
//! hash it on the way, and check the stored size afterwards.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::multipart::MultipartStore;
use object_store::path::Path as Key;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use pcap_config::{S3, StoreUrl};
use pcap_protocol::keys::hex;
use pcap_protocol::store::keys;
use pcap_protocol::{CaptureId, Document, FileName, Serial, schema};
use tokio::io::AsyncReadExt;

use crate::bandwidth::Bandwidth;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the store {url}: {message}")]
pub struct StoreError {
    pub url: String,
    pub message: String,
}

/// Why an upload failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// Retrying cannot help until an operator fixes something (credentials, bucket, policy).
    #[error("{0}")]
    Permanent(String),
    /// Worth another try later (network, server error, throttling).
    #[error("{0}")]
    Transient(String),
    /// The spool file no longer holds what was sealed; it cannot be uploaded as good.
    #[error("{0}")]
    Corrupted(String),
}

impl UploadError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, UploadError::Permanent(_))
    }
}

fn classify(context: &str, e: object_store::Error) -> UploadError {
    use object_store::Error as E;
    let text = format!("{context}: {e}");
    match e {
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => UploadError::Permanent(format!(
            "{text} (check the store credentials and the bucket policy)"
        )),
        E::NotFound { .. } => {
            UploadError::Permanent(format!("{text} (check that the bucket exists)"))
        }
        _ if text.contains("NoSuchBucket")
            || text.contains("InvalidAccessKeyId")
            || text.contains("SignatureDoesNotMatch") =>
        {
            UploadError::Permanent(format!(
                "{text} (check the store credentials and the bucket)"
            ))
        }
        _ => UploadError::Transient(text),
    }
}

/// Why a document could not be read from the store.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    #[error("the object is larger than {0} bytes")]
    TooLarge(u64),
    #[error("{0}")]
    Store(String),
    #[error(transparent)]
    Document(#[from] pcap_protocol::DocumentError),
}

/// What an upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub size: u64,
    /// Lowercase hex SHA-256 of the object.
    pub sha256: String,
}

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

/// Installs rustls' ring provider as the process default (once; later calls do nothing).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Access keys read from a credentials file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    session_token: Option<String>,
}

fn read_credentials(path: &Path) -> Result<Credentials, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "the credentials file {} is readable by others (mode {mode:o}); chmod 600 it",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))
}

impl Store {
    /// Opens the store at `url` with the S3 settings `s3` (used for `s3://` only).
    pub fn open(url: &StoreUrl, s3: &S3) -> Result<Self, StoreError> {
        install_crypto_provider();
        let failed = |message: String| StoreError {
            url: url.to_string(),
            message,
        };
        let (backend, prefix) = match url {
            StoreUrl::File(root) => (open_local(root).map_err(failed)?, String::new()),
            StoreUrl::S3 { bucket, prefix } => {
                (open_s3(bucket, s3).map_err(failed)?, prefix.clone())
            }
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
    /// closed: completed or aborted). Checks the size
    /// the store reports afterwards.
    pub async fn upload_file(
        &self,
        key: &Key,
        path: &Path,
        part_size: usize,
        bandwidth: &Bandwidth,
        open: impl FnMut(Option<&str>),
    ) -> Result<Uploaded, UploadError> {
        let io = |e: std::io::Error| {
            UploadError::Transient(format!("cannot read {}: {e}", path.display()))
        };
        if let Backend::Local { root, .. } = &self.backend
            && let Some(uploaded) = link_local(root, key, path, bandwidth).await?
        {
            return Ok(uploaded);
        }
        let mut file = tokio::fs::File::open(path).await.map_err(io)?;
        let size = file.metadata().await.map_err(io)?.len();
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        if size <= part_size as u64 {
            let mut buf = Vec::with_capacity(size as usize);
            file.read_to_end(&mut buf).await.map_err(io)?;
            hash.update(&buf);
            bandwidth.take(buf.len() as u64).await;
            self.put_bytes(key, buf).await?;
        } else {
            match &self.backend {
                Backend::S3(s3) => {
                    upload_parts(s3, key, &mut file, part_size, &mut hash, bandwidth, open).await?
                }
                Backend::Local { store, .. } => {
                    let upload = store
                        .put_multipart(key)
                        .await
                        .map_err(|e| classify(&format!("cannot start the upload of {key}"), e))?;
                    let mut writer =
                        object_store::WriteMultipart::new_with_chunk_size(upload, part_size);
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        let n = file.read(&mut buf).await.map_err(io)?;
                        if n == 0 {
                            break;
                        }
                        hash.update(&buf[..n]);
                        bandwidth.take(n as u64).await;
                        writer
                            .wait_for_capacity(1)
                            .await
                            .map_err(|e| classify(&format!("cannot upload {key}"), e))?;
                        writer.write(&buf[..n]);
                    }
                    writer.finish().await.map_err(|e| {
                        classify(&format!("cannot complete the upload of {key}"), e)
                    })?;
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
            sha256: hex(hash.finish().as_ref()),
        })
    }

    /// Abandons an upload that was interrupted (by a crash or a failure): aborts the S3
    /// multipart upload `upload_id`, or removes the staging files of a local one. An upload
    /// the store no longer knows counts as aborted. A network failure is an error (try again
    /// later, so nothing is left open); a refusal is logged and passed over, since retrying
    /// cannot help (the bucket's lifecycle rule for incomplete uploads covers it).
    pub async fn abort(&self, key: &Key, upload_id: Option<&str>) -> Result<(), UploadError> {
        match (&self.backend, upload_id) {
            (Backend::S3(s3), Some(id)) => match s3.abort_multipart(key, &id.to_owned()).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => match classify(&format!("cannot abort the upload {id} of {key}"), e) {
                    UploadError::Transient(m) => Err(UploadError::Transient(m)),
                    other => {
                        tracing::warn!(key = %key, error = %other, "Cannot abort an interrupted multipart upload; leaving it to the bucket's lifecycle rule.");
                        Ok(())
                    }
                },
            },
            (Backend::Local { root, .. }, _) => {
                let dest = root.join(key.as_ref());
                let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else {
                    return Ok(());
                };
                let staging = format!("{}#", name.to_string_lossy());
                if let Ok(entries) = std::fs::read_dir(dir) {
                    for e in entries.filter_map(Result::ok) {
                        if e.file_name().to_string_lossy().starts_with(&staging) {
                            let _ = std::fs::remove_file(e.path());
                        }
                    }
                }
                Ok(())
            }
            (Backend::S3(_), None) => Ok(()),
        }
    }
}

/// A local directory as a store; created if missing. Every object is fsynced when written.
fn open_local(root: &Path) -> Result<Backend, String> {
    std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let store = LocalFileSystem::new_with_prefix(root)
        .map_err(|e| e.to_string())?
        .with_fsync(true);
    Ok(Backend::Local {
        store: Arc::new(store),
        root: root.to_owned(),
    })
}

/// An S3 bucket: endpoint, region and credentials from `s3`, else the AWS environment.
fn open_s3(bucket: &str, s3: &S3) -> Result<Backend, String> {
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(!s3.path_style)
        .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
        // The SHA-256 checksum header is signed and the store verifies the body against it;
        // hashing the body a second time for the signature buys nothing.
        .with_unsigned_payload(true)
        .with_retry(RetryConfig {
            max_retries: 4,
            retry_timeout: std::time::Duration::from_secs(60),
            ..RetryConfig::default()
        });
    let endpoint = s3
        .endpoint
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
    if let Some(ep) = &endpoint {
        b = b.with_endpoint(ep);
    }
    let region = s3
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok());
    b = b.with_region(region.unwrap_or_else(|| "us-east-1".to_owned()));
    if let Some(path) = &s3.credentials_file {
        let c = read_credentials(path)?;
        b = b
            .with_access_key_id(c.access_key_id)
            .with_secret_access_key(c.secret_access_key);
        if let Some(t) = c.session_token {
            b = b.with_token(t);
        }
    }
    // Plain HTTP only when the configured endpoint says so (a test server, a store on the
    // host's own network). The client options carry it: setting them replaces the builder's.
    // A whole request may take long on a slow or lossy link (a part is 8 MiB by default); a
    // dead endpoint is found by the connect timeout.
    let mut options = ClientOptions::new()
        .with_connect_timeout(std::time::Duration::from_secs(10))
        .with_timeout(std::time::Duration::from_secs(600))
        .with_allow_http(
            endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://")),
        );
    if let Some(ca) = &s3.ca_bundle {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
        for cert in object_store::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())? {
            options = options.with_root_certificate(cert);
        }
    }
    let store = b
        .with_client_options(options)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Backend::S3(Arc::new(store)))
}

/// Puts the sealed file at `path` into a local store on the same file system as a hard link
/// instead of a copy: a sealed file never changes, so the store's object can be the same
/// bytes, and a capture's upload then costs the host one read (the SHA-256 check every upload
/// makes) instead of a read and a write through the page cache. The link is made under a
/// staging name (`<name>#0`, which listings skip and [`Store::abort`] removes), hashed, then
/// renamed into place. `None` if the store is on another file system (or cannot hold links):
/// the caller copies.
async fn link_local(
    root: &Path,
    key: &Key,
    path: &Path,
    bandwidth: &Bandwidth,
) -> Result<Option<Uploaded>, UploadError> {
    let dest = root.join(key.as_ref());
    let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Ok(None);
    };
    let staging = dir.join(format!("{}#0", name.to_string_lossy()));
    let failed = |what: &str, e: std::io::Error| {
        UploadError::Transient(format!("cannot {what} {}: {e}", dest.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| failed("create the directory of", e))?;
    remove_if_present(&staging).map_err(|e| failed("clear the staging name of", e))?;
    match std::fs::hard_link(path, &staging) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EXDEV | libc::EPERM | libc::EOPNOTSUPP | libc::EMLINK)
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(failed("link the spool file into", e)),
    }
    let result = async {
        let (size, sha256) = hash_file(&staging, bandwidth)
            .await
            .map_err(|e| UploadError::Transient(format!("cannot read {}: {e}", path.display())))?;
        std::fs::rename(&staging, &dest)
            .and_then(|()| std::fs::File::open(dir)?.sync_all())
            .map_err(|e| failed("rename the link into place at", e))?;
        // When `dest` already was a link to the same file (an upload repeated after a crash
        // between the rename and the journal), rename does nothing and the staging name stays.
        remove_if_present(&staging).map_err(|e| failed("remove the staging name of", e))?;
        Ok(Uploaded { size, sha256 })
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    result.map(Some)
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Size and lowercase hex SHA-256 of the file at `path`, read at most as fast as `bandwidth`.
async fn hash_file(path: &Path, bandwidth: &Bandwidth) -> std::io::Result<(u64, String)> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        bandwidth.take(n as u64).await;
        size += n as u64;
    }
    Ok((size, hex(hash.finish().as_ref())))
}

/// A multipart upload driven part by part, so its id is known (and journaled) from the start.
async fn upload_parts(
    s3: &AmazonS3,
    key: &Key,
    file: &mut tokio::fs::File,
    part_size: usize,
    hash: &mut ring::digest::Context,
    bandwidth: &Bandwidth,
    mut open: impl FnMut(Option<&str>),
) -> Result<(), UploadError> {
    let id = s3
        .create_multipart(key)
        .await
        .map_err(|e| classify(&format!("cannot start the upload of {key}"), e))?;
    open(Some(&id));
    let result = async {
        let mut parts = Vec::new();
        loop {
            let mut part = Vec::with_capacity(part_size);
            while part.len() < part_size {
                let n = (&mut *file)
                    .take((part_size - part.len()) as u64)
                    .read_to_end(&mut part)
                    .await
                    .map_err(|e| {
                        UploadError::Transient(format!("cannot read the spool file: {e}"))
                    })?;
                if n == 0 {
                    break;
                }
            }
            if part.is_empty() {
                break;
            }
            hash.update(&part);
            bandwidth.take(part.len() as u64).await;
            let done = s3
                .put_part(key, &id, parts.len(), PutPayload::from(part))
                .await
                .map_err(|e| {
                    classify(
                        &format!("cannot upload part {} of {key}", parts.len() + 1),
                        e,
                    )
                })?;
            parts.push(done);
        }
        s3.complete_multipart(key, &id, parts)
            .await
            .map_err(|e| classify(&format!("cannot complete the upload of {key}"), e))
    }
    .await;
    // A failed upload is aborted at once if the store can be reached, else later (the id
    // stays recorded).
    if result.is_ok() || s3.abort_multipart(key, &id).await.is_ok() {
        open(None);
    }
    result.map(drop)
}
