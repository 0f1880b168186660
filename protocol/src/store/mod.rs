//! The store as a channel between the parties: where each document lives ([`keys`]) and the
//! documents the agent writes there: its heartbeat ([`Heartbeat`]), its answer to each remote
//! request ([`RequestResult`]) and each capture's [`Manifest`]. The signed documents it reads
//! (grants, revocations, requests) are in [`crate::authorization`] and [`crate::request`].
//!
//! ```text
//! devices/<serial>/grant.json                  signed Grant or Revocation    (portal writes)
//! devices/<serial>/status.json                 Heartbeat                     (agent writes)
//! devices/<serial>/requests/<request_id>.json  signed CaptureRequest         (portal writes)
//! devices/<serial>/results/<request_id>.json   RequestResult                 (agent writes)
//! captures/<serial>/<capture_id>/000001.pcap.age ...  encrypted segments     (agent writes)
//! captures/<serial>/<capture_id>/sessions.json.age    encrypted sessions     (agent writes)
//! captures/<serial>/<capture_id>/manifest.json        Manifest, written last (agent writes)
//! audit/<entry_id>.json                        AuditEntry                    (portal writes)
//! ```
//!
//! Every document carries a schema version ([`crate::schema`]); read them with
//! [`crate::schema::decode`], which refuses a newer major version.

pub mod audit;
pub mod heartbeat;
pub mod keys;
pub mod manifest;
pub mod result;

pub use audit::{AuditAction, AuditEntry};
pub use heartbeat::{
    CaptureCounts, Channel, DoorbellReport, DoorbellState, Heartbeat, HeartbeatAuthorization,
    Incident, SpoolSummary, UploadStatus,
};
pub use manifest::{Checksum, FileState, Manifest, ManifestFile, ManifestSegment, SessionCounts};
pub use result::{RequestResult, ResultState};
