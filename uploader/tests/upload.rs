//! The uploader against a local (file://) store: a capture's files arrive in order with the
//! manifest last, listing each file's size and the SHA-256 recorded at sealing; a spool file
//! changed after sealing is recorded as lost, never stored as good; a store on the spool's file
//! system gets hard links, another a copy.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use pcap_config::{S3, StoreUrl};
use pcap_protocol::store::{FileState, Manifest};
use pcap_protocol::{CaptureId, FileName, Serial, schema};
use pcap_spool::checksum::Checksum;
use pcap_spool::{Journal, Spool, State};
use pcap_uploader::bandwidth::Bandwidth;
use pcap_uploader::store::Store;
use pcap_uploader::upload::{UploadSettings, Uploader};
use tokio_util::sync::CancellationToken;

const CAPTURE: &str = "0193a0b1-0000-7000-8000-0000000000aa";
const SERIAL: &str = "PA-0001";

fn capture() -> CaptureId {
    CaptureId::parse(CAPTURE).unwrap()
}

fn serial() -> Serial {
    Serial::parse(SERIAL).unwrap()
}

fn name(n: &str) -> FileName {
    FileName::parse(n).unwrap()
}

/// A file store in `dir`.
fn file_store(dir: &std::path::Path) -> Store {
    Store::open(&StoreUrl::File(dir.to_owned()), &S3::default()).unwrap()
}

/// The manifest base the agent writes when a capture ends.
fn base() -> Manifest {
    serde_json::from_str(&format!(
        r#"{{"capture_id": "{CAPTURE}", "serial": "{SERIAL}", "agent_version": "0.1.0",
            "origin": "local", "request": {{"interface": "lo", "reason": "other"}},
            "interface": "lo", "effective_filter": "udp", "link_type": "EN10MB",
            "limits": {{"max_duration": "1m", "snaplen": 65535}},
            "started_at": "2026-01-01T00:00:00Z", "state": "stopped",
            "stats": {{"received": 0, "written": 0, "bytes_written": 0, "dropped_rate_limit": 0,
                      "dropped_kernel": 0, "dropped_interface": 0, "segments": 0}},
            "segments": [], "segments_lost": 0}}"#
    ))
    .unwrap()
}

struct Setup {
    spool_dir: tempfile::TempDir,
    store_dir: tempfile::TempDir,
    journal: Arc<Journal>,
    spool: Spool,
    identity: age::x25519::Identity,
}

fn setup() -> Setup {
    setup_with(tempfile::tempdir().unwrap(), Checksum::Crc64Nvme)
}

/// A setup whose local store is on another file system than the spool (/dev/shm), so that
/// uploads copy (and read) the files instead of linking them; `None` where there is none.
fn setup_copying() -> Option<Setup> {
    use std::os::unix::fs::MetadataExt;
    let shm = std::path::Path::new("/dev/shm");
    let spool_dev = std::fs::metadata(std::env::temp_dir()).ok()?.dev();
    if !shm.is_dir() || std::fs::metadata(shm).ok()?.dev() == spool_dev {
        return None;
    }
    Some(setup_with(
        tempfile::tempdir_in(shm).unwrap(),
        Checksum::Crc64Nvme,
    ))
}

fn setup_with(store_dir: tempfile::TempDir, checksum: Checksum) -> Setup {
    let spool_dir = tempfile::tempdir().unwrap();
    let identity = age::x25519::Identity::generate();
    let (journal, _) = Journal::open(spool_dir.path()).unwrap();
    let journal = Arc::new(journal);
    let spool = Spool::new(spool_dir.path(), vec![identity.to_public()])
        .unwrap()
        .with_journal(journal.clone())
        .with_checksum(checksum);
    Setup {
        spool_dir,
        store_dir,
        journal,
        spool,
        identity,
    }
}

impl Setup {
    fn seal(&self, seq: u32, content: &[u8]) -> String {
        let mut w = self.spool.create(&capture(), seq).unwrap();
        w.write_all(content).unwrap();
        w.seal().unwrap().checksum_value
    }

    /// The capture ended: its manifest base is written and queued.
    fn end(&self) {
        pcap_spool::manifest::write_base(
            self.spool_dir.path(),
            &self.journal,
            &base(),
            jiff::Timestamp::now(),
        )
        .unwrap();
    }

    fn stored(&self, name: &str) -> std::path::PathBuf {
        self.store_dir
            .path()
            .join("captures")
            .join(SERIAL)
            .join(CAPTURE)
            .join(name)
    }

    /// Runs the uploader until `done` holds of the journal (at most 20 s).
    async fn upload_until(&self, done: impl Fn(&Journal) -> bool) {
        let store = file_store(self.store_dir.path());
        let (uploader, _handle) = Uploader::new(
            store,
            self.journal.clone(),
            UploadSettings {
                serial: serial(),
                spool_dir: self.spool_dir.path().to_owned(),
                part_size: 5 << 20,
                concurrency: 2,
            },
            Bandwidth::new(None),
        );
        let cancel = CancellationToken::new();
        let task = tokio::spawn(uploader.run(cancel.clone()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !done(&self.journal) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cancel.cancel();
        task.await.unwrap();
        assert!(done(&self.journal), "{:#?}", self.journal.entries());
    }

    fn decrypt(&self, path: &std::path::Path) -> Vec<u8> {
        let bytes = std::fs::read(path).unwrap();
        let d = age::Decryptor::new(&bytes[..]).unwrap();
        let mut r = d
            .decrypt(std::iter::once(&self.identity as &dyn age::Identity))
            .unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    }
}

fn crc64(bytes: &[u8]) -> String {
    pcap_spool::checksum::of(Checksum::Crc64Nvme, bytes)
}

fn manifest_uploaded(j: &Journal) -> bool {
    j.get(&capture(), &FileName::manifest())
        .is_some_and(|e| e.state == State::Uploaded)
}

fn stored_manifest(s: &Setup) -> Manifest {
    schema::decode(&std::fs::read(s.stored(FileName::MANIFEST)).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_arrives_in_order_with_the_manifest_last() {
    let s = setup();
    // Larger than a part, so the local multipart path is taken too.
    let big: Vec<u8> = (0..(6 << 20) + 7).map(|i| (i % 251) as u8).collect();
    let sealed = [s.seal(1, b"first"), s.seal(2, &big), s.seal(3, b"third")];
    s.end();
    s.upload_until(manifest_uploaded).await;

    let manifest = stored_manifest(&s);
    assert_eq!(manifest.files.len(), 3, "{manifest:?}");
    for (i, f) in manifest.files.iter().enumerate() {
        let name = format!("{:06}.pcap.age", i + 1);
        assert_eq!(f.name.as_str(), name);
        assert_eq!(f.state, FileState::Uploaded);
        assert_eq!(
            f.crc64nvme.as_deref(),
            Some(sealed[i].as_str()),
            "the CRC-64/NVME from sealing"
        );
        assert_eq!(f.sha256, None);
        let object = std::fs::read(s.stored(&name)).unwrap();
        assert_eq!(crc64(&object), sealed[i]);
        assert_eq!(f.size, object.len() as u64);
    }
    assert!(manifest.completed_at.is_some());
    assert_eq!(s.decrypt(&s.stored("000002.pcap.age")), big);
    let at = |n: &str| {
        s.journal
            .get(&capture(), &name(n))
            .unwrap()
            .uploaded_at
            .unwrap()
    };
    assert!(at("000001.pcap.age") <= at("000002.pcap.age"));
    assert!(at("000002.pcap.age") <= at("000003.pcap.age"));
    assert!(
        at("000003.pcap.age") <= at(FileName::MANIFEST),
        "the manifest goes last"
    );
    // No staging files of the local multipart upload are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(s.stored(""))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains('#'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_file_changed_after_sealing_is_lost_not_stored_as_good_when_the_upload_reads_it() {
    // A link reads nothing; the fetch finds such damage (tests/tests/remote.rs).
    let Some(s) = setup_copying() else {
        eprintln!("skipped: no /dev/shm on another file system than the temp dir");
        return;
    };
    s.seal(1, b"good");
    s.seal(2, b"will be damaged on disk");
    let path = s.spool_dir.path().join(CAPTURE).join("000002.pcap.age");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    s.end();
    s.upload_until(manifest_uploaded).await;

    let damaged = s.journal.get(&capture(), &name("000002.pcap.age")).unwrap();
    assert_eq!(damaged.state, State::Lost);
    assert!(
        damaged
            .reason
            .as_deref()
            .unwrap()
            .contains("changed after it was sealed"),
        "{damaged:?}"
    );
    // Its removal from the store runs in the background.
    for _ in 0..500 {
        if !s.stored("000002.pcap.age").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!s.stored("000002.pcap.age").exists());
    assert!(s.stored("000001.pcap.age").exists());
    let manifest = stored_manifest(&s);
    assert_eq!(manifest.files[1].state, FileState::Lost, "{manifest:?}");
}

/// Seals one segment and uploads it straight through [`Store::upload_file`] to a `file://`
/// store in `store_dir`; returns the stored object's path, what the upload reported and the
/// checksum recorded at sealing.
async fn put_segment(
    s: &Setup,
    store_dir: &std::path::Path,
) -> (std::path::PathBuf, pcap_uploader::store::Uploaded, String) {
    let sealed = s.seal(1, &[7u8; 300_000]);
    let (object, uploaded) = put_segment_again(s, store_dir).await;
    (object, uploaded, sealed)
}

/// Uploads the sealed segment of [`put_segment`] (again).
async fn put_segment_again(
    s: &Setup,
    store_dir: &std::path::Path,
) -> (std::path::PathBuf, pcap_uploader::store::Uploaded) {
    let store = file_store(store_dir);
    let key = store.capture_key(&serial(), &capture(), &FileName::segment(1));
    let spool_file = s.spool_dir.path().join(CAPTURE).join("000001.pcap.age");
    let entry = s.journal.get(&capture(), &FileName::segment(1)).unwrap();
    let uploaded = store
        .upload_file(
            &key,
            &spool_file,
            5 << 20,
            &Bandwidth::new(None),
            entry.checksum(),
            |_| {},
        )
        .await
        .unwrap();
    (store_dir.join(key.as_ref()), uploaded)
}

#[tokio::test]
async fn a_local_store_on_the_spools_file_system_links_the_sealed_file_instead_of_copying_it() {
    use std::os::unix::fs::MetadataExt;
    let s = setup();
    // A staging name left by an upload a crash cut short is replaced, and never listed.
    let stale = s
        .store_dir
        .path()
        .join(format!("captures/{SERIAL}/{CAPTURE}/000001.pcap.age#0"));
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, b"left over").unwrap();

    let (object, uploaded, sealed) = put_segment(&s, s.store_dir.path()).await;
    assert!(!uploaded.verified, "a link reads nothing");
    assert_eq!(crc64(&std::fs::read(&object).unwrap()), sealed);
    let spool_file = s.spool_dir.path().join(CAPTURE).join("000001.pcap.age");
    let (a, b) = (
        std::fs::metadata(&object).unwrap(),
        std::fs::metadata(&spool_file).unwrap(),
    );
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "one file, two names");
    assert_eq!(uploaded.size, a.len());
    assert!(!stale.exists(), "the staging name is gone");
    assert_eq!(
        s.decrypt(&object),
        vec![7u8; 300_000],
        "the object decrypts to what was sealed"
    );

    // The same upload again (a crash came before the journal recorded it): still one object,
    // no staging name left holding the file.
    let (again, repeated) = put_segment_again(&s, s.store_dir.path()).await;
    assert_eq!((again.as_path(), &repeated), (object.as_path(), &uploaded));
    assert_eq!(std::fs::metadata(&object).unwrap().nlink(), 2);
    assert!(!stale.exists(), "no staging name after a repeated upload");

    // The reaper removing the spool's name leaves the store's object whole.
    std::fs::remove_file(&spool_file).unwrap();
    assert_eq!(s.decrypt(&object), vec![7u8; 300_000]);
}

#[tokio::test]
async fn a_local_store_on_another_file_system_gets_a_copy() {
    use std::os::unix::fs::MetadataExt;
    let shm = std::path::Path::new("/dev/shm");
    let spool_dev = std::fs::metadata(std::env::temp_dir()).unwrap().dev();
    if !shm.is_dir() || std::fs::metadata(shm).unwrap().dev() == spool_dev {
        eprintln!("skipped: /dev/shm is missing or on the same file system as the temp dir");
        return;
    }
    let s = setup();
    let store_dir = tempfile::tempdir_in(shm).unwrap();
    let (object, uploaded, sealed) = put_segment(&s, store_dir.path()).await;
    assert!(
        uploaded.verified,
        "a copy is read, and checked against the sealing"
    );
    assert_eq!(crc64(&std::fs::read(&object).unwrap()), sealed);
    assert_eq!(std::fs::metadata(&object).unwrap().nlink(), 1, "a copy");
    assert_eq!(s.decrypt(&object), vec![7u8; 300_000]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sha256_checksums_the_manifest_lists_each_files_sha256() {
    let s = setup_with(tempfile::tempdir().unwrap(), Checksum::Sha256);
    let sealed = s.seal(1, b"fingerprinted");
    s.end();
    s.upload_until(manifest_uploaded).await;
    let manifest = stored_manifest(&s);
    let object = std::fs::read(s.stored("000001.pcap.age")).unwrap();
    let sha =
        pcap_protocol::keys::hex(ring::digest::digest(&ring::digest::SHA256, &object).as_ref());
    assert_eq!(manifest.files[0].sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(sealed, sha);
    assert_eq!(manifest.files[0].crc64nvme, None);
}
