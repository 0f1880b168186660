//! The web console in a real browser (headless Chromium through WebDriver) against a real
//! `pcap-portal serve`, a real agent and the S3 test server: the administrator authorizes,
//! reauthorizes and unauthorizes and the agent follows; a viewer sees no button and cannot
//! forge one; the research team requests a capture and downloads it, and tshark reads it.
//! Each test saves screenshots of its pages under `target/screenshots/`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pcap_tests::browser::Browser;
use pcap_tests::net::send_udp;
use pcap_tests::s3::{S3Server, free_port};
use pcap_tests::{Agent, ChildGuard, Scratch, require_root, run, tshark_fields, wait_until};

const PASSWORD: &str = "correct horse battery";

/// A console on the scratch's S3 store with every key, and the accounts alice (admin),
/// victor (viewer) and rita (research).
struct Console {
    base: String,
    _child: ChildGuard,
}

impl Console {
    fn start(s: &Scratch, server: &S3Server) -> Self {
        let users = s.path("users.json");
        for (name, role) in [
            ("alice", "admin"),
            ("victor", "viewer"),
            ("rita", "research"),
        ] {
            let mut add = Command::new(pcap_tests::bin("pcap-portal"))
                .args(["users", "add", name, "--role", role, "--password-stdin"])
                .arg("--users")
                .arg(&users)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            writeln!(add.stdin.take().unwrap(), "{PASSWORD}").unwrap();
            assert!(add.wait().unwrap().success());
        }
        let port = free_port();
        let child = s
            .portal_s3(server)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--users"])
            .arg(&users)
            .args(["--refresh", "2s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }));
        Console {
            base: format!("http://127.0.0.1:{port}"),
            _child: ChildGuard(Some(child)),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Logs `name` in through the login form.
    fn log_in(&self, b: &Browser, name: &str, password: &str) {
        b.goto(&self.url("/login"));
        b.fill("input[name=name]", name);
        b.fill("input[name=password]", password);
        b.follow("button[type=submit]");
    }

    /// POSTs `fields` to `path` with the session cookie `cookie` (a form the page did not
    /// offer); returns the status.
    fn forge(&self, cookie: &str, path: &str, fields: &[&str]) -> u16 {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-b"])
            .arg(format!("pcap_session={cookie}"));
        for f in fields {
            cmd.args(["--data-urlencode", f]);
        }
        let out = run(cmd.arg(self.url(path)));
        String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
    }
}

/// An agent whose only channel is the S3 store (grant and requests polled every second).
fn remote_agent() -> (Scratch, S3Server, Agent) {
    let s = Scratch::new("");
    let server = S3Server::start(&s.path("s3"));
    s.write_remote_config(&server, "", "");
    let agent = s.start_agent();
    assert!(wait_until(Duration::from_secs(20), || server
        .object("pa/devices/PA-0001/status.json")
        .exists()));
    (s, server, agent)
}

/// The grant state of `serial` in the store, as `devices list` reads it.
fn state(s: &Scratch, server: &S3Server, serial: &str) -> String {
    let out = s.portal_s3_ok(server, &["devices", "list", "--json", "--no-cache"]);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["serial"] == serial)
        .map_or("none".to_owned(), |r| {
            r["state"].as_str().unwrap().to_owned()
        })
}

/// The text of the devices table's row of `serial`.
fn row(b: &Browser, serial: &str) -> String {
    b.text_of(&format!("#devices tr:has(a[href='/devices/{serial}'])"))
}

#[test]
fn an_administrator_authorizes_reauthorizes_and_unauthorizes_in_the_browser_and_the_agent_follows()
{
    let (s, server, agent) = remote_agent();
    s.portal_s3_ok(
        &server,
        &["authorize", "PA-0002", "--period", "1m", "--allow-unseen"],
    );
    let console = Console::start(&s, &server);
    let b = Browser::start();

    // Not logged in: every page leads to the login.
    b.goto(&console.url("/devices"));
    assert!(b.url().ends_with("/login"), "{}", b.url());
    console.log_in(&b, "alice", PASSWORD);
    assert!(b.url().ends_with("/devices"), "{}", b.url());
    assert!(row(&b, "PA-0001").contains("unauthorized"));

    // Add "SERIAL NAME" for 3 months: a confirmation first, then the grant.
    b.fill("#add input[name=device]", "PA-0001 e2e");
    b.select("#add select[name=period]", "3m");
    b.follow("#add button");
    assert!(
        b.text()
            .contains("Authorize PA-0001 e2e for 3 months from now?"),
        "{}",
        b.text()
    );
    b.screenshot("console-authorize-dialog");
    assert_eq!(state(&s, &server, "PA-0001"), "unauthorized");
    b.follow("#confirm");
    assert!(
        b.text().contains("Authorized PA-0001 for 3m."),
        "{}",
        b.text()
    );
    assert_eq!(state(&s, &server, "PA-0001"), "authorized");
    let auth = agent.wait_auth("authorized");
    assert_eq!(auth["grant"]["period"], "3m", "{auth}");

    b.goto(&console.url("/devices"));
    let authorized = row(&b, "PA-0001");
    assert!(
        authorized.contains("authorized") && authorized.contains("3m"),
        "{authorized}"
    );
    b.screenshot("console-devices");

    // Reauthorize from the row: a new period from now, a new expiry on the page.
    b.follow("#devices tr:has(a[href='/devices/PA-0001']) a[href^='/devices/reauthorize']");
    b.select("select[name=period]", "1m");
    b.follow("#confirm");
    assert!(
        b.text().contains("Reauthorized PA-0001 until"),
        "{}",
        b.text()
    );
    b.goto(&console.url("/devices"));
    let reauthorized = row(&b, "PA-0001");
    assert!(reauthorized.contains("1m"), "{reauthorized}");
    assert_ne!(
        b.text_of("#devices tr:has(a[href='/devices/PA-0001']) td.expires"),
        "",
    );
    assert_ne!(reauthorized, authorized);

    // Select two devices and unauthorize them: the confirmation names both.
    b.click("input[type=checkbox][value='PA-0001']");
    b.click("input[type=checkbox][value='PA-0002']");
    b.follow("#unauthorize");
    assert!(b.text().contains("PA-0001, PA-0002"), "{}", b.text());
    b.follow("#confirm");
    let text = b.text();
    assert!(
        text.contains("Unauthorized PA-0001") && text.contains("Unauthorized PA-0002"),
        "{text}"
    );
    assert_eq!(state(&s, &server, "PA-0001"), "revoked");
    assert_eq!(state(&s, &server, "PA-0002"), "revoked");
    agent.wait_auth("revoked");

    // The device's page: its heartbeat and its history, by the account.
    b.goto(&console.url("/devices/PA-0001"));
    let heartbeat = b.text_of("#heartbeat");
    assert!(heartbeat.contains(env!("CARGO_PKG_VERSION")), "{heartbeat}");
    let history = b.text_of("table.audit");
    for action in ["authorize", "reauthorize", "unauthorize"] {
        assert!(history.contains(&format!("alice {action}")), "{history}");
    }
    b.screenshot("console-device");

    // The audit page, newest first.
    b.goto(&console.url("/audit"));
    let rows = b.text_of("table.audit tbody");
    let first = rows.lines().next().unwrap_or_default().to_owned();
    assert!(first.contains("unauthorize"), "{rows}");
    b.screenshot("console-audit");

    // Logged out: back to the login.
    b.goto(&console.url("/devices"));
    b.follow("form[action='/logout'] button");
    assert!(b.url().ends_with("/login"), "{}", b.url());
    b.goto(&console.url("/devices"));
    assert!(b.url().ends_with("/login"), "{}", b.url());
}

#[test]
fn a_viewer_sees_no_buttons_forged_and_tokenless_posts_are_refused_and_wrong_passwords_slow_down() {
    let (s, server, _agent) = remote_agent();
    s.portal_s3_ok(
        &server,
        &["authorize", "PA-0002", "--period", "1m", "--allow-unseen"],
    );
    let console = Console::start(&s, &server);
    let b = Browser::start();

    console.log_in(&b, "victor", PASSWORD);
    assert!(b.url().ends_with("/devices"), "{}", b.url());
    assert!(b.text().contains("PA-0002"));
    assert!(!b.has("#add") && !b.has("#unauthorize") && !b.has("input[type=checkbox]"));
    assert!(!b.has("a[href^='/devices/reauthorize']"));
    b.screenshot("console-viewer");

    // The viewer's own session and token, on a form the page did not offer: 403, audited.
    let cookie = b.cookie("pcap_session").expect("the session cookie");
    let csrf = b
        .source()
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the CSRF token")
        .to_owned();
    let forged = console.forge(
        &cookie,
        "/devices/unauthorize",
        &[&format!("csrf={csrf}"), "serial=PA-0002", "confirm=yes"],
    );
    assert_eq!(forged, 403);
    assert_eq!(state(&s, &server, "PA-0002"), "authorized");
    let audit = s.portal_s3_ok(&server, &["audit"]);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("victor") && l.contains("forbidden")),
        "{audit}"
    );
    // Captures are the research team's.
    b.goto(&console.url("/captures"));
    assert!(b.text().contains("no research role"), "{}", b.text());

    // An administrator's POST without the CSRF token: 403.
    let admin = Browser::start();
    console.log_in(&admin, "alice", PASSWORD);
    let admin_cookie = admin.cookie("pcap_session").expect("the session cookie");
    let tokenless = console.forge(
        &admin_cookie,
        "/devices/unauthorize",
        &["serial=PA-0002", "confirm=yes"],
    );
    assert_eq!(tokenless, 403);
    assert_eq!(state(&s, &server, "PA-0002"), "authorized");

    // Wrong passwords: from the fourth on, logins are slowed down. The wait doubles with each
    // failure, so however slow the browser is, an attempt soon falls inside it.
    let b = Browser::start();
    let mut attempts = 0;
    while !b.text().contains("Too many failed logins") {
        attempts += 1;
        assert!(
            attempts <= 10,
            "{attempts} wrong passwords, never slowed down"
        );
        console.log_in(&b, "alice", "not the password");
    }
    assert!(attempts >= 4, "slowed down after {attempts} attempts");
    assert!(b.text().contains("try again in"), "{}", b.text());
    b.screenshot("console-slowed-down");
    // None of them logged in. (That the right password waits too is in tests/console.rs,
    // where curl is fast enough to land inside the first wait.)
    let cookie = b.cookie("pcap_session");
    assert_eq!(cookie, None);
}

#[test]
fn the_research_team_requests_a_capture_in_the_browser_downloads_it_and_tshark_reads_it() {
    require_root!("live capture on the loopback interface");
    let (s, server, agent) = remote_agent();
    s.portal_s3_ok(&server, &["authorize", "PA-0001 e2e", "--period", "1m"]);
    agent.wait_auth("authorized");
    let console = Console::start(&s, &server);
    let b = Browser::start();
    console.log_in(&b, "rita", PASSWORD);

    // The request form, with the reasons listed.
    b.goto(&console.url("/captures/request?serial=PA-0001"));
    let reasons = b.text_of("select[name=reason]");
    assert!(
        reasons.contains("unknown device") && reasons.contains("unknown application"),
        "{reasons}"
    );
    b.fill("input[name=interface]", "lo");
    b.fill("input[name=filter]", "udp and dst port 7321");
    b.select("select[name=reason]", "unknown_device");
    b.fill("input[name=subject]", "browser e2e");
    b.fill("input[name=duration]", "30s");
    b.fill("input[name=packets]", "20");
    b.screenshot("console-request");
    b.follow("#request button");
    assert!(
        b.url().contains("/captures/request/PA-0001/"),
        "{}",
        b.url()
    );

    // Follow the result page until the capture has stopped, sending the traffic it waits for.
    let end = Instant::now() + Duration::from_secs(60);
    while !b.text_of("#state").starts_with("stopped") {
        assert!(Instant::now() < end, "no result: {}", b.text());
        send_udp("127.0.0.1", 7321, 5, 200, 0);
        std::thread::sleep(Duration::from_millis(300));
        b.goto(&b.url());
    }
    b.follow("#capture");
    let capture_id = b.url().rsplit('/').next().unwrap().to_owned();
    // The upload may still be under way when the capture has stopped.
    let end = Instant::now() + Duration::from_secs(60);
    while !b.has("#files") {
        assert!(Instant::now() < end, "capture incomplete: {}", b.text());
        std::thread::sleep(Duration::from_millis(300));
        b.goto(&b.url());
    }
    b.screenshot("console-capture");

    // Download the pcap and the sessions, decrypted by the console.
    b.click("#files a[href$='/000001.pcap']");
    let pcap = b.download(
        &format!("{capture_id}-000001.pcap"),
        Duration::from_secs(30),
    );
    let packets = tshark_fields(&pcap, &["udp.dstport"]);
    assert_eq!(packets.len(), 20, "{packets:?}");
    assert!(packets.iter().all(|p| p[0] == "7321"));
    b.click("#files a[href$='/sessions.json']");
    let sessions = b.download(
        &format!("{capture_id}-sessions.json"),
        Duration::from_secs(30),
    );
    let text = std::fs::read_to_string(&sessions).unwrap();
    assert!(text.contains("7321"), "{text}");

    // Byte for byte what `pcap-portal captures fetch` gives.
    let out = s.path("fetched");
    s.portal_s3_ok(
        &server,
        &[
            "captures",
            "fetch",
            &capture_id,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read(&pcap).unwrap(),
        std::fs::read(out.join("000001.pcap")).unwrap()
    );

    // The captures list shows it, with its device; the device's page says who asked and why.
    b.goto(&console.url("/captures?serial=PA-0001"));
    assert!(b.text_of("#captures").contains("unknown_device"));
    b.screenshot("console-captures");
    b.goto(&console.url("/devices/PA-0001"));
    let record = b.text_of("#captures");
    assert!(
        record.contains("rita") && record.contains("browser e2e") && record.contains("7321"),
        "{record}"
    );
}
