//! The uploader against a real S3-compatible server (s3s-fs) on loopback: sizes from 1 KiB to
//! 64 MiB (single requests and multipart), the server killed mid-upload, and 30% packet loss on
//! the way to it. Every object, downloaded and decrypted with the `age` CLI, matches what was
//! sealed, and no multipart upload is left open.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStoreExt;
use pcap_config::{S3, StoreUrl};
use pcap_protocol::{CaptureId, FileName, Serial};
use pcap_spool::{Journal, Spool, State};
use pcap_tests::net::VethPair;
use pcap_tests::s3::{BUCKET, S3Server, SECRET_KEY};
use pcap_tests::{Scratch, require_root};
use pcap_uploader::bandwidth::Bandwidth;
use pcap_uploader::store::Store;
use pcap_uploader::upload::{UploadSettings, Uploader};
use tokio_util::sync::CancellationToken;

const CAPTURE: &str = "0193a0b1-0000-7000-8000-0000000000bb";
const PREFIX: &str = "pa";

fn capture() -> CaptureId {
    CaptureId::parse(CAPTURE).unwrap()
}

/// A spool with a journal, encrypting to the scratch's research key.
struct Lab {
    scratch: Scratch,
    journal: Arc<Journal>,
    spool: Spool,
}

impl Lab {
    fn new() -> Self {
        let scratch = Scratch::new("");
        let recipient = std::fs::read_to_string(scratch.path("keys/research.age.pub")).unwrap();
        let dir = scratch.path("spool");
        let (journal, _) = Journal::open(&dir).unwrap();
        let journal = Arc::new(journal);
        let spool = Spool::new(&dir, vec![recipient.trim().parse().unwrap()])
            .unwrap()
            .with_journal(journal.clone());
        Lab {
            scratch,
            journal,
            spool,
        }
    }

    /// Seals a segment of `len` random bytes; returns the plaintext's SHA-256.
    fn seal(&self, seq: u32, len: usize) -> String {
        let mut data = vec![0u8; len];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut data).unwrap();
        let mut w = self.spool.create(&capture(), seq).unwrap();
        for chunk in data.chunks(1 << 20) {
            w.write_all(chunk).unwrap();
        }
        w.seal().unwrap();
        sha256(&data)
    }

    fn store(&self, server: &S3Server) -> Store {
        let creds = self.scratch.path("s3-credentials");
        server.credentials_file(&creds, SECRET_KEY);
        Store::open(
            &StoreUrl::S3 {
                bucket: BUCKET.to_owned(),
                prefix: PREFIX.to_owned(),
            },
            &S3 {
                endpoint: Some(server.endpoint()),
                path_style: true,
                credentials_file: Some(creds),
                ..S3::default()
            },
        )
        .unwrap()
    }

    fn all_uploaded(&self) -> bool {
        self.journal
            .entries()
            .iter()
            .all(|e| e.state == State::Uploaded)
    }

    /// Runs the uploader until every file is uploaded, with `during` running alongside.
    async fn upload_all(
        &self,
        store: Store,
        max_bps: Option<u64>,
        timeout: Duration,
        during: impl std::future::Future<Output = ()>,
    ) {
        let (uploader, handle) = Uploader::new(
            store,
            self.journal.clone(),
            UploadSettings {
                serial: Serial::parse(&self.scratch.serial).unwrap(),
                spool_dir: self.scratch.path("spool"),
                part_size: 5 << 20,
                concurrency: 2,
            },
            Bandwidth::new(max_bps),
        );
        let cancel = CancellationToken::new();
        let task = tokio::spawn(uploader.run(cancel.clone()));
        during.await;
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.all_uploaded() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cancel.cancel();
        task.await.unwrap();
        assert!(
            self.all_uploaded(),
            "not everything was uploaded in {timeout:?}; uploads: {:?}\n{:#?}",
            handle.status(),
            self.journal.entries()
        );
    }

    /// Downloads every file, checks it against the SHA-256 recorded at sealing, decrypts it
    /// with the age CLI and checks the plaintext.
    async fn check_store(&self, store: &Store, plaintext: &[(u32, String)]) {
        for (seq, want) in plaintext {
            let name = FileName::segment(*seq);
            let serial = Serial::parse(&self.scratch.serial).unwrap();
            let key = store.capture_key(&serial, &capture(), &name);
            let bytes = store
                .objects()
                .get(&key)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let entry = self.journal.get(&capture(), &name).unwrap();
            let (kind, sealed) = entry.checksum().unwrap();
            assert_eq!(
                pcap_spool::checksum::of(kind, &bytes),
                sealed,
                "{name}: as sealed"
            );
            let file = self.scratch.path(&format!("downloaded-{name}"));
            std::fs::write(&file, &bytes).unwrap();
            let plain = std::fs::read(self.scratch.decrypt(&file)).unwrap();
            assert_eq!(&sha256(&plain), want, "{name}: plaintext");
        }
        // Exactly these objects under the capture's prefix: no duplicates, no strays.
        let dir = Path::new(PREFIX)
            .join("captures")
            .join(&self.scratch.serial)
            .join(CAPTURE);
        let server_dir = self.scratch.path("s3").join(BUCKET).join(dir);
        let mut names: Vec<String> = std::fs::read_dir(server_dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let want: Vec<String> = plaintext
            .iter()
            .map(|(seq, _)| format!("{seq:06}.pcap.age"))
            .collect();
        assert_eq!(names, want);
    }
}

fn sha256(bytes: &[u8]) -> String {
    pcap_protocol::keys::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_of_1_kib_to_64_mib_arrive_as_sealed() {
    let lab = Lab::new();
    let server = S3Server::start(&lab.scratch.path("s3"));
    let sizes = [1 << 10, 1 << 20, (5 << 20) + 1, 64 << 20];
    let plaintext: Vec<(u32, String)> = sizes
        .iter()
        .zip(1..)
        .map(|(&len, seq)| (seq, lab.seal(seq, len)))
        .collect();
    let store = lab.store(&server);
    lab.upload_all(store.clone(), None, Duration::from_secs(120), async {})
        .await;
    lab.check_store(&store, &plaintext).await;
    assert_eq!(server.open_uploads(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_killed_mid_upload_and_restarted_gets_every_segment_once() {
    let lab = Lab::new();
    let mut server = S3Server::start(&lab.scratch.path("s3"));
    let plaintext: Vec<(u32, String)> = (1..=3).map(|seq| (seq, lab.seal(seq, 12 << 20))).collect();
    let store = lab.store(&server);
    let journal = lab.journal.clone();
    let crash = async {
        // Kill the server while a multipart upload is open (8 MiB/s: ~1.5 s per segment).
        let open = || journal.entries().iter().any(|e| e.upload_id.is_some());
        for _ in 0..600 {
            if open() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(open(), "no multipart upload was started");
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.kill();
        tokio::time::sleep(Duration::from_secs(2)).await;
        server.restart();
    };
    lab.upload_all(
        store.clone(),
        Some(8 << 20),
        Duration::from_secs(120),
        crash,
    )
    .await;
    lab.check_store(&store, &plaintext).await;
    assert_eq!(
        server.open_uploads(),
        Vec::<String>::new(),
        "no multipart upload left open"
    );
    let retried = lab
        .journal
        .entries()
        .iter()
        .filter(|e| e.attempts > 1)
        .count();
    assert!(retried >= 1, "the kill interrupted an upload");
}

/// Loads `rules` into nftables inside the namespace of `pair`.
fn nft(pair: &VethPair, rules: &str) {
    let status = std::process::Command::new("ip")
        .args(["netns", "exec", &pair.ns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(rules.as_bytes())?;
            c.wait()
        })
        .unwrap();
    assert!(status.success(), "nft rules: {rules}");
}

/// Uploads a single-request and a multipart segment through the faults `rules` put on the
/// way to a store in a namespace, then checks everything with the faults removed. Each rule
/// named in `must_hit` carries a counter (`counter name`) that must have matched: the fault
/// happened, and happened where it was meant to.
async fn upload_through(rules: &str, must_hit: &[&str]) {
    let lab = Lab::new();
    let pair = VethPair::create();
    let server = S3Server::start_in(&lab.scratch.path("s3"), &pair);
    nft(&pair, rules);
    let plaintext: Vec<(u32, String)> = [64 << 10, (5 << 20) + 3]
        .iter()
        .zip(1..)
        .map(|(&len, seq)| (seq, lab.seal(seq, len)))
        .collect();
    let store = lab.store(&server);
    lab.upload_all(store.clone(), None, Duration::from_secs(300), async {})
        .await;
    // The faults happened (the rules' counters), then are removed so the check cannot flake.
    let listing = std::process::Command::new("ip")
        .args([
            "netns", "exec", &pair.ns, "nft", "list", "counters", "table", "inet", "faults",
        ])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for name in must_hit {
        let hit = counter_packets(&listing, name);
        eprintln!("faults injected by {name}: {hit} packets");
        assert!(hit > 0, "the fault rule {name} never matched: {listing}");
    }
    nft(&pair, "delete table inet faults\n");
    lab.check_store(&store, &plaintext).await;
    assert_eq!(server.open_uploads(), Vec::<String>::new());
}

/// The packets counted by the named counter `name` in an `nft list counters` listing.
fn counter_packets(listing: &str, name: &str) -> u64 {
    listing
        .split(&format!("counter {name} {{"))
        .nth(1)
        .and_then(|rest| rest.split("packets ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_percent_packet_loss_on_the_way_to_the_store_loses_nothing() {
    require_root!("a network namespace with an nftables drop rule");
    // 3 of every 10 packets from the agent to the store dropped, spread out so that TCP's
    // retransmissions get through: the same losses on every run.
    upload_through(
        "table inet faults {\n\
            counter loss {}\n\
            chain input { type filter hook input priority 0; numgen inc mod 10 { 2, 5, 8 } counter name loss drop; }\n\
        }\n",
        &["loss"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_resets_from_the_store_lose_nothing() {
    require_root!("a network namespace with nftables reject rules");
    // The first two requests of every kind the uploader sends (PUT of an object or a part,
    // POST to start or complete a multipart upload, HEAD to check the size) are answered with
    // a TCP reset as their first bytes arrive: connections die mid-request, on every run, and
    // every later request gets through.
    let reset = |name: &str, method: &str| {
        let word = method
            .bytes()
            .chain(std::iter::repeat(b' '))
            .take(4)
            .fold(0u32, |acc, b| acc << 8 | u32::from(b));
        format!(
            "meta l4proto tcp @ih,0,32 0x{word:08x} limit rate 1/hour burst 2 packets counter name {name} reject with tcp reset\n"
        )
    };
    let rules = format!(
        "table inet faults {{\n\
            counter put {{}}\n counter post {{}}\n counter head {{}}\n\
            chain input {{ type filter hook input priority 0;\n{}{}{}}}\n\
        }}\n",
        reset("put", "PUT"),
        reset("post", "POST"),
        reset("head", "HEAD"),
    );
    upload_through(&rules, &["put", "post", "head"]).await;
}
