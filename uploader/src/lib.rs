//! The spool and the way to the store: where sealed capture segments wait and leave the host.
//!
//! # Layout (grows with the capture and uploader issues)
//!
//! - `spool/`: the encrypting segment writer (age, `.partial` -> fsync -> rename = sealed), the
//!   journal that is the one record of each segment's state, and crash recovery.
//! - `store`: the object store client (`file://` and `s3://`).
//! - `upload`: ordered, checksummed, retried uploads with a bandwidth cap.
//! - `reaper`: the only deleter of local files (uploaded, expired, over quota, revoked).
//!
//! # Where the data goes
//!
//! capture writer -> segment writer -> sealed segment -> journal -> uploader -> store; the
//! reaper removes what the journal says may go.

#![forbid(unsafe_code)]
