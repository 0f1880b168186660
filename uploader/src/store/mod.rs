//! The store, through the `object_store` crate: a local directory (`file:///path`, the
//! embedded default) or any S3-compatible service (`s3://bucket/prefix`). Keys come from
//! `pcap_protocol::store::keys` (`captures/<serial>/<capture_id>/<file>`, `devices/<serial>/...`)
//! under the store's prefix. Uploads stream the spool file in parts (multipart above one part),
//! check it against its sealing on the way, and check the stored size afterwards.
//!
//! - `client.rs`: [`Store`], what the agent and the portal call, for either kind of store.
//! - `local.rs`: a directory: hard links for sealed files on the same file system, staging
//!   files, fsynced writes.
//! - `s3.rs`: an S3 bucket: endpoint, region, credentials, CA bundle, multipart uploads whose
//!   id is known from the start.
//! - `check.rs`: the bytes an upload reads against the checksum of their sealing.
//! - `error.rs`: why opening, uploading or reading failed, and whether retrying can help.

mod check;
mod client;
mod error;
mod local;
mod s3;

pub use client::Store;
pub use error::{GetError, StoreError, UploadError, Uploaded};
pub use s3::install_crypto_provider;
