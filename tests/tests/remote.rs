//! The store as the only channel, end to end against s3s-fs on loopback: the administrator
//! authorizes, the research team requests, the agent captures and uploads, the research team
//! fetches, reads and deletes; unauthorize stops captures; attacks on the documents are refused.

use std::path::Path;
use std::time::{Duration, Instant};

use pcap_protocol::session::Field;
use pcap_tests::net::send_udp;
use pcap_tests::s3::S3Server;
use pcap_tests::{Agent, Scratch, pcapgen, require_root, run, tshark_fields, wait_until};

/// The JSON result of request `id`, if the agent wrote one.
fn result(server: &S3Server, id: &str) -> Option<serde_json::Value> {
    let path = server.object(&format!("pa/devices/PA-0001/results/{id}.json"));
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// Requests a capture with `pcap-portal request`; returns the request id.
fn request(s: &Scratch, server: &S3Server, filter: &str, limits: &[&str]) -> String {
    let mut args = vec![
        "request",
        "PA-0001",
        "--interface",
        "lo",
        "--filter",
        filter,
        "--reason",
        "unknown_application",
        "--subject",
        "remote e2e",
    ];
    args.extend_from_slice(limits);
    s.portal_s3_ok(server, &args).trim().to_owned()
}

/// Sends UDP to `port` until the result of `id` has left `accepted` (or 30 s pass).
fn drive(server: &S3Server, id: &str, port: u16) -> serde_json::Value {
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if let Some(r) = result(server, id)
            && r["state"] != "accepted"
        {
            return r;
        }
        send_udp("127.0.0.1", port, 5, 200, 0);
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("request {id} did not end: {:?}", result(server, id));
}

/// `pcap-portal captures fetch` of `capture` into `fetched/`; returns that directory.
fn fetch(s: &Scratch, server: &S3Server, capture: &str) -> std::path::PathBuf {
    let out = s.path("fetched");
    let args = ["captures", "fetch", capture, "--out", out.to_str().unwrap()];
    let fetched = s.portal_s3_ok(server, &args);
    assert!(fetched.contains("file(s)"), "{fetched}");
    out
}

fn setup(extra: &str) -> (Scratch, S3Server, Agent) {
    let s = Scratch::new("");
    let server = S3Server::start(&s.path("s3"));
    s.write_remote_config(&server, "", extra);
    let agent = s.start_agent();
    (s, server, agent)
}

/// As [`setup`], with the device authorized for a month.
fn setup_authorized() -> (Scratch, S3Server, Agent) {
    let (s, server, agent) = setup("");
    let args = [
        "authorize",
        "PA-0001 e2e",
        "--period",
        "1m",
        "--allow-unseen",
    ];
    s.portal_s3_ok(&server, &args);
    agent.wait_auth("authorized");
    (s, server, agent)
}

#[test]
fn authorize_request_fetch_unauthorize_reauthorize_and_delete_through_the_store() {
    require_root!("live capture on the loopback interface");
    let (s, server, agent) = setup("[sharing]\nsource_port = false\nuser = false");
    // The device reports itself; the administrator sees it, unauthorized.
    assert!(wait_until(Duration::from_secs(10), || server
        .object("pa/devices/PA-0001/status.json")
        .exists()));
    let list = s.portal_s3_ok(&server, &["devices", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(rows[0]["serial"], "PA-0001");
    assert_eq!(rows[0]["agent_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(rows[0]["state"], "unauthorized");

    // authorize -> authorized at the next poll (every second, jittered), by the agent's own
    // clock: from when the grant landed in the store to when the state changed.
    s.portal_s3_ok(&server, &["authorize", "PA-0001 e2e", "--period", "1m"]);
    let auth = agent.wait_auth("authorized");
    let since: jiff::Timestamp = auth["since"].as_str().unwrap().parse().unwrap();
    let after = since.duration_since(written_at(&server, "grant.json"));
    eprintln!("authorized {after:?} after the grant was written");
    assert!(
        after.as_secs_f64() < 5.0,
        "authorized {after:?} after the grant"
    );

    // request -> capture -> uploaded -> fetched -> read by tshark.
    let id = request(
        &s,
        &server,
        "udp and dst port 7301",
        &["--packets", "20", "--duration", "30s"],
    );
    let done = drive(&server, &id, 7301);
    assert_eq!(done["state"], "stopped", "{done}");
    assert_eq!(done["stop_reason"], "packets");
    assert_eq!(done["stats"]["written"], 20);
    let capture = done["capture_id"].as_str().unwrap().to_owned();
    assert!(wait_until(Duration::from_secs(30), || s
        .s3_dir(&server, &capture)
        .join("manifest.json")
        .exists()));
    let list = s.portal_s3_ok(&server, &["captures", "list"]);
    let line = list.lines().find(|l| l.contains(&capture)).expect("listed");
    assert!(
        line.contains("unknown_application") && line.contains("yes"),
        "{line}"
    );

    let out = fetch(&s, &server, &capture);
    let rows = tshark_fields(&out.join("000001.pcap"), &["udp.dstport"]);
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r[0] == "7301"));
    let sessions =
        pcap_tests::parse_records(&std::fs::read_to_string(out.join("sessions.json")).unwrap());
    assert!(!sessions.is_empty());
    for r in &sessions {
        let shared = r.shared_fields();
        assert!(
            !shared.contains(Field::SourcePort),
            "sharing: source_port off: {r:?}"
        );
        assert!(!shared.contains(Field::User), "sharing: user off: {r:?}");
        assert_eq!(
            r.source().0,
            Some("127.0.0.1".parse().unwrap()),
            "sharing: source_ip on: {r:?}"
        );
        assert_eq!(r.destination().1, Some(7301), "{r:?}");
    }

    // unauthorize -> the running capture stops within one poll interval plus a second.
    let id = request(&s, &server, "udp and dst port 7302", &["--duration", "60s"]);
    assert!(wait_until(Duration::from_secs(10), || result(&server, &id)
        .is_some_and(|r| r["state"] == "accepted")));
    let running = result(&server, &id).unwrap()["capture_id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.portal_s3_ok(&server, &["unauthorize", "PA-0001"]);
    let rec = agent.wait_capture_end(&running, Duration::from_secs(10));
    assert_eq!(rec["stop_reason"], "authorization_ended");
    let ended: jiff::Timestamp = rec["ended_at"].as_str().unwrap().parse().unwrap();
    let after = ended.duration_since(written_at(&server, "grant.json"));
    eprintln!("capture stopped {after:?} after the revocation was written");
    assert!(
        after.as_secs_f64() < 6.0,
        "stopped {after:?} after the revocation"
    );
    let id = request(&s, &server, "udp", &["--duration", "5s"]);
    assert!(wait_until(Duration::from_secs(10), || result(&server, &id).is_some()));
    let refused = result(&server, &id).unwrap();
    assert_eq!(refused["state"], "refused");
    assert_eq!(refused["code"], "not_authorized", "{refused}");

    // authorize again, then reauthorize for 3 months: the new expiry everywhere.
    s.portal_s3_ok(&server, &["authorize", "PA-0001 e2e", "--period", "1m"]);
    agent.wait_auth("authorized");
    s.portal_s3_ok(&server, &["reauthorize", "PA-0001", "--period", "3m"]);
    assert!(wait_until(Duration::from_secs(5), || agent
        .json("/v1/authorization")["grant"]["period"]
        == "3m"));
    let expiry = agent.json("/v1/authorization")["grant"]["expires_at"].clone();
    let rows: serde_json::Value =
        serde_json::from_str(&s.portal_s3_ok(&server, &["devices", "list", "--json"])).unwrap();
    assert_eq!(rows[0]["period"], "3m");
    assert_eq!(rows[0]["expires_at"], expiry);
    let out = run(s.pcapctl().arg("authorization"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("period 3m"));

    // delete after analysis: every object of the capture goes.
    s.portal_s3_ok(&server, &["captures", "delete", &capture]);
    assert!(!s.s3_dir(&server, &capture).join("manifest.json").exists());
    assert!(pcap_tests::files_ending(&s.s3_dir(&server, &capture), "").is_empty());
    assert!(
        !s.portal_s3_ok(&server, &["captures", "list"])
            .contains(&capture)
    );
}

/// A signed request document for `serial`, as `pcap-portal request` writes it.
fn signed_request(key: &Path, serial: &str, id: &str) -> Vec<u8> {
    let key = pcap_protocol::SigningKey::load(key).unwrap();
    let req: pcap_protocol::CaptureRequest = serde_json::from_value(serde_json::json!({
        "request_id": id, "serial": serial, "interface": "lo", "filter": "udp port 7399",
        "reason": "other", "limits": {"max_duration": "2s"},
        "not_after": (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string(),
    }))
    .unwrap();
    pcap_protocol::Envelope::sign(&req, &key).to_json()
}

fn put(server: &S3Server, rel: &str, bytes: &[u8]) {
    let path = server.object(&format!("pa/devices/PA-0001/{rel}"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    replace(server, &path, bytes);
}

/// Replaces the object file at `path` whole, as a store writes objects: written beside the
/// bucket, then renamed in, so the agent never reads half of it.
fn replace(server: &S3Server, path: &Path, bytes: &[u8]) {
    let tmp = server.root.join(format!(".put-{}", std::process::id()));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// When the agent last wrote its heartbeat (it polls the requests, then writes it).
fn heartbeat_time(server: &S3Server) -> Option<jiff::Timestamp> {
    let bytes = std::fs::read(server.object("pa/devices/PA-0001/status.json")).ok()?;
    let beat: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    beat["time"].as_str()?.parse().ok()
}

/// Waits until the agent has polled the store after `t` (a heartbeat written after it).
fn wait_for_poll_after(server: &S3Server, t: jiff::Timestamp) {
    assert!(
        wait_until(Duration::from_secs(20), || heartbeat_time(server)
            .is_some_and(|beat| beat > t)),
        "no poll of the store after {t}"
    );
}

/// When the object at `rel` under the device's prefix was last written.
fn written_at(server: &S3Server, rel: &str) -> jiff::Timestamp {
    let path = server.object(&format!("pa/devices/PA-0001/{rel}"));
    let modified = std::fs::metadata(path).unwrap().modified().unwrap();
    jiff::Timestamp::try_from(modified).unwrap()
}

/// Sends `count` VXLAN datagrams of VNI `vni` to 127.0.0.1:4789, each around an Ethernet frame
/// of UDP from 10.66.0.1 to 10.66.0.2:`inner_port`.
fn send_vxlan(vni: u32, inner_port: u16, count: usize) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let v = (vni << 8).to_be_bytes();
    let mut datagram = vec![0x08, 0, 0, 0, v[0], v[1], v[2], 0];
    datagram.extend(pcapgen::udp4(
        [10, 66, 0, 1],
        [10, 66, 0, 2],
        5000,
        inner_port,
        b"inner",
    ));
    for _ in 0..count {
        sock.send_to(&datagram, "127.0.0.1:4789").unwrap();
    }
}

#[test]
fn a_request_scoped_to_a_vni_captures_what_its_filter_names_inside_it() {
    require_root!("live capture on the loopback interface");
    let (s, server, _agent) = setup_authorized();
    let id = s
        .portal_s3_ok(
            &server,
            &[
                "request",
                "PA-0001",
                "--interface",
                "lo",
                "--tunnel",
                "vxlan:5001",
                "--filter",
                "udp dst port 7390",
                "--packets",
                "10",
                "--duration",
                "30s",
            ],
        )
        .trim()
        .to_owned();
    let end = Instant::now() + Duration::from_secs(30);
    let done = loop {
        if let Some(r) = result(&server, &id)
            && r["state"] != "accepted"
        {
            break r;
        }
        assert!(
            Instant::now() < end,
            "no result: {:?}",
            result(&server, &id)
        );
        // The other VNI with the same inner port, and the VNI with another port: neither is
        // captured.
        send_vxlan(5002, 7390, 3);
        send_vxlan(5001, 7391, 3);
        send_vxlan(5001, 7390, 2);
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(done["state"], "stopped", "{done}");
    assert_eq!(done["stop_reason"], "packets");
    assert_eq!(done["inner_filter"], "udp dst port 7390", "{done}");
    let effective = done["effective_filter"].as_str().unwrap_or_default();
    assert!(effective.contains("udp[12:4] >> 8 = 5001"), "{done}");
    let capture = done["capture_id"].as_str().unwrap().to_owned();
    assert!(wait_until(Duration::from_secs(30), || s
        .s3_dir(&server, &capture)
        .join("manifest.json")
        .exists()));
    let out = fetch(&s, &server, &capture);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["request"]["tunnel"]["id"], 5001, "{manifest}");
    assert_eq!(manifest["inner_filter"], "udp dst port 7390");
    // tshark reads the carrier's VXLAN: every packet is the VNI's, to the inner port.
    let rows = tshark_fields(&out.join("000001.pcap"), &["vxlan.vni", "udp.dstport"]);
    assert_eq!(rows.len(), 10, "{rows:?}");
    assert!(
        rows.iter().all(|r| r[0] == "5001" && r[1] == "4789,7390"),
        "{rows:?}"
    );
}

#[test]
fn forged_replayed_foreign_and_tampered_documents_start_nothing() {
    require_root!("live capture on the loopback interface (for the one genuine request)");
    let (s, server, agent) = setup_authorized();
    // One genuine request runs.
    let genuine = request(&s, &server, "udp and dst port 7311", &["--duration", "1s"]);
    let done = drive(&server, &genuine, 7311);
    assert_eq!(done["state"], "stopped");
    let genuine_bytes =
        std::fs::read(server.object(&format!("pa/devices/PA-0001/requests/{genuine}.json")))
            .unwrap();
    let captures = || {
        agent.json("/v1/captures")["captures"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(captures(), 1);

    let refused = |id: &str| {
        assert!(
            wait_until(Duration::from_secs(10), || result(&server, id).is_some()),
            "no result for {id}"
        );
        let r = result(&server, id).unwrap();
        assert_eq!(r["state"], "refused", "{r}");
        r["code"].as_str().unwrap().to_owned()
    };
    // Signed with the authorization key instead of the request key.
    let id = "01a20a99-0000-7000-8000-000000000001";
    put(
        &server,
        &format!("requests/{id}.json"),
        &signed_request(&s.path("keys/authorization.key"), "PA-0001", id),
    );
    assert_eq!(refused(id), "bad_signature");
    // Properly signed, for another device.
    let id = "01a20a99-0000-7000-8000-000000000002";
    put(
        &server,
        &format!("requests/{id}.json"),
        &signed_request(&s.path("keys/request.key"), "PA-0002", id),
    );
    assert_eq!(refused(id), "wrong_device");
    // One byte changed in a genuine request.
    let id = "01a20a99-0000-7000-8000-000000000003";
    let mut bytes = signed_request(&s.path("keys/request.key"), "PA-0001", id);
    let at = bytes.len() / 3;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    put(&server, &format!("requests/{id}.json"), &bytes);
    assert_eq!(refused(id), "bad_signature");
    // The genuine request copied under a new id: its id no longer matches.
    let id = "01a20a99-0000-7000-8000-000000000004";
    put(&server, &format!("requests/{id}.json"), &genuine_bytes);
    assert_eq!(refused(id), "invalid_request");

    // The genuine request written again after it ran, and again after a restart: ignored.
    let before = result(&server, &genuine).unwrap();
    put(&server, &format!("requests/{genuine}.json"), &genuine_bytes);
    wait_for_poll_after(&server, jiff::Timestamp::now());
    drop(agent);
    let agent = s.start_agent();
    agent.wait_auth("authorized");
    // The restarted agent lists the requests once (what it has seen), then the replay comes.
    wait_for_poll_after(&server, jiff::Timestamp::now());
    put(&server, &format!("requests/{genuine}.json"), &genuine_bytes);
    assert!(
        wait_until(Duration::from_secs(20), || {
            agent.json("/v1/status")["last_errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["message"].as_str().unwrap_or("").contains("replay"))
        }),
        "the replay is reported: {}",
        agent.json("/v1/status")
    );
    assert_eq!(
        agent.json("/v1/captures")["captures"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "0 captures started"
    );
    assert_eq!(
        result(&server, &genuine).unwrap(),
        before,
        "the real result stays"
    );

    // A tampered grant: the device is no longer authorized, and says why.
    let grant = server.object("pa/devices/PA-0001/grant.json");
    let genuine_grant = std::fs::read(&grant).unwrap();
    let mut bytes = genuine_grant.clone();
    let at = bytes.len() / 2;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    replace(&server, &grant, &bytes);
    let auth = agent.wait_auth("unauthorized");
    assert!(auth["reason"].as_str().unwrap().contains("grant"), "{auth}");
    let id = request(&s, &server, "udp", &["--duration", "5s"]);
    assert_eq!(refused(&id), "not_authorized");
    replace(&server, &grant, &genuine_grant);
    agent.wait_auth("authorized");

    // An older grant written back after a newer one: a rollback, refused.
    s.portal_s3_ok(&server, &["reauthorize", "PA-0001", "--period", "3m"]);
    assert!(wait_until(Duration::from_secs(5), || agent
        .json("/v1/authorization")["sequence"]
        == 2));
    replace(&server, &grant, &genuine_grant);
    let auth = agent.wait_auth("unauthorized");
    assert!(
        auth["reason"].as_str().unwrap().contains("sequence"),
        "{auth}"
    );
    let id = request(&s, &server, "udp", &["--duration", "5s"]);
    assert_eq!(refused(&id), "not_authorized");
    assert_eq!(
        agent.json("/v1/captures")["captures"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "0 captures started"
    );
}

#[test]
fn the_portal_refuses_an_unknown_device_a_wrong_name_and_an_old_agent() {
    let s = Scratch::new("");
    let server = S3Server::start(&s.path("s3"));
    s.write_remote_config(&server, "", "");
    let fail = |args: &[&str]| {
        let out = run(s.portal_s3(&server).args(args));
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = fail(&["authorize", "PA-0001", "--period", "1m"]);
    assert!(
        e.contains("never reported") && e.contains("--allow-unseen"),
        "{e}"
    );
    let status = |version: &str| {
        let heartbeat = pcap_protocol::store::Heartbeat {
            schema: pcap_protocol::Schema::V1_0,
            serial: pcap_protocol::Serial::parse("PA-0001").unwrap(),
            name: Some("e2e".into()),
            agent_version: version.into(),
            libpcap_version: "libpcap version 1.10.3".into(),
            authorization: pcap_protocol::store::HeartbeatAuthorization {
                state: pcap_protocol::AuthState::Unauthorized,
                expires_at: None,
                period: None,
                sequence: None,
                reason: None,
            },
            captures: Default::default(),
            spool: Default::default(),
            uploads: Default::default(),
            last_error: None,
            time: jiff::Timestamp::now(),
            channel: None,
        };
        String::from_utf8(pcap_protocol::schema::encode(&heartbeat)).unwrap()
    };
    put(&server, "status.json", status("0.0.9").as_bytes());
    let e = fail(&["authorize", "PA-0001", "--period", "1m"]);
    assert!(e.contains("0.0.9") && e.contains("0.1.0 or newer"), "{e}");
    put(
        &server,
        "status.json",
        status(env!("CARGO_PKG_VERSION")).as_bytes(),
    );
    let e = fail(&["authorize", "PA-0001 lab-fw", "--period", "1m"]);
    assert!(e.contains("reports the name \"e2e\""), "{e}");
    s.portal_s3_ok(
        &server,
        &["authorize", "PA-0001 e2e", "--period", "unlimited"],
    );
    let list = s.portal_s3_ok(&server, &["devices", "list"]);
    assert!(
        list.contains("PA-0001") && list.contains("unlimited") && list.contains("never"),
        "{list}"
    );
}

#[test]
fn purge_deletes_exactly_the_captures_older_than_the_limit() {
    let s = Scratch::new("");
    let store = s.path("store/captures/PA-0001");
    let make = |id: &str, days_ago: u32| {
        let dir = store.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["000001.pcap.age", "sessions.json.age", "manifest.json"] {
            std::fs::write(dir.join(name), b"{}").unwrap();
            let out = run(std::process::Command::new("touch")
                .args(["-d", &format!("{days_ago} days ago")])
                .arg(dir.join(name)));
            assert!(out.status.success());
        }
    };
    make("01a20a99-0000-7000-8000-0000000000a1", 45);
    make("01a20a99-0000-7000-8000-0000000000a2", 31);
    make("01a20a99-0000-7000-8000-0000000000a3", 29);
    make("01a20a99-0000-7000-8000-0000000000a4", 0);

    let dry = s.portal_ok(&["purge", "--dry-run"]);
    assert!(
        dry.contains("would delete 2 capture(s), 6 object(s)"),
        "{dry}"
    );
    assert_eq!(
        std::fs::read_dir(&store).unwrap().count(),
        4,
        "--dry-run deletes nothing"
    );

    let out = s.portal_ok(&["purge"]);
    assert!(out.contains("deleted 2 capture(s)"), "{out}");
    let mut left: Vec<String> = std::fs::read_dir(&store)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| std::fs::read_dir(e.path()).unwrap().next().is_some())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "01a20a99-0000-7000-8000-0000000000a3",
            "01a20a99-0000-7000-8000-0000000000a4"
        ]
    );

    let out = s.portal_ok(&["purge", "--older-than", "1d"]);
    assert!(out.contains("deleted 1 capture(s)"), "{out}");
}

#[test]
fn a_corrupted_object_is_reported_by_fetch_not_written_as_good() {
    require_root!("live capture on the loopback interface");
    let (s, server, _agent) = setup_authorized();
    let id = request(
        &s,
        &server,
        "udp and dst port 7321",
        &["--packets", "5", "--duration", "20s"],
    );
    let done = drive(&server, &id, 7321);
    let capture = done["capture_id"].as_str().unwrap().to_owned();
    let dir = s.s3_dir(&server, &capture);
    assert!(wait_until(Duration::from_secs(30), || dir
        .join("manifest.json")
        .exists()));
    let segment = dir.join("000001.pcap.age");
    let mut bytes = std::fs::read(&segment).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x20;
    std::fs::write(&segment, bytes).unwrap();
    let out_dir = s.path("fetched");
    let out = run(s
        .portal_s3(&server)
        .args(["captures", "fetch", &capture, "--out"])
        .arg(&out_dir));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("000001.pcap.age is corrupted"), "{stderr}");
    assert!(!out_dir.join("000001.pcap").exists(), "not written as good");
    assert!(
        out_dir.join("sessions.json").exists(),
        "the intact files are fetched"
    );
}

#[test]
fn after_a_rolled_back_grant_the_portal_issues_above_what_the_device_accepted() {
    let (s, server, agent) = setup_authorized();
    let grant = server.object("pa/devices/PA-0001/grant.json");
    let first = std::fs::read(&grant).unwrap();
    s.portal_s3_ok(&server, &["reauthorize", "PA-0001", "--period", "3m"]);
    assert!(wait_until(Duration::from_secs(10), || agent
        .json("/v1/authorization")["sequence"]
        == 2));

    // Sequence 1 copied back over sequence 2: the device refuses it and says so.
    replace(&server, &grant, &first);
    let refused = agent.wait_auth("unauthorized");
    assert!(
        refused["reason"].as_str().unwrap().contains("rolled-back"),
        "{refused}"
    );
    // Its heartbeat reports the highest sequence it accepted, and the portal shows the
    // device's own state beside the (rolled-back) grant's.
    let heartbeat = server.object("pa/devices/PA-0001/status.json");
    assert!(
        wait_until(Duration::from_secs(10), || {
            let beat: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&heartbeat).unwrap_or_default())
                    .unwrap_or_default();
            beat["authorization"]["state"] == "unauthorized"
                && beat["authorization"]["sequence"] == 2
        }),
        "{}",
        String::from_utf8_lossy(&std::fs::read(&heartbeat).unwrap_or_default())
    );
    let list = s.portal_s3_ok(&server, &["devices", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(
        (&rows[0]["state"], &rows[0]["device_state"]),
        (&"authorized".into(), &"unauthorized".into()),
        "{list}"
    );
    assert!(
        s.portal_s3_ok(&server, &["devices", "list"])
            .contains("authorized (device: unauthorized: "),
        "the table shows what the device says"
    );

    // Without the portal's own record (another administrator's machine), the heartbeat alone
    // keeps the next sequence above what the device accepted.
    std::fs::remove_dir_all(s.path("portal-state")).unwrap();
    let out = s.portal_s3_ok(&server, &["unauthorize", "PA-0001"]);
    assert!(out.contains("unauthorized PA-0001 (sequence 3)"), "{out}");
    let revoked = agent.wait_auth("revoked");
    assert_eq!(revoked["sequence"], 3, "{revoked}");

    // And the portal's own record alone does the same when the device has not reported yet:
    // the store and the heartbeat rolled back, the record remembers sequence 3.
    replace(&server, &grant, &first);
    std::fs::remove_file(&heartbeat).unwrap();
    drop(agent);
    std::fs::remove_file(&heartbeat).ok();
    let out = s.portal_s3_ok(
        &server,
        &[
            "authorize",
            "PA-0001 e2e",
            "--period",
            "1m",
            "--allow-unseen",
        ],
    );
    assert!(out.contains("(sequence 4)"), "{out}");
}
