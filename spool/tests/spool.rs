//! Segments are encrypted as written, sealed by rename, and decrypt to exactly what was
//! written; half-written segments are discarded at recovery.

use std::io::Read;
use std::sync::Arc;

use pcap_protocol::{CaptureId, FileName};
use pcap_spool::{Entry, Journal, MANIFEST_BASE, Spool, State, recover};

fn identity() -> age::x25519::Identity {
    age::x25519::Identity::generate()
}

fn recipients(id: &age::x25519::Identity) -> Vec<age::x25519::Recipient> {
    vec![id.to_public()]
}

fn capture(n: u8) -> CaptureId {
    CaptureId::parse(&format!("0193a0b1-0000-7000-8000-00000000000{n}")).unwrap()
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
    let spool = Spool::new(dir.path(), recipients(&id)).unwrap();
    let mut seg = spool.create(&capture(1), 1).unwrap();
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
    let spool = Spool::new(dir.path(), recipients(&id)).unwrap();
    let capture = &capture(2);
    let mut first = spool.create(capture, 1).unwrap();
    first.write_all(b"sealed").unwrap();
    let sealed = first.seal().unwrap();
    let mut second = spool.create(capture, 2).unwrap();
    second.write_all(b"crash").unwrap();
    drop(second); // a crash: never sealed

    let discarded = recover(dir.path(), None).unwrap();
    assert_eq!(discarded.len(), 1);
    assert_eq!(&discarded[0].capture_id, capture);
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
    let capture = &capture(3);
    let manifest = &FileName::manifest();
    let name = |n: &str| FileName::parse(n).unwrap();
    {
        let (journal, _) = Journal::open(dir.path()).unwrap();
        let journal = Arc::new(journal);
        let spool = Spool::new(dir.path(), recipients(&id))
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
            .update(capture, &FileName::segment(2), |e| {
                e.state = State::Uploading;
                e.upload_id = Some("multipart-1".into());
            })
            .unwrap();
        let dir = dir.path().join(capture.as_str());
        std::fs::remove_file(dir.join("000003.pcap.age")).unwrap();
        // The capture ended: its manifest base is written and queued.
        std::fs::write(dir.join(MANIFEST_BASE), b"{}").unwrap();
        journal
            .put(Entry::new(capture, manifest, State::Sealed))
            .unwrap();
        // A crash between a rename and its journal record: a sealed file the journal lacks.
        std::fs::write(dir.join("sessions.json.age"), b"age").unwrap();
    }

    let (journal, replay) = Journal::open(dir.path()).unwrap();
    assert_eq!(replay.torn_bytes, 0);
    let discarded = recover(dir.path(), Some(&journal)).unwrap();
    assert_eq!(discarded.len(), 1);
    let state = |n: &str| journal.get(capture, &name(n)).unwrap();
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
    assert_eq!(
        state(FileName::MANIFEST).state,
        State::Sealed,
        "still queued"
    );

    // Without its base, a queued manifest cannot be built: lost, not retried forever.
    std::fs::remove_file(dir.path().join(capture.as_str()).join(MANIFEST_BASE)).unwrap();
    recover(dir.path(), Some(&journal)).unwrap();
    assert_eq!(journal.get(capture, manifest).unwrap().state, State::Lost);
}

#[test]
fn a_spool_without_recipients_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(Spool::new(dir.path(), Vec::new()).is_err());
}

#[test]
fn a_manifest_is_completed_from_its_base_and_the_journal() {
    use pcap_protocol::store::{FileState, Manifest};
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).unwrap();
    let capture = capture(5);
    let mut uploaded = Entry::new(&capture, &FileName::segment(1), State::Deleted);
    uploaded.size = 100;
    uploaded.sha256 = Some("ab".repeat(32));
    journal.put(uploaded).unwrap();
    let mut lost = Entry::new(&capture, &FileName::segment(2), State::Lost);
    lost.reason = Some("left unsealed by a crash".into());
    journal.put(lost).unwrap();
    let base: Manifest = serde_json::from_str(&format!(
        r#"{{"capture_id": "{capture}", "serial": "PA-1", "agent_version": "0.1.0",
            "origin": "local", "request": {{"interface": "lo", "reason": "other"}},
            "interface": "lo", "effective_filter": "udp", "link_type": "EN10MB",
            "limits": {{"max_duration": "1m", "snaplen": 65535}},
            "started_at": "2026-01-01T00:00:00Z", "state": "stopped",
            "stats": {{"received": 0, "written": 0, "bytes_written": 0, "dropped_rate_limit": 0,
                      "dropped_kernel": 0, "dropped_interface": 0, "segments": 2}},
            "segments": [], "segments_lost": 1}}"#
    ))
    .unwrap();
    let now = jiff::Timestamp::now();
    pcap_spool::manifest::write_base(dir.path(), &journal, &base, now).unwrap();
    let manifest = pcap_spool::manifest::complete(dir.path(), &journal, &capture, now).unwrap();
    let states: Vec<(String, FileState)> = manifest
        .files
        .iter()
        .map(|f| (f.name.to_string(), f.state))
        .collect();
    assert_eq!(
        states,
        [
            ("000001.pcap.age".to_owned(), FileState::Uploaded),
            ("000002.pcap.age".to_owned(), FileState::Lost)
        ]
    );
    assert_eq!(manifest.files[0].sha256.as_deref(), Some(&*"ab".repeat(32)));
    assert_eq!(manifest.completed_at, Some(now));
    assert_eq!(
        journal.get(&capture, &FileName::manifest()).unwrap().state,
        State::Sealed
    );
}
