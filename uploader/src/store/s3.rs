//! An S3 bucket as a store (any S3-compatible service): client settings, credentials, and
//! multipart uploads driven part by part, so that the upload's id is journaled from the start
//! and an interrupted one can be aborted.

use std::path::Path;
use std::sync::Arc;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::MultipartStore;
use object_store::path::Path as Key;
use object_store::{ClientOptions, PutPayload, RetryConfig};
use pcap_config::S3;
use tokio::io::AsyncReadExt;

use super::error::{UploadError, classify};
use crate::bandwidth::Bandwidth;

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

/// An S3 bucket: endpoint, region and credentials from `s3`, else the AWS environment.
pub(super) fn open(bucket: &str, s3: &S3) -> Result<Arc<AmazonS3>, String> {
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(!s3.path_style)
        // Every request carries a CRC-64/NVME of its body, which the store verifies (a tenth of
        // a cycle per byte, where SHA-256 costs 1.5); the header is signed, so hashing the
        // body again for the signature buys nothing.
        .with_checksum_algorithm(object_store::aws::Checksum::CRC64NVME)
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
    Ok(Arc::new(store))
}

/// Aborts the multipart upload `id` of `key`. An upload the store no longer knows counts as
/// aborted; a network failure is an error (try again later, so nothing is left open); a
/// refusal is logged and passed over, since retrying cannot help (the bucket's lifecycle rule
/// for incomplete uploads covers it).
pub(super) async fn abort(s3: &AmazonS3, key: &Key, id: &str) -> Result<(), UploadError> {
    match s3.abort_multipart(key, &id.to_owned()).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => match classify(&format!("cannot abort the upload {id} of {key}"), e) {
            UploadError::Transient(m) => Err(UploadError::Transient(m)),
            other => {
                tracing::warn!(key = %key, error = %other, "Cannot abort an interrupted multipart upload; leaving it to the bucket's lifecycle rule.");
                Ok(())
            }
        },
    }
}

/// A multipart upload driven part by part, so its id is known (and journaled) from the start.
pub(super) async fn upload_parts(
    s3: &AmazonS3,
    key: &Key,
    file: &mut tokio::fs::File,
    part_size: usize,
    check: &mut super::check::Check<'_>,
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
            check.update(&part);
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
        // A file that changed on disk since its sealing is not completed (and so aborted).
        check.verify()?;
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
