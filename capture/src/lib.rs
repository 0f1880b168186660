//! The capture engine: where packets enter pcap-agent.
//!
//! # Layout
//!
//! - [`device`]: opening an allowed interface with libpcap (snaplen, buffer, immediate mode,
//!   nanosecond timestamps) and telling its link type.
//! - [`filter`]: BPF validation without a device, and the effective filter that excludes the
//!   agent's own store traffic.
//! - [`limits`]: a request's limits resolved against the configured defaults and ceilings.
//! - [`rate`]: token buckets for packets/s and bytes/s, on packet timestamps.
//! - [`gate`]: the kernel side of the rate limit: over the limit, the kernel copies one byte
//!   per packet instead of the snaplen.
//! - [`pcapfile`]: the pcap file format (nanosecond variant).
//! - [`writer`]: the pcap writer, rotated by size and by a timer, writing through the spool's
//!   encrypting segment writer and announcing each sealed segment.
//! - [`worker`]: one named OS thread per capture, its stop handle, stop reasons and stats.
//! - [`session`]: the flow table and the twelve session fields; [`recorder`] feeds it during
//!   a capture and writes `sessions.json.age`; [`analyze`] runs it over a pcap file.
//! - [`error`]: the engine's error type, [`CaptureError`].
//!
//! # Where the data goes
//!
//! libpcap (BPF) -> rate limiter -> pcap writer -> spool segment writer (`pcap-spool`):
//! encrypted as written, sealed by rename, announced on a bounded channel to the scheduler,
//! which wakes the uploader. Nothing here talks to the network or the store: this crate links
//! no network client (CI checks `cargo tree -p pcap-capture`).

// One system call needs `unsafe`: attaching a BPF program (gate.rs), which libpcap's API
// cannot do for a program it did not compile itself.
#![deny(unsafe_code)]

pub mod analyze;
pub mod device;
pub mod error;
pub mod filter;
pub mod gate;
pub mod limits;
pub mod pcapfile;
pub mod rate;
pub mod recorder;
pub mod session;
pub mod worker;
pub mod writer;

pub use error::CaptureError;
pub use recorder::{SessionSpec, SessionsSummary, SharedSharing};
pub use worker::{CaptureSpec, InnerSpec, Outcome, Worker};
pub use writer::SegmentInfo;
