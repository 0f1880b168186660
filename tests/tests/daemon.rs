//! The daemon end to end: the real `pcap-agent` binary, its control socket, `pcapctl` and curl.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use pcap_tests::{Scratch, bin, require_root, run, wait_until};

fn authorize(s: &Scratch) {
    s.portal_ok(&[
        "authorize",
        "PA-0001 e2e",
        "--period",
        "1m",
        "--allow-unseen",
    ]);
}

#[test]
fn status_is_served_over_the_socket_to_curl_and_pcapctl() {
    let s = Scratch::new("");
    authorize(&s);
    let agent = s.start_agent();

    let status = agent.json("/v1/status");
    assert_eq!(status["serial"], "PA-0001");
    assert_eq!(status["authorization"]["state"], "authorized");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));

    let out = run(Command::new("curl")
        .args(["-sS", "--unix-socket"])
        .arg(s.socket())
        .arg("http://localhost/v1/status"));
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let via_curl: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(via_curl["serial"], "PA-0001");

    let out = run(s.pcapctl().arg("status"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("device:        PA-0001 (e2e)"), "{text}");
    assert!(text.contains("authorization: authorized until"), "{text}");

    let out = run(s.pcapctl().args(["authorization", "--json"]));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["grant"]["period"], "1m");

    let metrics = agent.get("/metrics").unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("pcap_agent_authorization_state{state=\"authorized\"} 1"),
        "{text}"
    );
}

#[test]
fn errors_have_the_json_shape_and_oversized_bodies_are_refused() {
    let s = Scratch::new("");
    let agent = s.start_agent();
    let answer = agent.get("/v1/nope").unwrap();
    assert_eq!(answer.status, 404);
    assert_eq!(answer.error().unwrap().code, "not_found");

    let answer = agent.post("/v1/status", None);
    assert_eq!(answer.status, 405);
    assert_eq!(answer.error().unwrap().code, "method_not_allowed");

    let answer = agent.post("/v1/reload", Some(vec![b'x'; 65 * 1024]));
    assert_eq!(answer.status, 413);
    assert_eq!(answer.error().unwrap().code, "body_too_large");
    // Unauthorized is a state, not an error: status says why.
    assert_eq!(
        agent.json("/v1/status")["authorization"]["state"],
        "unauthorized"
    );
}

#[test]
fn reload_applies_a_valid_config_and_keeps_the_old_one_when_the_new_is_invalid() {
    let s = Scratch::new("");
    let agent = s.start_agent();

    std::fs::write(
        s.config_path(),
        s.config_text("")
            .replace("interfaces = [\"lo\"]", "interfaces = [\"lo\", \"any\"]"),
    )
    .unwrap();
    let answer = agent.post("/v1/reload", None);
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(
        agent.json("/v1/status")["captures"]["interfaces"],
        serde_json::json!(["lo", "any"])
    );

    let broken = s.config_text("").replace(
        "interfaces = [\"lo\"]",
        "interfaces = [\"eth9\"]\nmax_concurrent = \"two\"",
    ) + "\n[sharing]\nurls = false\n";
    std::fs::write(s.config_path(), broken).unwrap();
    let out = run(s.pcapctl().arg("reload"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("capture.max_concurrent") && err.contains("sharing.urls"),
        "both problems listed: {err}"
    );
    assert_eq!(
        agent.json("/v1/status")["captures"]["interfaces"],
        serde_json::json!(["lo", "any"]),
        "the running config stays"
    );
    let last = &agent.json("/v1/status")["last_errors"][0];
    assert_eq!(last["source"], "config");

    // A change to the file is applied without being asked.
    std::fs::write(s.config_path(), s.config_text("")).unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        agent.json("/v1/status")["captures"]["interfaces"] == serde_json::json!(["lo"])
    }));

    // SIGHUP reloads as well (systemctl reload).
    let applied = || {
        let text = String::from_utf8_lossy(&agent.get("/metrics").unwrap().body).into_owned();
        text.lines()
            .find(|l| l.starts_with("pcap_agent_config_reloads_total{result=\"applied\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = applied();
    agent.signal(Signal::SIGHUP);
    assert!(wait_until(Duration::from_secs(10), || applied() == before + 1));
}

#[test]
fn sigterm_exits_cleanly_within_the_grace_period_and_removes_the_socket() {
    let s = Scratch::new("");
    let mut agent = s.start_agent();
    assert!(s.socket().exists());
    agent.signal(Signal::SIGTERM);
    let status = agent
        .wait_exit(Duration::from_secs(10))
        .expect("exited within the grace period");
    assert!(status.success(), "exit status {status}");
    assert!(!s.socket().exists(), "socket removed");
    assert!(agent.log_text().contains("pcap-agent stopped."));

    let out = run(s.pcapctl().arg("status"));
    assert_eq!(out.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_is_left_alone() {
    let s = Scratch::new("");
    std::fs::create_dir_all(s.path("run")).unwrap();
    // A socket nobody listens on, as a crashed daemon leaves behind.
    drop(std::os::unix::net::UnixListener::bind(s.socket()).unwrap());
    let agent = s.start_agent();
    assert_eq!(agent.json("/v1/status")["serial"], "PA-0001");

    let second = run(Command::new(bin("pcap-agent"))
        .arg("run")
        .arg("--config")
        .arg(s.config_path()));
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already running"));
    assert_eq!(
        agent.json("/v1/status")["serial"],
        "PA-0001",
        "the first agent still answers"
    );
}

#[test]
fn a_bad_config_exits_64_with_every_problem() {
    let s = Scratch::new("");
    std::fs::write(
        s.config_path(),
        "[device]\nserial = \"../x\"\n[capture]\ninterfaces = []\nbogus = 1\n",
    )
    .unwrap();
    for sub in ["check-config", "run"] {
        let out = run(Command::new(bin("pcap-agent"))
            .arg(sub)
            .arg("--config")
            .arg(s.config_path()));
        assert_eq!(out.status.code(), Some(64), "{sub}");
        let err = String::from_utf8_lossy(&out.stderr);
        for key in [
            "device.serial",
            "capture.bogus",
            "authorization.source",
            "upload.recipients",
        ] {
            assert!(err.contains(key), "{sub}: {key} missing in {err}");
        }
    }
    s.write_config("");
    let out = run(Command::new(bin("pcap-agent"))
        .arg("check-config")
        .arg("--config")
        .arg(s.config_path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `program` as uid/gid 65534 (nobody/nogroup) with the given supplementary groups.
fn as_nobody_in(program: &str, groups: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534"]);
    if groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        cmd.arg(format!("--groups={groups}"));
    }
    cmd.arg(program);
    cmd
}

fn as_nobody(program: &str) -> Command {
    as_nobody_in(program, "")
}

#[test]
fn a_peer_not_in_the_allowlist_is_refused_before_its_body_is_read() {
    require_root!("switching to another uid with setpriv");
    // The socket file is open to nogroup, but the allowlist names neither nobody nor nogroup:
    // only the SO_PEERCRED check stands between that user and the agent.
    let s = Scratch::new("");
    let config = |uids: &str| {
        s.config_text("").replace(
            &format!("socket = \"{}\"", s.socket().display()),
            &format!(
                "socket = \"{}\"\nmode = 0o660\ngroup = \"nogroup\"\nallowed_gids = [\"adm\"]\nallowed_uids = [{uids}]",
                s.socket().display()
            ),
        )
    };
    std::fs::write(s.config_path(), config("")).unwrap();
    for dir in [s.dir.path().to_owned(), s.path("run")] {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    let agent = s.start_agent();

    let curl = |groups: &str, body: bool| {
        let mut cmd = as_nobody_in("curl", groups);
        cmd.args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--unix-socket"])
            .arg(s.socket());
        if body {
            cmd.args(["-X", "POST", "--data-binary", &"x".repeat(100 * 1024)]);
            cmd.arg("http://localhost/v1/reload");
        } else {
            cmd.arg("http://localhost/v1/status");
        }
        let out = run(&mut cmd);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let refused = curl("", false);
    assert!(refused.ends_with("403"), "{refused}");
    assert!(
        refused.contains("peer_not_allowed") && refused.contains("uid 65534"),
        "{refused}"
    );
    // A refused peer's oversized body is not read: 403, not 413, and the client reads it
    // although the server answered before the body was sent.
    let refused_body = curl("", true);
    assert!(refused_body.ends_with("403"), "{refused_body}");
    let metrics = String::from_utf8_lossy(&agent.get("/metrics").unwrap().body).into_owned();
    assert!(
        metrics.contains("pcap_agent_control_refused_peers_total 2"),
        "{metrics}"
    );

    let out = run(as_nobody(bin("pcapctl").to_str().unwrap())
        .arg("--socket")
        .arg(s.socket())
        .arg("status"));
    assert_eq!(out.status.code(), Some(77));

    // Membership of an allowed group as a supplementary group is enough (SO_PEERGROUPS).
    assert!(curl("adm", false).ends_with("200"));

    // Allowed by uid after a reload: the same user now gets answers.
    std::fs::write(s.config_path(), config("65534")).unwrap();
    assert_eq!(agent.post("/v1/reload", None).status, 200);
    assert!(curl("", false).ends_with("200"));
}

#[test]
fn pcapctl_explains_a_socket_it_may_not_open() {
    require_root!("switching to another uid with setpriv");
    let s = Scratch::new("");
    let _agent = s.start_agent();
    // The scratch directory is 0700 root: nobody cannot even reach the socket.
    let out = run(as_nobody(bin("pcapctl").to_str().unwrap())
        .arg("--socket")
        .arg(s.socket())
        .arg("status"));
    assert_eq!(
        out.status.code(),
        Some(77),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied"));
}

#[test]
fn under_systemd_the_agent_notifies_ready_watchdog_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let s = Scratch::new("");
    let notify_path = s.path("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // systemd names the watched process in WATCHDOG_PID; `exec` keeps the shell's pid.
    let child = Command::new("sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" run --config \"$1\" --log-format json")
        .arg(bin("pcap-agent"))
        .arg(s.config_path())
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "200000")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map(|c| pcap_tests::ChildGuard(Some(c)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    let mut receive_until = |needle: &str, seen: &mut Vec<String>| {
        while !seen.iter().any(|m| m.contains(needle)) {
            let n = notify
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("no {needle} ({e}); got {seen:?}"));
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    };
    receive_until("READY=1", &mut seen);
    receive_until("WATCHDOG=1", &mut seen);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    receive_until("STOPPING=1", &mut seen);
    let out = child.take().wait_with_output().unwrap();
    assert!(out.status.success());
    // --log-format json: every log line is a JSON object.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().count() >= 2, "{stderr}");
    for line in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
}

#[test]
fn with_a_thousand_idle_connections_open_an_allowed_client_still_gets_answers() {
    // The agent starts with a soft descriptor limit below 1000 (systemd gives 1024) and must make room
    // for the connections itself.
    let s = Scratch::new("");
    authorize(&s);
    let agent = s.start_agent_via(&["prlimit", "--nofile=512:4096"]);
    let idle: Vec<std::os::unix::net::UnixStream> = (0..1000)
        .map(|_| std::os::unix::net::UnixStream::connect(s.socket()).expect("connect"))
        .collect();
    let mut latencies = Vec::new();
    for _ in 0..200 {
        let t0 = std::time::Instant::now();
        let answer = agent
            .get("/v1/status")
            .expect("an answer with 1000 idle connections open");
        assert!(answer.status.is_success(), "{}", answer.status);
        latencies.push(t0.elapsed());
    }
    latencies.sort();
    eprintln!(
        "/v1/status with {} idle connections open: p50 {:?}, p99 {:?}, max {:?}",
        idle.len(),
        latencies[100],
        latencies[197],
        latencies[199]
    );
    // Every idle connection was accepted, none left waiting for a descriptor.
    assert!(
        !agent.log_text().contains("Cannot accept"),
        "{}",
        agent.log_text()
    );
    drop(idle);
}

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn write_config_with_metrics(s: &Scratch, listen: &str) {
    let text = s.config_text("").replace(
        "[control]\n",
        &format!("[control]\nmetrics_listen = \"{listen}\"\n"),
    );
    std::fs::write(s.config_path(), text).unwrap();
}

fn curl_status(url: &str, extra: &[&str]) -> (String, String) {
    let out = run(Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(url));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
    (code.to_owned(), body.to_owned())
}

#[test]
fn metrics_are_served_over_tcp_when_configured_and_nothing_else_is() {
    let s = Scratch::new("");
    authorize(&s);
    let port = free_port();
    write_config_with_metrics(&s, &format!("127.0.0.1:{port}"));
    let _agent = s.start_agent();

    let (code, body) = curl_status(&format!("http://127.0.0.1:{port}/metrics"), &[]);
    assert_eq!(code, "200", "{body}");
    for line in [
        "pcap_agent_authorization_state{state=\"authorized\"} 1",
        "pcap_agent_captures_running 0",
        "pcap_agent_capture_packets_total{outcome=\"dropped_kernel\"} 0",
        // Counters of events that have not happened yet are there at 0, for increase().
        "pcap_agent_config_reloads_total{result=\"rejected\"} 0",
        "pcap_agent_captures_stopped_total{reason=\"disk_full\"} 0",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "{line} missing from\n{body}"
        );
    }
    // Only /metrics: the control API is not reachable over TCP.
    let (code, body) = curl_status(&format!("http://127.0.0.1:{port}/v1/status"), &[]);
    assert_eq!(code, "404", "{body}");
    assert!(!body.contains("PA-0001"), "{body}");
    let (code, _) = curl_status(&format!("http://127.0.0.1:{port}/metrics"), &["-X", "POST"]);
    assert_eq!(code, "405");
}

#[test]
fn a_metrics_address_that_is_taken_or_malformed_is_refused_with_what_to_do() {
    let s = Scratch::new("");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    write_config_with_metrics(&s, &addr);
    let out = run(Command::new(bin("pcap-agent"))
        .args(["run", "--config"])
        .arg(s.config_path()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen for metrics on {addr}"))
            && stderr.contains("choose a free address and port in control.metrics_listen"),
        "{stderr}"
    );

    write_config_with_metrics(&s, "localhost");
    let out = run(Command::new(bin("pcap-agent"))
        .arg("check-config")
        .arg("--config")
        .arg(s.config_path()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains(r#"control.metrics_listen: "localhost" is not an address and port"#),
        "{stderr}"
    );
}
