//! The spool: encrypted capture files on their way to the store, and the journal that is the
//! one record of each file's state. Both the capture engine (which writes segments) and the
//! uploader (which sends and reaps them) build on this crate; nothing here talks to the
//! network.
//!
//! # Layout
//!
//! - [`Spool`] (`spool.rs`): where segments are written and to whom they are encrypted; it
//!   admits a new file only if the [`gate`] says there is room.
//! - [`segment`]: one file, an age stream into `.partial`, sealed by fsync and rename;
//!   [`sink`] underneath writes the ciphertext in 1 MiB blocks with `O_DIRECT` and hashes it.
//! - [`journal`]: the checksummed, fsynced log of every file's state.
//! - [`recover`]: crash recovery at start, before anything writes.
//! - [`gate`]: spool admission: the quota and the reaper's verdict, checked when a file starts.
//! - [`manifest`]: the capture's manifest base, written when it ends, completed for upload.
//! - [`usage`]: bytes and free space of the spool.
//! - [`fsio`]: atomic writes and bounded reads for small state files.
//! - [`error`]: the spool's error type, [`SpoolError`].
//!
//! # Invariants
//!
//! 1. Plaintext packets never touch the disk. A segment is encrypted to the research team's age
//!    recipients as it is written; the agent holds no identity that could decrypt it.
//! 2. A file named `<seq>.pcap.age` is *sealed*: complete, fsynced, and renamed into place with
//!    the directory fsynced after. Nothing may lose a sealed segment until the store has
//!    confirmed it; only the reaper deletes sealed files.
//! 3. A file named `<seq>.pcap.age.partial` is being written by a live capture, or is the
//!    remains of a crash. It is never uploaded.
//! 4. The journal records a change before anything acts on it: a file is `open` in the journal
//!    before it exists, `sealed` once renamed, `uploading` before its upload starts, and a
//!    deletion is journaled before the file is removed.
//!
//! # On-disk format
//!
//! ```text
//! <spool_dir>/journal.log                  the journal (see journal.rs for its records)
//! <spool_dir>/<capture_id>/                capture_id: an agent-generated UUID v7
//!     000001.pcap.age.partial              open segment (age stream, not finished)
//!     000001.pcap.age                      sealed segment: an age file whose plaintext is a
//!                                          pcap file (nanosecond timestamps)
//!     sessions.json.age                    the capture's session records (JSON lines),
//!                                          sealed when the capture ends
//!     capture.json                         the manifest's base, written when it ends; the
//!                                          journal knows it as manifest.json
//! ```
//!
//! # States of a file (journal)
//!
//! ```text
//! open --seal--> sealed --upload starts--> uploading --store confirms--> uploaded --reaper--> deleted
//!   |              |  ^                        |
//!   |              |  +---- failure, crash ----+
//!   +--crash-------+--reaper (max_age, quota drop, purge on revocation), changed on disk--> lost
//! ```
//!
//! # After a crash
//!
//! - during a segment's write: its `.partial` is incomplete (no final age chunk). At start,
//!   [`recover`] removes every `.partial` and reports it, so the capture's record counts it as
//!   lost. The segments sealed before it are untouched.
//! - between fsync and rename: the same; the data was not yet sealed.
//! - between rename and the directory fsync: the rename may or may not survive; either the
//!   sealed file exists (complete, since its data was fsynced first) or the `.partial` does and
//!   is discarded as above.
//! - between the rename and the journal's `sealed` record: recovery adopts the sealed file.
//! - after sealing: the segment is in the spool and waits for upload.
//! - during an upload: the entry is `uploading`; recovery turns it back to `sealed` with its
//!   multipart id kept, and the uploader aborts that upload before it starts over.
//! - between the journal's deletion record and the removal: the file is already gone for the
//!   journal; the reaper removes what is left.

#![forbid(unsafe_code)]

pub mod checksum;
pub mod error;
pub mod fsio;
pub mod gate;
pub mod journal;
pub mod manifest;
mod recover;
pub mod segment;
pub mod sink;
mod spool;
pub mod usage;

pub use error::SpoolError;
pub use gate::SpoolGate;
pub use journal::{Entry, Journal, State};
pub use recover::{Discarded, recover};
pub use segment::{SealedSegment, SegmentWriter};
pub use sink::SpoolFile;
pub use spool::Spool;

/// Suffix of any file being written.
pub const PARTIAL: &str = ".partial";
/// The manifest's base in the spool: what the agent knows of the capture when it ends (no
/// packet content, no session field); the uploader adds the files' sizes and digests.
pub const MANIFEST_BASE: &str = "capture.json";
