//! The spool and the way to the store: where sealed capture segments wait and leave the host.
//!
//! # Layout
//!
//! - [`spool`]: the encrypting segment writer (age, `.partial` -> fsync -> rename = sealed) and
//!   crash recovery of the spool directory. Its `mod.rs` holds the design notes.
//! - [`error`]: the spool's error type, [`SpoolError`].
//!
//! Still to come with the uploader: the journal (the one record of each segment's state), the
//! store client, ordered and checksummed uploads, and the reaper, the only deleter of local
//! files.
//!
//! # Where the data goes
//!
//! capture writer -> [`spool::SegmentWriter`] (encrypted as written) -> sealed segment,
//! announced to whoever uploads it -> store.

#![forbid(unsafe_code)]

pub mod bandwidth;
pub mod error;
pub mod reaper;
pub mod spool;
pub mod store;
pub mod upload;

pub use error::SpoolError;
pub use spool::{SealedSegment, SegmentWriter, Spool};
