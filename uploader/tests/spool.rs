//! Segments are encrypted as written, sealed by rename, and decrypt to exactly what was
//! written; half-written segments are discarded at recovery.

use std::io::Read;
use std::str::FromStr;
use std::sync::Arc;

use pcap_uploader::spool::{Entry, Journal, MANIFEST, MANIFEST_BASE, Spool, State, recover};

fn identity() -> age::x25519::Identity {
    age::x25519::Identity::generate()
}

fn decrypt(bytes: &[u8], id: &age::x25519::Identity) -> Vec<u8> {
    let decryptor = age::Decryptor::new(bytes).unwrap();
    let mut reader = decryptor
        .decrypt(std::iter::once(id as &dyn age::Identity))
        .unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn a_sealed_segment_decrypts_to_what_was_written_and_its_size_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let id = identity();
    let spool = Spool::new(dir.path(), &[id.to_public().to_string()]).unwrap();
    let mut seg = spool
        .create("0193a0b1-0000-7000-8000-000000000001", 1)
        .unwrap();
    let plaintext: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    for chunk in plaintext.chunks(1500) {
        seg.write_all(chunk).unwrap();
    }
    let partial = dir
        .path()
        .join("0193a0b1-0000-7000-8000-000000000001/000001.pcap.age.partial");
    assert!(partial.exists());
    let on_disk = std::fs::read(&partial).unwrap();
    assert!(
        !on_disk
            .windows(64)
            .any(|w| plaintext.windows(64).next() == Some(w)),
        "no plaintext on disk"
    );

    let sealed = seg.seal().unwrap();
    assert!(!partial.exists());
    assert!(sealed.path.ends_with("000001.pcap.age"));
    let bytes = std::fs::read(&sealed.path).unwrap();
    assert_eq!(sealed.size, bytes.len() as u64);
    assert_eq!(sealed.plaintext_bytes, plaintext.len() as u64);
    assert_eq!(decrypt(&bytes, &id), plaintext);
}

#[test]
fn recovery_discards_partials_and_keeps_sealed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let id = identity();
    let spool = Spool::new(dir.path(), &[id.to_public().to_string()]).unwrap();
    let capture = "0193a0b1-0000-7000-8000-000000000002";
    let mut first = spool.create(capture, 1).unwrap();
    first.write_all(b"sealed").unwrap();
    let sealed = first.seal().unwrap();
    let mut second = spool.create(capture, 2).unwrap();
    second.write_all(b"crash").unwrap();
    drop(second); // a crash: never sealed

    let discarded = recover(dir.path(), None).unwrap();
    assert_eq!(discarded.len(), 1);
    assert_eq!(discarded[0].capture_id, capture);
    assert!(!discarded[0].path.exists());
    assert_eq!(
        decrypt(&std::fs::read(&sealed.path).unwrap(), &id),
        b"sealed"
    );
}

#[test]
fn recovery_with_a_journal_restores_each_file_to_the_state_it_can_prove() {
    let dir = tempfile::tempdir().unwrap();
    let id = identity();
    let capture = "0193a0b1-0000-7000-8000-000000000003";
    {
        let (journal, _) = Journal::open(dir.path()).unwrap();
        let journal = Arc::new(journal);
        let spool = Spool::new(dir.path(), &[id.to_public().to_string()])
            .unwrap()
            .with_journal(journal.clone());
        for seq in 1..=3 {
            let mut w = spool.create(capture, seq).unwrap();
            w.write_all(b"sealed").unwrap();
            w.seal().unwrap();
        }
        let mut open = spool.create(capture, 4).unwrap();
        open.write_all(b"crash").unwrap();
        std::mem::forget(open); // a crash while segment 4 was being written
        // Segment 2 was being uploaded; segment 3's file vanished (a disk error, an operator).
        journal
            .update(capture, "000002.pcap.age", |e| {
                e.state = State::Uploading;
                e.upload_id = Some("multipart-1".into());
            })
            .unwrap();
        std::fs::remove_file(dir.path().join(capture).join("000003.pcap.age")).unwrap();
        // The capture ended: its manifest base is written and queued.
        std::fs::write(dir.path().join(capture).join(MANIFEST_BASE), b"{}").unwrap();
        journal
            .put(Entry::new(capture, MANIFEST, State::Sealed))
            .unwrap();
        // A crash between a rename and its journal record: a sealed file the journal lacks.
        std::fs::write(dir.path().join(capture).join("sessions.json.age"), b"age").unwrap();
    }

    let (journal, replay) = Journal::open(dir.path()).unwrap();
    assert_eq!(replay.torn_bytes, 0);
    let discarded = recover(dir.path(), Some(&journal)).unwrap();
    assert_eq!(discarded.len(), 1);
    let state = |name: &str| journal.get(capture, name).unwrap();
    assert_eq!(state("000001.pcap.age").state, State::Sealed);
    let interrupted = state("000002.pcap.age");
    assert_eq!(interrupted.state, State::Sealed, "uploads start over");
    assert!(
        interrupted.interrupted,
        "and the one under way is aborted first"
    );
    assert_eq!(interrupted.upload_id.as_deref(), Some("multipart-1"));
    assert_eq!(state("000003.pcap.age").state, State::Lost);
    assert_eq!(state("000004.pcap.age").state, State::Lost);
    assert_eq!(state("sessions.json.age").state, State::Sealed, "adopted");
    assert_eq!(state(MANIFEST).state, State::Sealed, "still queued");

    // Without its base, a queued manifest cannot be built: lost, not retried forever.
    std::fs::remove_file(dir.path().join(capture).join(MANIFEST_BASE)).unwrap();
    recover(dir.path(), Some(&journal)).unwrap();
    assert_eq!(journal.get(capture, MANIFEST).unwrap().state, State::Lost);
}

#[test]
fn bad_recipients_and_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(Spool::new(dir.path(), &["age1nope".to_owned()]).is_err());
    assert!(Spool::new(dir.path(), &[]).is_err());
    let spool = Spool::new(dir.path(), &[identity().to_public().to_string()]).unwrap();
    assert!(spool.create("../escape", 1).is_err());
    let _ = age::x25519::Recipient::from_str(&identity().to_public().to_string()).unwrap();
}

/// A journal record as the journal writes it: length, CRC-32, JSON.
fn raw_record(json: &serde_json::Value) -> Vec<u8> {
    let payload = serde_json::to_vec(json).unwrap();
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

#[test]
fn a_journal_record_naming_a_path_outside_the_spool_is_ignored() {
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
    assert_eq!(replay.records, 3);
    assert_eq!(replay.invalid, 2);
    assert_eq!(journal.entries().len(), 1);
    // The reaper, which deletes uploaded files, never reaches outside the spool.
    let journal = Arc::new(journal);
    let reaper = pcap_uploader::reaper::Reaper::new(
        journal.clone(),
        &dir,
        pcap_uploader::reaper::SpoolGate::default(),
    );
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
    // Nor can such a record be written.
    let bad = Entry::new(
        "0193a0b1-0000-7000-8000-000000000004",
        "../x",
        State::Sealed,
    );
    assert!(journal.put(bad).is_err());
}

#[test]
fn store_keys_are_built_from_plain_identifiers_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = pcap_uploader::store::Store::open(
        &format!("file://{}", dir.path().display()),
        &pcap_config::S3::default(),
    )
    .unwrap();
    let ok = store
        .capture_key(
            "PA-0001",
            "0193a0b1-0000-7000-8000-000000000004",
            "000001.pcap.age",
        )
        .unwrap();
    assert_eq!(
        ok.as_ref(),
        "captures/PA-0001/0193a0b1-0000-7000-8000-000000000004/000001.pcap.age"
    );
    for (serial, capture, name) in [
        ("..", "c1", "f"),
        ("PA-0001", "../PA-0002", "f"),
        ("PA-0001", "c1", "../../devices/PA-0001/grant.json"),
        ("PA-0001", "c1", ".hidden"),
        ("PA/0001", "c1", "f"),
    ] {
        assert!(
            store.capture_key(serial, capture, name).is_err(),
            "{serial} {capture} {name}"
        );
    }
}
