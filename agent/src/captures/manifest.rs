//! The manifest base of a capture: what the agent knows of it when it ends, written beside
//! its segments as `capture.json` and registered in the journal as `manifest.json`. The
//! uploader adds each file's size and SHA-256 and uploads it after everything else: a manifest
//! in the store means the capture is complete. It holds no packet content and no session field
//! (only counts per application).

use std::path::Path;

use jiff::Timestamp;
use pcap_uploader::spool::{Entry, Journal, MANIFEST, MANIFEST_BASE, State};
use serde_json::json;

use super::record::CaptureRecord;
use crate::fsutil::write_atomic;

/// Writes the manifest base of `record` and queues the manifest for upload.
pub fn write(
    spool_dir: &Path,
    journal: &Journal,
    serial: &str,
    name: Option<&str>,
    record: &CaptureRecord,
) -> std::io::Result<()> {
    let dir = spool_dir.join(&record.id);
    std::fs::create_dir_all(&dir)?;
    let base = json!({
        "capture_id": record.id,
        "serial": serial,
        "device_name": name,
        "agent_version": crate::VERSION,
        "origin": record.origin,
        "request": record.request,
        "grant_id": record.grant_id,
        "interface": record.interface,
        "effective_filter": record.effective_filter,
        "limits": record.limits,
        "link_type": record.link_type,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "state": record.state,
        "stop_reason": record.stop_reason,
        "error": record.error,
        "stats": record.stats,
        "segments": record.segments.iter().map(|s| json!({
            "seq": s.seq,
            "name": format!("{:06}.pcap.age", s.seq),
            "packets": s.packets,
            "plaintext_bytes": s.plaintext_bytes,
        })).collect::<Vec<_>>(),
        "segments_lost": record.segments_lost,
        "sessions": record.sessions.as_ref().map(|s| json!({
            "total": s.total,
            "by_application": s.by_application,
        })),
    });
    let mut bytes = serde_json::to_vec_pretty(&base).unwrap_or_default();
    bytes.push(b'\n');
    write_atomic(&dir.join(MANIFEST_BASE), &bytes)?;
    let mut entry = Entry::new(&record.id, MANIFEST, State::Sealed);
    entry.size = bytes.len() as u64;
    entry.sealed_at = Some(Timestamp::now());
    journal.put(entry)
}
