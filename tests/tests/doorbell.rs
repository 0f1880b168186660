//! The doorbell against a real Mosquitto and a real s3s-fs on loopback: grants, requests and
//! revocations reach a device in about a second while it polls the store every ten minutes;
//! forged messages cost at most one store read a second and start nothing; a broker that dies,
//! refuses the password or shows an untrusted certificate leaves the agent polling, and says so.

use std::process::Command;
use std::time::{Duration, Instant};

use pcap_tests::mqtt::{Broker, PASSWORD, PORTAL_USER};
use pcap_tests::s3::S3Server;
use pcap_tests::{Agent, Scratch, require_root, run, wait_until};

const SERIAL: &str = "PA-0001";

/// The agent's config: everything from the store on `server`, the doorbell on `broker` (as
/// `user` with `password`, `ca` to trust), polling every `fallback` while the doorbell is down
/// and every ten minutes while it is connected.
fn configure(
    s: &Scratch,
    server: &S3Server,
    broker: &Broker,
    fallback: &str,
    login: (&str, &str),
    ca: Option<&std::path::Path>,
) {
    s.write_remote_config(server, "", "");
    let creds = s.path("doorbell.toml");
    broker.credentials(&creds, login.0, login.1);
    let mut text = std::fs::read_to_string(s.config_path()).unwrap().replace(
        "poll_interval = \"1s\"",
        &format!("poll_interval = \"{fallback}\""),
    );
    text.push_str(&format!(
        "\n[doorbell]\nurl = \"{}\"\ncredentials_file = \"{}\"\npoll_interval = \"10m\"\n",
        broker.url(),
        creds.display()
    ));
    if let Some(ca) = ca {
        text.push_str(&format!("ca_bundle = \"{}\"\n", ca.display()));
    }
    std::fs::write(s.config_path(), text).unwrap();
}

/// `pcap-portal` on `server`, ringing the doorbell on `broker`.
fn portal(s: &Scratch, server: &S3Server, broker: &Broker) -> Command {
    let creds = s.path("portal-doorbell.toml");
    broker.credentials(&creds, PORTAL_USER, PASSWORD);
    let mut cmd = s.portal_s3(server);
    cmd.env("PCAP_DOORBELL", broker.url())
        .env("PCAP_DOORBELL_CREDENTIALS", creds);
    if broker.url().starts_with("mqtts") {
        cmd.env("PCAP_DOORBELL_CA", broker.ca());
    }
    cmd
}

fn portal_ok(s: &Scratch, server: &S3Server, broker: &Broker, args: &[&str]) -> String {
    let out = run(portal(s, server, broker).args(args));
    assert!(
        out.status.success(),
        "pcap-portal {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The agent's doorbell as `/v1/status` shows it.
fn doorbell(agent: &Agent) -> serde_json::Value {
    agent.json("/v1/status")["channel"]["doorbell"].clone()
}

fn wait_doorbell(agent: &Agent, state: &str, timeout: Duration) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    let ok = wait_until(timeout, || {
        last = doorbell(agent);
        last["state"] == state
    });
    assert!(ok, "the doorbell did not become {state}; last: {last}");
    last
}

fn object(server: &S3Server, rel: &str) -> std::path::PathBuf {
    server.object(&format!("pa/devices/{SERIAL}/{rel}"))
}

fn written_at(server: &S3Server, rel: &str) -> jiff::Timestamp {
    let modified = std::fs::metadata(object(server, rel))
        .unwrap()
        .modified()
        .unwrap();
    jiff::Timestamp::try_from(modified).unwrap()
}

fn result(server: &S3Server, id: &str) -> Option<serde_json::Value> {
    std::fs::read(object(server, &format!("results/{id}.json")))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

fn wait_result(server: &S3Server, id: &str, timeout: Duration) -> serde_json::Value {
    let mut last = None;
    let ok = wait_until(timeout, || {
        last = result(server, id);
        last.is_some()
    });
    assert!(ok, "no result for request {id} within {timeout:?}");
    last.unwrap()
}

/// Asserts that `what` took under two seconds, from `from` to `to`, and says how long.
fn assert_within_two_seconds(what: &str, from: jiff::Timestamp, to: jiff::Timestamp) {
    let took = to.duration_since(from);
    eprintln!("{what} {took:?} after the document was written");
    assert!(
        took.as_secs_f64() < 2.0,
        "{what} {took:?} after the document"
    );
}

/// Requests a capture through `cmd` and waits until the agent accepted it; returns its id.
fn request_accepted(server: &S3Server, cmd: Command) -> String {
    let id = request(cmd);
    let result = wait_result(server, &id, Duration::from_secs(10));
    assert_eq!(result["state"], "accepted", "{result}");
    id
}

/// Requests a 60-second capture on `lo` through `cmd`; returns the request id.
fn request(mut cmd: Command) -> String {
    let out = run(cmd.args([
        "request",
        SERIAL,
        "--interface",
        "lo",
        "--filter",
        "udp and dst port 7399",
        "--duration",
        "60s",
        "--reason",
        "unknown_device",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A broker, a store and an agent whose store is polled every ten minutes either way: only
/// the doorbell can bring anything in sooner.
fn setup_slow_poll() -> (Scratch, S3Server, Broker, Agent) {
    let s = Scratch::new("");
    let server = S3Server::start(&s.path("s3"));
    slow_poll_on(s, server)
}

/// As [`setup_slow_poll`], on `server`.
fn slow_poll_on(s: Scratch, server: S3Server) -> (Scratch, S3Server, Broker, Agent) {
    let broker = Broker::start(&s.path("mqtt"), &[SERIAL]);
    configure(&s, &server, &broker, "10m", (SERIAL, PASSWORD), None);
    let agent = s.start_agent();
    wait_doorbell(&agent, "connected", Duration::from_secs(10));
    (s, server, broker, agent)
}

/// Rings less than a second apart are read together, a second after the first (at most one
/// store read a second); a test that times one document waits that second out first, as
/// documents for one device are not written within a second of each other.
fn quiet() {
    std::thread::sleep(pcap_agent::wake::MIN_RING_GAP + Duration::from_millis(100));
}

#[test]
fn grant_and_request_reach_a_device_polling_every_ten_minutes_within_two_seconds() {
    require_root!("live capture on the loopback interface");
    let (s, server, broker, agent) = setup_slow_poll();
    let status = agent.json("/v1/status");
    assert_eq!(status["channel"]["poll_interval_seconds"], 600, "{status}");

    quiet();
    portal_ok(
        &s,
        &server,
        &broker,
        &["authorize", SERIAL, "--period", "1m", "--allow-unseen"],
    );
    let auth = agent.wait_auth("authorized");
    let since: jiff::Timestamp = auth["since"].as_str().unwrap().parse().unwrap();
    assert_within_two_seconds("authorized", written_at(&server, "grant.json"), since);

    quiet();
    let id = request_accepted(&server, portal(&s, &server, &broker));
    assert_within_two_seconds(
        "request accepted",
        written_at(&server, &format!("requests/{id}.json")),
        written_at(&server, &format!("results/{id}.json")),
    );
}

#[test]
fn a_revocation_stops_a_running_capture_within_two_seconds() {
    require_root!("live capture on the loopback interface");
    let (s, server, broker, agent) = setup_slow_poll();
    portal_ok(
        &s,
        &server,
        &broker,
        &["authorize", SERIAL, "--period", "1m", "--allow-unseen"],
    );
    agent.wait_auth("authorized");
    let id = request_accepted(&server, portal(&s, &server, &broker));

    quiet();
    portal_ok(&s, &server, &broker, &["unauthorize", SERIAL]);
    let mut last = serde_json::Value::Null;
    assert!(wait_until(Duration::from_secs(10), || {
        last = result(&server, &id).unwrap_or_default();
        last["state"] == "stopped"
    }));
    assert_eq!(last["stop_reason"], "authorization_ended", "{last}");
    let ended: jiff::Timestamp = last["ended_at"].as_str().unwrap().parse().unwrap();
    assert_within_two_seconds("capture stopped", written_at(&server, "grant.json"), ended);
}

#[test]
fn a_flood_of_forged_doorbell_messages_starts_nothing_and_reads_the_store_at_most_once_a_second() {
    let s = Scratch::new("");
    let server = S3Server::start_logged(&s.path("s3"));
    let (_s, server, broker, agent) = slow_poll_on(s, server);
    std::thread::sleep(Duration::from_secs(2));

    let reads = |server: &S3Server| {
        let all = server.requests();
        let grants = all
            .iter()
            .filter(|(op, key)| op == "GetObject" && key.ends_with("/grant.json"))
            .count();
        let lists = all.iter().filter(|(op, _)| op == "ListObjectsV2").count();
        (grants, lists)
    };
    let before = reads(&server);
    // Whatever the body says (a capture request, junk, nothing), 10,000 times, by an account
    // that may publish to the device's topic, and to topics the device does not follow.
    let forged = r#"{"interface":"lo","filter":"","duration":"1h","reason":"unknown_device"}"#;
    let lines: String = (0..10_000)
        .map(|i| match i % 3 {
            0 => format!("{forged}\n"),
            1 => format!("ring {i} \u{1}\u{2}\n"),
            _ => "x\n".to_owned(),
        })
        .collect();
    let start = Instant::now();
    broker.publish_lines(PORTAL_USER, &format!("pcap-agent/v1/{SERIAL}"), &lines);
    broker.publish_lines(PORTAL_USER, "pcap-agent/v1/PA-0002", &lines[..1000]);
    // Let every message arrive and every read it causes finish.
    std::thread::sleep(Duration::from_secs(3));
    let window = start.elapsed().as_secs_f64();
    let after = reads(&server);
    let (grants, lists) = (after.0 - before.0, after.1 - before.1);
    eprintln!("{grants} grant reads and {lists} request listings in {window:.1}s of flood");
    // At least one read: the rings reached the agent. At most one a second (and one more for
    // the read that had just begun).
    let most = window.ceil() as usize + 1;
    assert!(
        grants >= 1 && grants <= most,
        "{grants} grant reads in {window:.1}s"
    );
    assert!(
        lists >= 1 && lists <= most,
        "{lists} listings in {window:.1}s"
    );
    let status = agent.json("/v1/status");
    assert_eq!(status["captures"]["total"], 0, "{status}");
    assert_eq!(status["authorization"]["state"], "unauthorized", "{status}");
    assert!(!object(&server, "results").exists());
    assert_eq!(doorbell(&agent)["state"], "connected");
}

#[test]
fn a_dead_broker_leaves_the_agent_polling_and_saying_so_until_it_is_back() {
    require_root!("live capture on the loopback interface");
    let s = Scratch::new("");
    let server = S3Server::start(&s.path("s3"));
    let mut broker = Broker::start(&s.path("mqtt"), &[SERIAL]);
    configure(&s, &server, &broker, "1s", (SERIAL, PASSWORD), None);
    let agent = s.start_agent();
    wait_doorbell(&agent, "connected", Duration::from_secs(10));
    assert_eq!(
        agent.json("/v1/status")["channel"]["poll_interval_seconds"],
        600
    );

    broker.kill();
    let down = wait_doorbell(&agent, "down", Duration::from_secs(10));
    assert!(
        down["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach the broker"),
        "{down}"
    );
    assert_eq!(
        agent.json("/v1/status")["channel"]["poll_interval_seconds"],
        1
    );
    // The heartbeat in the store says so too.
    let heartbeat = || -> serde_json::Value {
        std::fs::read(object(&server, "status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    };
    assert!(
        wait_until(
            Duration::from_secs(10),
            || heartbeat()["channel"]["doorbell"]["state"] == "down"
        ),
        "{}",
        heartbeat()
    );

    // Grants and requests still arrive, by polling.
    s.portal_s3_ok(
        &server,
        &["authorize", SERIAL, "--period", "1m", "--allow-unseen"],
    );
    agent.wait_auth("authorized");
    request_accepted(&server, s.portal_s3(&server));

    broker.restart();
    wait_doorbell(&agent, "connected", Duration::from_secs(90));
    assert_eq!(
        agent.json("/v1/status")["channel"]["poll_interval_seconds"],
        600
    );
}

#[test]
fn a_wrong_password_is_reported_and_captures_keep_working_through_polling() {
    require_root!("live capture on the loopback interface");
    let s = Scratch::new("");
    let server = S3Server::start(&s.path("s3"));
    let broker = Broker::start(&s.path("mqtt"), &[SERIAL]);
    configure(
        &s,
        &server,
        &broker,
        "1s",
        (SERIAL, "not-the-password"),
        None,
    );
    let agent = s.start_agent();
    let down = wait_doorbell(&agent, "down", Duration::from_secs(10));
    let error = down["error"].as_str().unwrap();
    assert!(
        error.contains("refused the user name or password"),
        "{error}"
    );
    s.portal_s3_ok(
        &server,
        &["authorize", SERIAL, "--period", "1m", "--allow-unseen"],
    );
    agent.wait_auth("authorized");
    request_accepted(&server, s.portal_s3(&server));
}

#[test]
fn an_untrusted_broker_certificate_is_reported_and_the_right_ca_connects() {
    let s = Scratch::new("");
    let server = S3Server::start(&s.path("s3"));
    let broker = Broker::start_tls(&s.path("mqtt"), &[SERIAL]);
    // Another CA, which did not sign the broker's certificate.
    let other = Broker::start_tls(&s.path("other-mqtt"), &[]);
    configure(
        &s,
        &server,
        &broker,
        "1s",
        (SERIAL, PASSWORD),
        Some(&other.ca()),
    );
    let mut agent = s.start_agent();
    let down = wait_doorbell(&agent, "down", Duration::from_secs(10));
    let error = down["error"].as_str().unwrap();
    assert!(
        error.contains("not trusted") && error.contains("CA"),
        "{error}"
    );
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    agent
        .wait_exit(Duration::from_secs(15))
        .expect("agent stopped");

    configure(
        &s,
        &server,
        &broker,
        "1s",
        (SERIAL, PASSWORD),
        Some(&broker.ca()),
    );
    let agent = s.start_agent();
    wait_doorbell(&agent, "connected", Duration::from_secs(10));
    // The portal rings over TLS too.
    let out = run(portal(&s, &server, &broker).args([
        "authorize",
        SERIAL,
        "--period",
        "1m",
        "--allow-unseen",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("rang the doorbell"),
        "{stderr}"
    );
}

#[test]
fn a_request_the_device_will_not_pick_up_is_warned_about_and_wait_says_why() {
    let s = Scratch::new("");
    let server = S3Server::start(&s.path("s3"));
    s.write_remote_config(&server, "", "");
    // An agent without [requests]: it reports, but takes local requests only.
    let text = std::fs::read_to_string(s.config_path()).unwrap();
    let start = text.find("\n[requests]").unwrap();
    let end = text[start + 1..]
        .find("\n[")
        .map_or(text.len(), |e| start + 1 + e);
    std::fs::write(
        s.config_path(),
        format!("{}{}", &text[..start], &text[end..]),
    )
    .unwrap();
    let _agent = s.start_agent();
    assert!(wait_until(Duration::from_secs(10), || object(
        &server,
        "status.json"
    )
    .exists()));

    let out = run(s.portal_s3(&server).args([
        "request",
        SERIAL,
        "--interface",
        "lo",
        "--wait",
        "--timeout",
        "3s",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(
        stderr.matches("does not take remote requests").count(),
        2,
        "warned at once and when giving up: {stderr}"
    );

    let out = run(s
        .portal_s3(&server)
        .args(["request", "PA-0404", "--interface", "lo"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("PA-0404 has never reported"), "{stderr}");
}
