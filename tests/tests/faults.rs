//! The fault suite: the agent killed with SIGKILL (or stopped with SIGTERM, which must exit
//! cleanly) at random points while it captures, rotates segments, uploads and reaps, restarted
//! each time. The oracle: every segment ever seen sealed
//! in the spool reaches the store intact (same SHA-256), once, and no multipart upload stays
//! open. `PCAP_FAULT_ROUNDS` sets the number of rounds (CI: 20; the full suite: 200).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use pcap_tests::net::send_udp;
use pcap_tests::s3::{S3Server, SECRET_KEY};
use pcap_tests::{Scratch, require_root, wait_until};
use serde_json::json;

fn rounds() -> usize {
    std::env::var("PCAP_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

fn sha256(bytes: &[u8]) -> String {
    pcap_protocol::keys::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Every sealed segment seen in the spool: (capture, name) -> SHA-256 when first seen.
type Seen = Arc<Mutex<BTreeMap<(String, String), String>>>;

/// Watches the spool every 10 ms and records each sealed segment once (sealed files never
/// change, so the first reading is what was sealed).
fn watch_spool(spool: PathBuf, seen: Seen, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            for capture in std::fs::read_dir(&spool)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
            {
                let id = capture.file_name().to_string_lossy().into_owned();
                for file in pcap_tests::files_ending(&capture.path(), ".pcap.age") {
                    let name = file.file_name().unwrap().to_string_lossy().into_owned();
                    let key = (id.clone(), name);
                    if seen.lock().unwrap().contains_key(&key) {
                        continue;
                    }
                    // Gone already (uploaded and reaped) is fine: it was seen by the store.
                    if let Ok(bytes) = std::fs::read(&file) {
                        seen.lock().unwrap().insert(key, sha256(&bytes));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

fn random_millis(rng: &ring::rand::SystemRandom, from: u64, to: u64) -> u64 {
    let mut b = [0u8; 2];
    ring::rand::SecureRandom::fill(rng, &mut b).unwrap();
    from + u64::from(u16::from_le_bytes(b)) % (to - from)
}

#[test]
fn sigkill_at_random_points_loses_no_sealed_segment() {
    require_root!("live capture on the loopback interface");
    stop_at_random_points(Signal::SIGKILL, rounds());
}

#[test]
fn sigterm_at_random_points_exits_cleanly_and_loses_no_sealed_segment() {
    require_root!("live capture on the loopback interface");
    stop_at_random_points(Signal::SIGTERM, rounds() / 2);
}

/// Stops the agent with `signal` at random points, `rounds` times, and checks the oracle.
fn stop_at_random_points(signal: Signal, rounds: usize) {
    let s = Scratch::new("");
    let server = S3Server::start(&s.path("s3"));
    s.write_s3_config(
        &server,
        SECRET_KEY,
        "max_bps = \"8MiB\"\npart_size = \"5MiB\"",
        "rotate_size = \"2MiB\"\nrotate_interval = \"1s\"\n[spool]\nreap_interval = \"1s\"",
    );
    s.authorize();
    let seen: Seen = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_spool(s.path("spool"), seen.clone(), stop.clone());
    let rng = ring::rand::SystemRandom::new();
    let mut captures = Vec::new();
    let mut agent = s.start_agent();
    for round in 0..rounds {
        // A capture under traffic in some rounds; uploads and reaping of earlier ones in all.
        if round % 2 == 0 {
            let answer = agent.start_capture(&json!({
                "interface": "lo", "filter": "udp and dst port 7401", "reason": "other",
                "limits": {"max_duration": "3s"}
            }));
            if answer.status == 201 {
                captures.push(
                    answer.parse::<serde_json::Value>().unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
        }
        let until = Instant::now() + Duration::from_millis(random_millis(&rng, 50, 2500));
        while Instant::now() < until {
            send_udp("127.0.0.1", 7401, 200, 1400, 0);
            std::thread::sleep(Duration::from_millis(10));
        }
        agent.signal(signal);
        let status = agent.wait_exit(Duration::from_secs(15)).expect("stopped");
        if signal == Signal::SIGTERM {
            assert!(
                status.success(),
                "round {round}: {status:?}\n{}",
                agent.log_text()
            );
        }
        agent = s.start_agent();
    }
    // Let everything finish: every capture ends (killed ones are closed at restart) and
    // completes in the store.
    let complete = |id: &str| s.s3_dir(&server, id).join("manifest.json").exists();
    assert!(
        wait_until(Duration::from_secs(180), || captures
            .iter()
            .all(|c| complete(c))),
        "incomplete: {:?}\nlog:\n{}",
        captures.iter().filter(|c| !complete(c)).collect::<Vec<_>>(),
        agent.log_text()
    );
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();

    let seen = seen.lock().unwrap().clone();
    let (mut lost, mut corrupted, mut duplicates) = (Vec::new(), Vec::new(), 0);
    for ((capture, name), sealed) in &seen {
        let object: &Path = &s.s3_dir(&server, capture).join(name);
        match std::fs::read(object) {
            Ok(bytes) if sha256(&bytes) == *sealed => {}
            Ok(_) => corrupted.push(format!("{capture}/{name}")),
            Err(_) => lost.push(format!("{capture}/{name}")),
        }
    }
    for capture in &captures {
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(s.s3_dir(&server, capture).join("manifest.json")).unwrap(),
        )
        .unwrap();
        let mut names: Vec<&str> = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["name"].as_str())
            .collect();
        let all = names.len();
        names.sort();
        names.dedup();
        duplicates += all - names.len();
    }
    eprintln!(
        "fault suite ({signal}): {rounds} rounds, {} captures, {} sealed segments seen, {} lost, {} corrupted, {duplicates} duplicates",
        captures.len(),
        seen.len(),
        lost.len(),
        corrupted.len()
    );
    assert!(!seen.is_empty(), "segments were sealed");
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(corrupted.is_empty(), "corrupted: {corrupted:?}");
    assert_eq!(duplicates, 0);
    assert_eq!(
        server.open_uploads(),
        Vec::<String>::new(),
        "no multipart upload left open"
    );
}

/// The agent under libfaketime, its wall clock read from `clock_file` (changed while it runs;
/// the monotonic clock is left alone, as a stepped system clock would).
fn start_with_clock(s: &Scratch, clock_file: &Path) -> pcap_tests::Agent {
    let lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
    assert!(
        Path::new(lib).exists(),
        "libfaketime is missing: run scripts/setup"
    );
    s.start_agent_via(&[
        "env",
        // libfaketime reads its absolute times as local time.
        "TZ=UTC",
        &format!("LD_PRELOAD={lib}"),
        &format!("FAKETIME_TIMESTAMP_FILE={}", clock_file.display()),
        "FAKETIME_NO_CACHE=1",
        "FAKETIME_DONT_FAKE_MONOTONIC=1",
    ])
}

#[test]
fn the_wall_clock_stepped_back_and_forth_around_a_grants_expiry_is_followed() {
    // No capture needed: the authorization state is what the clock decides.
    let s = Scratch::new("");
    let text = std::fs::read_to_string(s.config_path()).unwrap().replace(
        "[authorization]\n",
        "[authorization]\npoll_interval = \"1s\"\n",
    );
    std::fs::write(s.config_path(), text).unwrap();
    s.authorize(); // one calendar month from now
    let grant: serde_json::Value = serde_json::from_str(&s.portal_ok(&["list", "--json"])).unwrap();
    let expires: jiff::Timestamp = grant[0]["expires_at"].as_str().unwrap().parse().unwrap();
    let not_before: jiff::Timestamp = grant[0]["not_before"].as_str().unwrap().parse().unwrap();
    let clock = s.path("clock");
    let set = |t: jiff::Timestamp| {
        // libfaketime's absolute format: "@YYYY-MM-DD hh:mm:ss" (UTC with TZ=UTC).
        std::fs::write(&clock, format!("@{}\n", t.strftime("%Y-%m-%d %H:%M:%S"))).unwrap();
    };
    let minute = jiff::SignedDuration::from_mins(1);

    set(not_before + minute);
    let agent = start_with_clock(&s, &clock);
    agent.wait_auth("authorized");
    // Forward past the expiry: expired within a poll.
    set(expires + minute);
    let auth = agent.wait_auth("expired");
    assert!(
        auth["reason"].as_str().unwrap().contains("expired"),
        "{auth}"
    );
    // Back before it: authorized again (the grant is still the newest document).
    set(expires - minute);
    agent.wait_auth("authorized");
    // Back before not_before: not yet valid.
    set(not_before - minute);
    agent.wait_auth("not_yet_valid");
    set(not_before + minute);
    agent.wait_auth("authorized");
}
