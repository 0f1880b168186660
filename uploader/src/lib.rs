//! The way from the spool to the store, and the bound on the spool.
//!
//! # Layout
//!
//! - [`store`]: the store client (object_store): a local directory or any S3-compatible
//!   service; keys from `pcap_protocol::store::keys`; checksummed, size-checked uploads.
//! - [`upload`]: the uploader task: sealed files in order per capture, the manifest last,
//!   retries with backoff, interrupted uploads aborted before they start over.
//! - [`reaper`]: the only deleter of local spool files: uploaded, expired, purged on
//!   revocation, and over the quota; it sets the spool's admission gate.
//! - [`bandwidth`]: the upload bandwidth cap.
//!
//! # Where the data goes
//!
//! spool journal (`pcap-spool`: a file is sealed) -> [`upload::Uploader`] -> [`store::Store`]
//! -> journal (uploaded) -> [`reaper::Reaper`] deletes the local file.

#![forbid(unsafe_code)]

pub mod bandwidth;
pub mod reaper;
pub mod store;
pub mod upload;
