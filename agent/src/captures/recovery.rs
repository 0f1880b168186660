//! At start, before any capture runs: the spool's crash recovery, and the capture records made
//! to agree with it. Segments a crash left unsealed are discarded and counted as lost on their
//! capture; captures that were running when the agent died are marked as failed, and what they
//! sealed before still gets its manifest and reaches the store.

use std::collections::HashMap;

use pcap_config::Config;
use pcap_protocol::{CaptureId, CaptureState, StopReason};
use pcap_spool::Journal;
use tracing::error;

use super::manifest;
use super::record::RecordStore;
use crate::clock::Clock;
use crate::incidents::Incidents;

/// See the module docs.
pub fn recover(
    records: &mut RecordStore,
    config: &Config,
    incidents: &Incidents,
    clock: &dyn Clock,
    journal: &Journal,
) -> std::io::Result<()> {
    let discarded = pcap_spool::recover(&config.paths.spool_dir, Some(journal))?;
    let mut lost: HashMap<CaptureId, u64> = HashMap::new();
    for d in discarded.iter().filter(|d| d.segment) {
        *lost.entry(d.capture_id.clone()).or_default() += 1;
    }
    let interrupted: Vec<_> = records.running().cloned().collect();
    for mut record in interrupted {
        let n = lost.remove(&record.id).unwrap_or(0);
        record.state = CaptureState::Failed;
        record.stop_reason = Some(StopReason::Error);
        record.ended_at = Some(clock.now());
        record.error = Some(format!(
            "the agent stopped while this capture ran; {n} unsealed segment(s) were discarded at restart"
        ));
        record.segments_lost += n;
        record.stats.segments = record.segments.len() as u64;
        error!(capture = %record.id, lost = n, "Capture interrupted by an agent crash.");
        manifest::write(
            &config.paths.spool_dir,
            journal,
            &config.device,
            &record,
            clock.now(),
        )?;
        incidents.record(
            clock.now(),
            "capture",
            record.error.clone().unwrap_or_default(),
        );
        records.save(record)?;
    }
    for (id, n) in lost {
        if let Some(mut record) = records.get(&id).cloned() {
            record.segments_lost += n;
            records.save(record)?;
        }
    }
    Ok(())
}
