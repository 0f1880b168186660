//! Segments are encrypted as written, sealed by rename, and decrypt to exactly what was
//! written; half-written segments are discarded at recovery.

use std::io::Read;
use std::str::FromStr;

use pcap_uploader::spool::{Spool, recover};

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
fn bad_recipients_and_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(Spool::new(dir.path(), &["age1nope".to_owned()]).is_err());
    assert!(Spool::new(dir.path(), &[]).is_err());
    let spool = Spool::new(dir.path(), &[identity().to_public().to_string()]).unwrap();
    assert!(spool.create("../escape", 1).is_err());
    let _ = age::x25519::Recipient::from_str(&identity().to_public().to_string()).unwrap();
}
