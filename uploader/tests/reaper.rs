//! The reaper deletes only files of the spool: a journal altered to name paths outside it (the
//! journal skips such records) never makes it reach out.

use std::sync::Arc;

use pcap_spool::{Journal, SpoolGate};
use pcap_uploader::reaper::Reaper;

/// A journal record as the journal writes it: length, CRC-32, JSON.
fn raw_record(json: &serde_json::Value) -> Vec<u8> {
    let payload = serde_json::to_vec(json).unwrap();
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

#[test]
fn a_journal_record_naming_a_path_outside_the_spool_is_never_acted_on() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("spool");
    std::fs::create_dir_all(&dir).unwrap();
    let victim = root.path().join("victim");
    std::fs::write(&victim, b"not the spool's").unwrap();
    let record = |capture: &str, name: &str| {
        raw_record(&serde_json::json!({
            "capture": capture, "name": name, "state": "uploaded", "size": 15,
            "sealed_at": "2020-01-01T00:00:00Z", "uploaded_at": "2020-01-01T00:00:00Z",
            "attempts": 1
        }))
    };
    let mut log = record("0193a0b1-0000-7000-8000-000000000004", "000001.pcap.age");
    log.extend(record("..", "victim"));
    log.extend(record(
        "0193a0b1-0000-7000-8000-000000000004",
        "../../victim",
    ));
    std::fs::write(dir.join("journal.log"), log).unwrap();

    let (journal, replay) = Journal::open(&dir).unwrap();
    assert_eq!((replay.records, replay.invalid), (3, 2));
    assert_eq!(journal.entries().len(), 1);
    // The reaper, which deletes uploaded files, never reaches outside the spool.
    let reaper = Reaper::new(Arc::new(journal), &dir, SpoolGate::default());
    let policy = pcap_config::SpoolPolicy {
        max_bytes: 0,
        min_free_percent: 100,
        keep_uploaded_for: std::time::Duration::ZERO,
        max_age: std::time::Duration::ZERO,
        on_full: pcap_config::OnFull::DropOldest,
        on_revoke: pcap_config::OnRevoke::Purge,
        reap_interval: std::time::Duration::from_secs(60),
    };
    reaper.reap(&policy, jiff::Timestamp::now(), true);
    assert!(victim.exists());
}
