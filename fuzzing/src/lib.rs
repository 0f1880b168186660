//! The bodies of the fuzz targets. Each takes arbitrary bytes, must never panic, and checks
//! what must hold of what it accepts. `fuzz/` runs them under libFuzzer (`cargo fuzz run
//! TARGET`); `tests/replay.rs` runs every file of the corpus through them on stable, in CI.
//!
//! - [`control_request`]: a control socket body as a capture request, and a capture id from a
//!   request path.
//! - [`signed_document`]: an envelope as a grant or revocation, and as a capture request.
//! - [`journal`]: the spool journal's decoder, replaying arbitrary bytes.
//! - [`sessions`]: session extraction over an arbitrary pcap or pcapng file.
//! - [`config`]: the agent's config parser and validator.

#![forbid(unsafe_code)]

use std::sync::OnceLock;

use pcap_protocol::{
    AuthorizationDocument, CaptureRequest, Envelope, Serial, VerifyKey, VerifyKeys,
};

/// The key the seed documents are signed with (a test key, for fuzzing only).
pub const SIGNING_KEY_PEM: &str = include_str!("../keys/fuzz.key");
const VERIFY_KEY_PEM: &str = include_str!("../keys/fuzz.pub");

fn keys() -> &'static VerifyKeys {
    static KEYS: OnceLock<VerifyKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = VerifyKey::from_pem(VERIFY_KEY_PEM, std::path::Path::new("fuzz.pub"))
            .expect("the embedded fuzzing key");
        VerifyKeys::new(vec![key])
    })
}

fn serial() -> &'static Serial {
    static SERIAL: OnceLock<Serial> = OnceLock::new();
    SERIAL.get_or_init(|| Serial::parse("PA-0001").expect("a valid serial"))
}

/// A control socket body (`POST /v1/captures`), and the same bytes as a capture id.
pub fn control_request(data: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<CaptureRequest>(data)
        && request.check().is_ok()
    {
        // What passes the checks serializes and reads back the same.
        let text = serde_json::to_vec(&request).expect("a checked request serializes");
        let back: CaptureRequest = serde_json::from_slice(&text).expect("and parses again");
        assert_eq!(back, request);
    }
    if let Ok(id) = std::str::from_utf8(data) {
        // An id that passes the check is a plain path component.
        if pcap_protocol::CaptureId::parse(id).is_ok() {
            assert!(!id.contains('/') && id != "." && id != ".." && !id.starts_with('.'));
        }
    }
}

/// Whether `data` is a document signed with the fuzzing key (keeps the seeds honest).
pub fn verifies(data: &[u8]) -> bool {
    AuthorizationDocument::verify(data, keys(), serial()).is_ok()
        || Envelope::parse(data)
            .and_then(|e| e.open::<CaptureRequest>(keys()))
            .is_ok()
}

/// An envelope as a grant or revocation for `PA-0001`, and as a capture request.
pub fn signed_document(data: &[u8]) {
    if let Ok(doc) = AuthorizationDocument::verify(data, keys(), serial()) {
        assert_eq!(
            doc.serial(),
            serial(),
            "a verified document is for this device"
        );
    }
    if let Ok(envelope) = Envelope::parse(data) {
        let _ = envelope.open::<CaptureRequest>(keys());
        let _ = envelope.peek::<AuthorizationDocument>();
    }
}

/// Arbitrary bytes as the spool journal: replay never panics, keeps only valid names, and
/// what it keeps survives a second replay unchanged.
pub fn journal(data: &[u8]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("journal.log"), data).expect("write the journal");
    let Ok((journal, replay)) = pcap_spool::Journal::open(dir.path()) else {
        return;
    };
    assert!(replay.torn_bytes <= data.len() as u64);
    let entries = journal.entries();
    for e in &entries {
        // Names are plain path components: the types checked them when the record was read.
        for part in [e.capture.as_str(), e.name.as_str()] {
            assert!(!part.contains('/') && !part.starts_with('.'), "{e:?}");
        }
    }
    drop(journal);
    let (again, replay2) =
        pcap_spool::Journal::open(dir.path()).expect("a replayed journal reopens");
    assert_eq!(replay2.torn_bytes, 0, "the torn tail was cut");
    assert_eq!(again.entries(), entries);
}

/// Session extraction over arbitrary bytes as a capture file.
pub fn sessions(data: &[u8]) {
    let sharing = pcap_config::Sharing::default();
    let ctx = pcap_capture::session::RecordContext {
        sharing: &sharing,
        virtual_system: None,
        virtual_systems: None,
        users: None,
        community_id_seed: 0,
    };
    let mut out = Vec::new();
    // A small buffer that must grow for larger blocks: the same code paths as the daemon's
    // 256 KiB, without setting up that much for every input.
    let buffer = pcap_capture::analyze::ReadBuffer {
        initial: 4 << 10,
        max_block: 256 << 10,
    };
    let result = pcap_capture::analyze::analyze_with(
        data,
        &ctx,
        pcap_capture::session::SessionTable::new(1000, std::time::Duration::from_secs(60)),
        &mut out,
        buffer,
    );
    // Every line written is a JSON record, error or not.
    for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        serde_json::from_slice::<serde_json::Value>(line).expect("a JSON record");
    }
    if let Ok(summary) = result {
        assert_eq!(
            summary.sessions as usize,
            out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count()
        );
    }
}

/// The agent's config parser and validator.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match pcap_config::parse(text) {
        Ok(config) => assert!(!config.capture.interfaces.is_empty()),
        Err(problems) => assert!(!problems.is_empty(), "a refusal names a problem"),
    }
}
