//! The agent's uploads and its spool, end to end: what the control socket and `/metrics` show,
//! the reaper emptying the spool, a permanent store error, SIGKILL during uploads, and a
//! spool on a small file system that fills up.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use pcap_tests::net::send_udp;
use pcap_tests::s3::{S3Server, SECRET_KEY};
use pcap_tests::{Scratch, files_ending, require_root, run, tcpdump_count, wait_until};
use serde_json::json;

fn capture_body(filter: &str, limits: serde_json::Value) -> serde_json::Value {
    json!({"interface": "lo", "filter": filter, "reason": "unknown_application", "subject": "upload e2e", "limits": limits})
}

fn id(record: &serde_json::Value) -> String {
    record["id"].as_str().expect("an id").to_owned()
}

fn crc64(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    pcap_spool::checksum::of(pcap_spool::checksum::Checksum::Crc64Nvme, &bytes)
}

/// Checks every file a manifest lists against the objects in `dir`: present, same size and
/// CRC-64/NVME as sealed, decrypting to a pcap; returns the packets in the segments.
fn check_complete(s: &Scratch, manifest: &serde_json::Value, dir: &Path) -> usize {
    let mut packets = 0;
    for f in manifest["files"].as_array().expect("files") {
        let name = f["name"].as_str().unwrap();
        assert_eq!(f["state"], "uploaded", "{manifest}");
        let object = dir.join(name);
        assert_eq!(std::fs::metadata(&object).unwrap().len(), f["size"]);
        assert_eq!(crc64(&object), f["crc64nvme"].as_str().unwrap(), "{name}");
        let plain = s.decrypt(&object);
        if name.ends_with(".pcap.age") {
            packets += tcpdump_count(&plain);
        }
    }
    packets
}

#[test]
fn a_capture_is_uploaded_shown_in_the_spool_and_metrics_and_reaped() {
    require_root!("live capture on the loopback interface");
    let s = Scratch::new("rotate_size = \"64KiB\"");
    s.authorize();
    let agent = s.start_agent();
    let rec = agent.start_capture_ok(&capture_body(
        "udp and dst port 7201",
        json!({"max_packets": 300, "max_duration": "20s"}),
    ));
    // Uploads yield to captures: the upload threads run at `upload.nice` (19 by default), the
    // capture and segment threads at the daemon's own priority.
    let threads = agent.threads();
    let nice_of = |prefix: &str| -> Vec<i32> {
        threads
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|&(_, nice)| nice)
            .collect()
    };
    assert!(!nice_of("pcap-upload").is_empty(), "{threads:?}");
    assert!(
        nice_of("pcap-upload").iter().all(|&n| n == 19),
        "{threads:?}"
    );
    for prefix in ["capture-", "seal-", "pcap-agent"] {
        assert!(
            !nice_of(prefix).is_empty(),
            "no {prefix} thread: {threads:?}"
        );
        assert!(nice_of(prefix).iter().all(|&n| n == 0), "{threads:?}");
    }
    send_udp("127.0.0.1", 7201, 300, 1000, 0);
    let rec = agent.wait_capture_end(&id(&rec), Duration::from_secs(20));
    let manifest = s.wait_complete(&id(&rec));
    assert_eq!(manifest["capture_id"], rec["id"]);
    assert_eq!(manifest["stop_reason"], "packets");
    let segments = rec["segments"].as_array().unwrap().len();
    assert!(segments >= 4, "{rec}");
    assert_eq!(
        manifest["files"].as_array().unwrap().len(),
        segments + 1,
        "segments and the session records"
    );
    // Every object in the local store is the agent's alone, whatever the umask of whoever
    // started it: the manifest (written, not linked) as much as the segments.
    {
        use std::os::unix::fs::PermissionsExt;
        for object in files_ending(&s.store_dir(&id(&rec)), "") {
            let mode = std::fs::metadata(&object).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", object.display());
        }
    }
    assert_eq!(check_complete(&s, &manifest, &s.store_dir(&id(&rec))), 300);
    // keep_uploaded_for = 0: the reaper removes what was uploaded, and the capture's directory.
    let spool = s.path("spool").join(id(&rec));
    assert!(
        wait_until(Duration::from_secs(10), || !spool.exists()),
        "left in the spool: {:?}",
        files_ending(&spool, "")
    );
    let listing = agent.json("/v1/spool");
    assert_eq!(listing["refusing_new_segments"], false);
    assert_eq!(listing["uploads"]["manifests"], 1);
    assert!(listing["uploads"]["permanent_error"].is_null());
    let reaped = agent.post("/v1/reap", None);
    assert_eq!(reaped.status, 200);
    assert_eq!(
        reaped.parse::<serde_json::Value>().unwrap()["refusing"],
        false
    );

    let metrics = String::from_utf8_lossy(&agent.get("/metrics").unwrap().body).into_owned();
    for line in [
        "pcap_agent_captures_completed_total 1".to_owned(),
        format!("pcap_agent_uploaded_files_total {}", segments + 2),
        format!(
            "pcap_agent_reaped_files_total{{reason=\"uploaded\"}} {}",
            segments + 1
        ),
        "pcap_agent_upload_permanent_error 0".to_owned(),
        "pcap_agent_spool_refusing 0".to_owned(),
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }

    // pcapctl shows the same.
    let out = run(s.pcapctl().arg("spool"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("captures complete: 1"), "{text}");
    let out = run(s.pcapctl().arg("reap"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn wrong_store_credentials_are_a_clear_permanent_error_without_retry_storm() {
    require_root!("live capture on the loopback interface");
    let s = Scratch::new("");
    let server = S3Server::start(&s.path("s3"));
    s.write_s3_config(&server, "not-the-secret", "", "");
    s.authorize();
    let agent = s.start_agent();
    let rec = agent.start_capture_ok(&capture_body(
        "udp and dst port 7202",
        json!({"max_packets": 10, "max_duration": "10s"}),
    ));
    send_udp("127.0.0.1", 7202, 10, 100, 0);
    agent.wait_capture_end(&id(&rec), Duration::from_secs(15));

    let mut status = json!(null);
    assert!(
        wait_until(Duration::from_secs(20), || {
            status = agent.json("/v1/status");
            !status["uploads"]["permanent_error"].is_null()
        }),
        "no permanent error: {status}"
    );
    let error = status["uploads"]["permanent_error"].as_str().unwrap();
    assert!(error.contains("credentials"), "{error}");
    let attempts = status["uploads"]["failed_attempts"].as_u64().unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let later = agent.json("/v1/status")["uploads"]["failed_attempts"]
        .as_u64()
        .unwrap();
    assert_eq!(later, attempts, "held back, not retried in a loop");
    assert!(attempts <= 2, "{attempts} attempts");
    assert!(agent.log_text().contains("an operator must act"));
    // Nothing deleted, nothing stored.
    let spooled = files_ending(&s.path("spool").join(id(&rec)), ".pcap.age");
    assert_eq!(spooled.len(), 1);
    assert!(!s.s3_dir(&server, &id(&rec)).exists());
    let listing = agent.json("/v1/spool");
    let seg = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "000001.pcap.age")
        .expect("listed");
    assert_eq!(seg["state"], "sealed");
    assert!(seg["last_error"].as_str().unwrap().contains("credentials"));
}

/// How many SIGKILL rounds (CI keeps it small; `PCAP_KILL_ROUNDS` raises it).
fn kill_rounds() -> usize {
    std::env::var("PCAP_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

#[test]
fn sigkill_during_uploads_loses_and_corrupts_nothing() {
    require_root!("live capture on the loopback interface");
    let s = Scratch::new("rotate_size = \"6MiB\"");
    let server = S3Server::start(&s.path("s3"));
    // Slow uploads (2 MiB/s) of multipart segments, so that kills land mid-upload.
    s.write_s3_config(
        &server,
        SECRET_KEY,
        "max_bps = \"2MiB\"\npart_size = \"5MiB\"",
        "rotate_size = \"6MiB\"",
    );
    s.authorize();
    let mut agent = s.start_agent();
    let rec = agent.start_capture_ok(&capture_body(
        "udp and dst port 7203",
        json!({"max_packets": 14_000, "max_duration": "30s"}),
    ));
    // More than the limit, so that a packet the kernel drops on a busy host is made up for.
    send_udp("127.0.0.1", 7203, 16_000, 1400, 20_000);
    let capture = id(&rec);
    let rec = agent.wait_capture_end(&capture, Duration::from_secs(40));
    assert_eq!(rec["stop_reason"], "packets", "{rec}");
    let segments = rec["segments"].as_array().unwrap().len();
    assert!(segments >= 3, "{rec}");

    let rng = ring::rand::SystemRandom::new();
    for round in 0..kill_rounds() {
        let mut byte = [0u8; 1];
        ring::rand::SecureRandom::fill(&rng, &mut byte).unwrap();
        std::thread::sleep(Duration::from_millis(300 + u64::from(byte[0]) * 6));
        agent.signal(Signal::SIGKILL);
        agent.wait_exit(Duration::from_secs(5)).expect("killed");
        eprintln!("round {round}: killed");
        agent = s.start_agent();
    }
    let manifest_path = s.s3_dir(&server, &capture).join("manifest.json");
    assert!(
        wait_until(Duration::from_secs(90), || manifest_path.exists()),
        "never completed; log:\n{}",
        agent.log_text()
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    assert_eq!(manifest["segments_lost"], 0);
    let packets = check_complete(&s, &manifest, &s.s3_dir(&server, &capture));
    assert_eq!(packets, 14_000, "every packet of every sealed segment");
    assert_eq!(
        server.open_uploads(),
        Vec::<String>::new(),
        "no multipart upload left open"
    );
}

/// A tmpfs of `mib` MiB mounted at `dir`, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mib: u32) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = run(Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(dir));
        assert!(
            out.status.success(),
            "mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Samples the spool's size every 10 ms while `during` runs; returns the largest.
fn peak_usage(dir: &Path, during: impl FnOnce()) -> u64 {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let dir = dir.to_owned();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(pcap_spool::usage::dir_size(&dir));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    during();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap()
}

#[test]
fn a_full_spool_stops_captures_with_disk_full_and_resumes_when_uploads_free_it() {
    require_root!("a tmpfs spool and live capture on the loopback interface");
    let s = Scratch::new("");
    let _tmpfs = Tmpfs::mount(&s.path("spool"), 64);
    let root = s.path("s3");
    // The store is down at first: nothing can leave the spool.
    let mut server = S3Server::start(&root);
    let endpoint_port = server.port;
    server.kill();
    s.write_s3_config(
        &server,
        SECRET_KEY,
        "",
        "rotate_size = \"1MiB\"\n[spool]\nmax_bytes = \"16MiB\"\nmin_free_percent = 0\nreap_interval = \"1s\"",
    );
    s.authorize();
    let agent = s.start_agent();

    // The quota: unuploaded data stops at 16 MiB plus the segment being written.
    let rec = agent.start_capture_ok(&capture_body(
        "udp and dst port 7204",
        json!({"max_duration": "60s"}),
    ));
    let peak = peak_usage(&s.path("spool"), || {
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end
            && agent.json(&format!("/v1/captures/{}", id(&rec)))["state"] == "running"
        {
            send_udp("127.0.0.1", 7204, 2000, 1400, 0);
        }
    });
    let rec = agent.wait_capture_end(&id(&rec), Duration::from_secs(10));
    assert_eq!(rec["stop_reason"], "disk_full", "{rec}");
    assert!(
        peak <= (16 << 20) + (1 << 20) + (64 << 10),
        "peak {peak} bytes over 16 MiB + one 1 MiB segment"
    );
    // The reaper, woken by the capture's end, sets the flag.
    assert!(wait_until(Duration::from_secs(10), || agent
        .json("/v1/spool")["refusing_new_segments"]
        == true));
    // The daemon keeps answering; a new capture is refused for the same reason.
    let refused = agent.start_capture(&capture_body("udp and dst port 7204", json!({})));
    assert_eq!(refused.status, 507);
    let error = refused.error().unwrap();
    assert_eq!(error.code, "spool_full");
    assert!(error.message.contains("uploads free it"), "{error:?}");

    // The store comes back: uploads free the spool and captures run again.
    server.restart();
    assert_eq!(server.port, endpoint_port);
    assert!(
        wait_until(
            Duration::from_secs(60),
            || agent.json("/v1/spool")["refusing_new_segments"] == false
        ),
        "still full: {}",
        agent.json("/v1/spool")
    );
    let rec = agent.start_capture_ok(&capture_body(
        "udp and dst port 7204",
        json!({"max_packets": 20, "max_duration": "10s"}),
    ));
    send_udp("127.0.0.1", 7204, 20, 100, 0);
    let rec = agent.wait_capture_end(&id(&rec), Duration::from_secs(15));
    assert_eq!(rec["stop_reason"], "packets", "{rec}");
}

#[test]
fn enospc_on_the_spool_stops_the_capture_with_disk_full_and_keeps_what_was_sealed() {
    require_root!("a tmpfs spool and live capture on the loopback interface");
    let s = Scratch::new("");
    let _tmpfs = Tmpfs::mount(&s.path("spool"), 16);
    let mut server = S3Server::start(&s.path("s3"));
    server.kill();
    // A quota above the file system's size: the disk fills before the quota does.
    s.write_s3_config(
        &server,
        SECRET_KEY,
        "",
        "rotate_size = \"1MiB\"\n[spool]\nmax_bytes = \"1GiB\"\nmin_free_percent = 0",
    );
    s.authorize();
    let agent = s.start_agent();
    let rec = agent.start_capture_ok(&capture_body(
        "udp and dst port 7205",
        json!({"max_duration": "60s"}),
    ));
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end
        && agent.json(&format!("/v1/captures/{}", id(&rec)))["state"] == "running"
    {
        send_udp("127.0.0.1", 7205, 2000, 1400, 0);
    }
    let rec = agent.wait_capture_end(&id(&rec), Duration::from_secs(10));
    assert_eq!(rec["stop_reason"], "disk_full", "{rec}");
    // The daemon keeps answering.
    assert_eq!(agent.json("/v1/spool")["uploads"]["manifests"], 0);
    let sealed = rec["segments"].as_array().unwrap().len();
    assert!(sealed >= 5, "{rec}");

    // Every sealed segment reaches the store once it is back.
    server.restart();
    let manifest_path = s.s3_dir(&server, &id(&rec)).join("manifest.json");
    assert!(
        wait_until(Duration::from_secs(60), || manifest_path.exists()),
        "never completed; log:\n{}",
        agent.log_text()
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let uploaded = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["state"] == "uploaded" && f["name"].as_str().unwrap().ends_with(".pcap.age"))
        .count();
    assert_eq!(uploaded, sealed, "{manifest}");
    check_complete(
        &s,
        &json!({"files": manifest["files"].as_array().unwrap().iter().filter(|f| f["state"] == "uploaded").cloned().collect::<Vec<_>>()}),
        &s.s3_dir(&server, &id(&rec)),
    );
}

#[test]
fn nothing_from_a_request_becomes_part_of_a_path() {
    require_root!("live capture on the loopback interface");
    let s = Scratch::new("");
    s.authorize();
    let agent = s.start_agent();
    for path in [
        "/v1/captures/..%2F..%2Fagent.toml",
        "/v1/captures/../../agent.toml",
        "/v1/captures/%2e%2e",
        "/v1/captures/..",
    ] {
        let answer = agent.get(path).expect("the agent answers");
        assert!(
            answer.status == 404 || answer.status == 400,
            "{path}: {}",
            answer.status
        );
        assert!(!String::from_utf8_lossy(&answer.body).contains("[device]"));
        let answer = agent.delete(path);
        assert!(
            answer.status == 404 || answer.status == 400,
            "DELETE {path}: {}",
            answer.status
        );
    }
    assert!(s.config_path().exists());

    // Text fields of a request are data, never names.
    let mut body = capture_body(
        "udp and dst port 7206",
        json!({"max_packets": 5, "max_duration": "10s"}),
    );
    body["subject"] = json!("../../../../pwned");
    let rec = agent.start_capture_ok(&body);
    send_udp("127.0.0.1", 7206, 5, 100, 0);
    let rec = agent.wait_capture_end(&id(&rec), Duration::from_secs(15));
    let manifest = s.wait_complete(&id(&rec));
    assert_eq!(manifest["request"]["subject"], "../../../../pwned");
    let mut stack = vec![s.dir.path().to_owned(), std::env::temp_dir()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
        {
            assert_ne!(e.file_name(), "pwned", "{}", e.path().display());
            if dir.starts_with(s.dir.path()) && e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    // The store holds the grant, the portal's audit trail (entries named by their own ids) and
    // this capture's files, nothing elsewhere.
    let store = s.path("store");
    let capture_dir = s.store_dir(&id(&rec));
    let mut stack = vec![store.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().filter_map(Result::ok) {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let p = e.path();
                assert!(
                    p.starts_with(store.join("devices/PA-0001"))
                        || p.starts_with(store.join("audit"))
                        || p.starts_with(&capture_dir),
                    "{}",
                    p.display()
                );
            }
        }
    }
}
