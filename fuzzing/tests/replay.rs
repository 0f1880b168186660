//! Replays every file of the fuzz corpus (`fuzz/corpus/<target>/`) through its target on the
//! stable toolchain: the seeds and every input the fuzzers kept, including the ones that once
//! found a bug, keep passing.

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus for {target}");
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(outcome.is_ok(), "{target} panicked on {}", f.display());
    }
    eprintln!("{target}: {} inputs replayed", files.len());
}

#[test]
fn control_request() {
    replay("control_request", pcap_fuzzing::control_request);
}

#[test]
fn signed_document() {
    replay("signed_document", pcap_fuzzing::signed_document);
    // The seeds are real documents, so the fuzzer starts from inputs that verify.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/signed_document");
    for seed in ["grant.json", "revocation.json", "request.json"] {
        let data = std::fs::read(dir.join(seed)).unwrap();
        assert!(
            pcap_fuzzing::verifies(&data),
            "{seed} verifies under the fuzzing key"
        );
    }
}

#[test]
fn journal() {
    replay("journal", pcap_fuzzing::journal);
}

#[test]
fn sessions() {
    replay("sessions", pcap_fuzzing::sessions);
}

#[test]
fn config() {
    replay("config", pcap_fuzzing::config);
}
