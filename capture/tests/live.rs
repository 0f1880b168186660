//! The capture worker on the loopback interface with real libpcap (needs root): packet and
//! duration limits, a stop on a silent interface, time rotation without traffic, and segments
//! that decrypt to pcap files libpcap reads back.

use std::io::Read;
use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use pcap_capture::{CaptureSpec, SegmentInfo, Worker};
use pcap_protocol::{CaptureId, EffectiveLimits, StopReason};
use pcap_spool::Spool;
use tokio::sync::mpsc;

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root (live capture with libpcap)");
            return;
        }
    };
}

struct Setup {
    dir: tempfile::TempDir,
    identity: age::x25519::Identity,
    spool: Spool,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let identity = age::x25519::Identity::generate();
    let spool = Spool::new(dir.path(), vec![identity.to_public()]).unwrap();
    Setup {
        dir,
        identity,
        spool,
    }
}

fn spec(id: &str, filter: &str, limits: EffectiveLimits) -> CaptureSpec {
    CaptureSpec {
        id: CaptureId::parse(id).unwrap(),
        interface: "lo".to_owned(),
        filter: filter.to_owned(),
        inner: None,
        limits,
        promiscuous: false,
        immediate: false,
        buffer_size: 4 << 20,
        rotate_size: 64 << 20,
        rotate_interval: Duration::from_secs(300),
        sessions: None,
    }
}

fn limits(duration: Duration) -> EffectiveLimits {
    EffectiveLimits {
        max_duration: duration,
        max_packets: None,
        max_bytes: None,
        snaplen: 65535,
        max_pps: None,
        max_bps: None,
    }
}

/// Decrypts a sealed segment and counts its packets with libpcap.
fn packets_in(segment: &Path, s: &Setup) -> usize {
    let bytes = std::fs::read(segment).unwrap();
    let mut plain = Vec::new();
    age::Decryptor::new(&bytes[..])
        .unwrap()
        .decrypt(std::iter::once(&s.identity as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    let path = s.dir.path().join("plain.pcap");
    std::fs::write(&path, plain).unwrap();
    let mut cap = pcap::Capture::from_file(&path).unwrap();
    let mut n = 0;
    while cap.next_packet().is_ok() {
        n += 1;
    }
    n
}

fn send_udp(port: u16, count: usize) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..count {
        sock.send_to(&(i as u32).to_be_bytes(), ("127.0.0.1", port))
            .unwrap();
    }
}

#[tokio::test]
async fn a_packet_limit_writes_exactly_that_many_packets() {
    require_root!();
    let s = setup();
    let port = 40_000 + (std::process::id() % 10_000) as u16;
    let mut l = limits(Duration::from_secs(20));
    l.max_packets = Some(100);
    let (tx, mut rx) = mpsc::channel::<SegmentInfo>(16);
    let (worker, done) = Worker::start(
        spec("cap-packets", &format!("udp and dst port {port}"), l),
        s.spool.clone(),
        tx,
    )
    .unwrap();
    send_udp(port, 250);
    let outcome = tokio::time::timeout(Duration::from_secs(10), done)
        .await
        .unwrap()
        .unwrap();
    worker.join();
    assert_eq!(outcome.reason, StopReason::Packets);
    assert_eq!(outcome.stats.written, 100);
    let seg = rx.recv().await.unwrap();
    assert_eq!(seg.packets, 100);
    assert_eq!(packets_in(&seg.sealed.path, &s), 100);
}

#[tokio::test]
async fn a_silent_capture_stops_at_once_when_asked_and_rotates_on_time() {
    require_root!();
    let s = setup();
    let mut sp = spec(
        "cap-silent",
        "udp and port 9",
        limits(Duration::from_secs(30)),
    );
    sp.rotate_interval = Duration::from_millis(300);
    let (tx, mut rx) = mpsc::channel::<SegmentInfo>(64);
    let (worker, done) = Worker::start(sp, s.spool.clone(), tx).unwrap();
    // Two time rotations without any packet.
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.sealed.seq, second.sealed.seq), (1, 2));
    assert_eq!(packets_in(&first.sealed.path, &s), 0);

    let asked = jiff::Timestamp::now();
    worker.stop_handle().stop(StopReason::Stopped);
    let outcome = tokio::time::timeout(Duration::from_secs(5), done)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.reason, StopReason::Stopped);
    // It stopped when asked (the loop's own clock), not at its 30 s deadline: libpcap's read
    // timeout never fires on a silent interface, the wake-up does.
    let took = outcome.ended_at.duration_since(asked);
    eprintln!("stopped {took:?} after it was asked");
    assert!(
        took.as_secs_f64() < 3.0,
        "stopped {took:?} after it was asked"
    );
    worker.join();
}

#[tokio::test]
async fn the_duration_limit_stops_the_capture_at_its_deadline_not_before() {
    require_root!();
    let s = setup();
    let (tx, _rx) = mpsc::channel::<SegmentInfo>(16);
    let started = jiff::Timestamp::now();
    let (worker, done) = Worker::start(
        spec(
            "cap-duration",
            "udp and port 9",
            limits(Duration::from_millis(700)),
        ),
        s.spool.clone(),
        tx,
    )
    .unwrap();
    let outcome = done.await.unwrap();
    // The capture stops at its deadline, never before; sealing the last segment comes after.
    // How soon after the deadline is a latency, for the benchmarks.
    let took = Duration::try_from(outcome.ended_at.duration_since(started)).unwrap();
    worker.join();
    assert_eq!(outcome.reason, StopReason::Duration);
    eprintln!("a 700 ms capture stopped after {took:?}");
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn an_unknown_interface_is_refused_with_libpcaps_message() {
    require_root!();
    let s = setup();
    let (tx, _rx) = mpsc::channel::<SegmentInfo>(1);
    let mut sp = spec("cap-none", "", limits(Duration::from_secs(1)));
    sp.interface = "nosuch0".into();
    let err = Worker::start(sp, s.spool.clone(), tx).unwrap_err();
    assert!(err.to_string().contains("nosuch0"), "{err}");
}
