//! The manifest base of a capture: what the agent knows of it when it ends, written beside its
//! segments and queued for upload (`pcap_spool::manifest`). The uploader adds each file's size
//! and SHA-256 and uploads it after everything else: a manifest in the store means the capture
//! is complete. It holds no packet content and no session field (only counts per application).

use std::path::Path;

use jiff::Timestamp;
use pcap_config::Device;
use pcap_protocol::store::{Manifest, ManifestSegment, SessionCounts};
use pcap_protocol::{Document, FileName};
use pcap_spool::Journal;

use super::record::CaptureRecord;

/// The manifest of `record` as far as the agent knows it (no files yet).
pub fn base(device: &Device, record: &CaptureRecord) -> Manifest {
    Manifest {
        schema: Manifest::SCHEMA,
        capture_id: record.id.clone(),
        serial: device.serial.clone(),
        device_name: device.name.clone(),
        agent_version: crate::VERSION.to_owned(),
        origin: record.origin,
        request: record.request.clone(),
        grant_id: record.grant_id,
        interface: record.interface.clone(),
        effective_filter: record.effective_filter.clone(),
        inner_filter: record.inner_filter.clone(),
        limits: record.limits,
        link_type: record.link_type.clone(),
        started_at: record.started_at,
        ended_at: record.ended_at,
        state: record.state,
        stop_reason: record.stop_reason,
        error: record.error.clone(),
        stats: record.stats,
        segments: record
            .segments
            .iter()
            .map(|s| ManifestSegment {
                seq: s.seq,
                name: FileName::segment(s.seq),
                packets: s.packets,
                plaintext_bytes: s.plaintext_bytes,
            })
            .collect(),
        segments_lost: record.segments_lost,
        sessions: record.sessions.as_ref().map(|s| SessionCounts {
            total: s.total,
            by_application: s.by_application.clone(),
        }),
        files: Vec::new(),
        completed_at: None,
    }
}

/// Writes the manifest base of `record` and queues the manifest for upload.
pub fn write(
    spool_dir: &Path,
    journal: &Journal,
    device: &Device,
    record: &CaptureRecord,
    now: Timestamp,
) -> std::io::Result<()> {
    pcap_spool::manifest::write_base(spool_dir, journal, &base(device, record), now)
}
