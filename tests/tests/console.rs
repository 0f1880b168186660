//! The web console (`pcap-portal serve`) through curl, a real HTTP client: logging in and out,
//! the devices page from the store, the security headers, and failed logins slowing down.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use pcap_tests::s3::free_port;
use pcap_tests::{ChildGuard, Scratch, run, wait_until};

const PASSWORD: &str = "correct horse battery";

/// A console on a free loopback port over the scratch's store, with the account alice (admin).
struct Console {
    port: u16,
    jar: std::path::PathBuf,
    _child: ChildGuard,
}

impl Console {
    fn start(s: &Scratch) -> Self {
        Self::start_with(s, &[("alice", "admin")])
    }

    /// A console with the accounts `accounts` (name, role), all with [`PASSWORD`].
    fn start_with(s: &Scratch, accounts: &[(&str, &str)]) -> Self {
        let users = s.path("users.json");
        for (name, role) in accounts {
            let mut add = s
                .portal()
                .args([
                    "users",
                    "add",
                    name,
                    "--role",
                    role,
                    "--password-stdin",
                    "--users",
                ])
                .arg(&users)
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            writeln!(add.stdin.take().unwrap(), "{PASSWORD}").unwrap();
            assert!(add.wait().unwrap().success());
        }
        let port = free_port();
        let child = s
            .portal()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--users"])
            .arg(&users)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }));
        Console {
            port,
            jar: s.path("cookies.txt"),
            _child: ChildGuard(Some(child)),
        }
    }

    /// `curl -i` of `path` with the cookie jar, and `args`.
    fn curl(&self, path: &str, args: &[&str]) -> String {
        let out: Output = run(Command::new("curl")
            .args(["-s", "-i", "-b"])
            .arg(&self.jar)
            .arg("-c")
            .arg(&self.jar)
            .args(args)
            .arg(format!("http://127.0.0.1:{}{path}", self.port)));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn login(&self, password: &str) -> String {
        self.login_as("alice", password)
    }

    fn login_as(&self, name: &str, password: &str) -> String {
        self.curl(
            "/login",
            &[
                "-d",
                &format!("name={name}"),
                "--data-urlencode",
                &format!("password={password}"),
            ],
        )
    }

    /// The CSRF token of the logged-in session, from the devices page.
    fn csrf(&self) -> String {
        let page = self.curl("/devices", &[]);
        csrf_of(&page)
    }

    /// POSTs the form `fields` (`name=value` each) to `path`.
    fn post(&self, path: &str, fields: &[String]) -> String {
        let args: Vec<String> = fields
            .iter()
            .flat_map(|f| ["--data-urlencode".to_owned(), f.clone()])
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.curl(path, &args)
    }
}

fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the CSRF token in the page")
        .to_owned()
}

fn status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn log_in_see_the_devices_from_the_store_and_log_out() {
    let s = Scratch::new("");
    s.portal_ok(&[
        "authorize",
        "PA-0001 lab-fw",
        "--period",
        "3m",
        "--allow-unseen",
    ]);
    let console = Console::start(&s);

    let anonymous = console.curl("/devices", &[]);
    assert_eq!(status(&anonymous), 303, "{anonymous}");
    assert!(anonymous.to_lowercase().contains("location: /login"));

    let wrong = console.login("not the password");
    assert_eq!(status(&wrong), 401, "{wrong}");
    assert!(wrong.contains("Wrong user name or password."));
    assert!(
        !wrong.contains("not the password"),
        "the password is echoed"
    );

    let good = console.login(PASSWORD);
    assert_eq!(status(&good), 303, "{good}");
    let cookie = good
        .lines()
        .find(|l| l.to_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );

    let page = console.curl("/devices", &[]);
    assert_eq!(status(&page), 200, "{page}");
    assert!(
        page.contains("PA-0001") && page.contains("lab-fw"),
        "{page}"
    );
    assert!(page.contains("authorized") && page.contains("3m"), "{page}");
    let lower = page.to_lowercase();
    for header in [
        "content-security-policy: default-src 'none'",
        "x-frame-options: deny",
        "referrer-policy: no-referrer",
        "x-content-type-options: nosniff",
    ] {
        assert!(lower.contains(header), "missing {header}: {page}");
    }
    let filtered = console.curl("/devices?q=nothing-like-it", &[]);
    assert!(filtered.contains("0 device(s)") && !filtered.contains("lab-fw"));

    // Logging out needs the form's CSRF token.
    let forged = console.curl("/logout", &["-d", "csrf=forged"]);
    assert_eq!(status(&forged), 403, "{forged}");
    let csrf = csrf_of(&page);
    let out = console.curl("/logout", &["-d", &format!("csrf={csrf}")]);
    assert_eq!(status(&out), 303, "{out}");
    assert_eq!(status(&console.curl("/devices", &[])), 303);
}

#[test]
fn failed_logins_slow_down_per_account() {
    let s = Scratch::new("");
    let console = Console::start(&s);
    for _ in 0..3 {
        assert_eq!(status(&console.login("wrong guess one")), 401);
    }
    let slowed = console.login(PASSWORD);
    assert_eq!(status(&slowed), 429, "{slowed}");
    assert!(slowed.to_lowercase().contains("retry-after:"), "{slowed}");
    assert!(slowed.contains("Too many failed logins"));
}

#[test]
fn the_console_refuses_to_take_passwords_over_the_network_in_clear() {
    let s = Scratch::new("");
    let users = s.path("users.json");
    let out = run(s
        .portal()
        .args(["serve", "--listen", "0.0.0.0:18080", "--users"])
        .arg(&users));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));
    let out = run(s
        .portal()
        .args(["serve", "--listen", "127.0.0.1:0", "--users"])
        .arg(&users));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no account"));
}

/// The grant document's state for `serial`, as `devices list` reads it.
fn state(s: &Scratch, serial: &str) -> String {
    let out = s.portal_ok(&["devices", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["serial"] == serial)
        .map_or("none".to_owned(), |r| {
            r["state"].as_str().unwrap().to_owned()
        })
}

#[test]
fn an_administrator_adds_reauthorizes_and_unauthorizes_with_confirmations_and_the_agent_follows() {
    let s = Scratch::new("");
    let agent = s.start_agent();
    assert!(wait_until(Duration::from_secs(10), || s
        .path("store/devices/PA-0001/status.json")
        .exists()));
    s.portal_ok(&["authorize", "PA-0002", "--period", "1m", "--allow-unseen"]);
    let console = Console::start(&s);
    assert_eq!(status(&console.login(PASSWORD)), 303);
    let page = console.curl("/devices", &[]);
    assert!(page.contains("Add a device") && page.contains("Unauthorize selected"));
    let csrf = csrf_of(&page);
    let fields = |extra: &[&str]| -> Vec<String> {
        let mut f = vec![format!("csrf={csrf}")];
        f.extend(extra.iter().map(|e| (*e).to_owned()));
        f
    };

    // Add: a confirmation first, naming the device; nothing is written until confirmed.
    let ask = console.post(
        "/devices/add",
        &fields(&["device=PA-0001 e2e", "period=3m"]),
    );
    assert_eq!(status(&ask), 200, "{ask}");
    assert!(
        ask.contains("Authorize <strong>PA-0001 e2e</strong> for 3m"),
        "{ask}"
    );
    assert_eq!(state(&s, "PA-0001"), "unauthorized");
    let added = console.post(
        "/devices/add",
        &fields(&["device=PA-0001 e2e", "period=3m", "confirm=yes"]),
    );
    assert!(added.contains("Authorized PA-0001 for 3m."), "{added}");
    assert_eq!(state(&s, "PA-0001"), "authorized");
    agent.wait_auth("authorized");

    // The CLI's checks, with its messages: a device that never reported, a wrong name.
    let unseen = console.post(
        "/devices/add",
        &fields(&["device=PA-0404", "period=1m", "confirm=yes"]),
    );
    assert_eq!(status(&unseen), 400);
    assert!(unseen.contains("has never reported"), "{unseen}");
    let misnamed = console.post(
        "/devices/add",
        &fields(&["device=PA-0001 other-name", "period=1m", "confirm=yes"]),
    );
    assert!(misnamed.contains("reports the name"), "{misnamed}");

    let form = console.curl("/devices/reauthorize?serial=PA-0001", &[]);
    assert_eq!(status(&form), 200);
    let re = console.post(
        "/devices/reauthorize",
        &fields(&["serial=PA-0001", "period=1m", "confirm=yes"]),
    );
    assert!(re.contains("Reauthorized PA-0001 until"), "{re}");

    // Unauthorize two selected devices: the confirmation names both.
    let ask = console.post(
        "/devices/unauthorize",
        &fields(&["serial=PA-0001", "serial=PA-0002"]),
    );
    assert!(ask.contains("PA-0001, PA-0002"), "{ask}");
    let out = console.post(
        "/devices/unauthorize",
        &fields(&["serial=PA-0001", "serial=PA-0002", "confirm=yes"]),
    );
    assert!(
        out.contains("Unauthorized PA-0001") && out.contains("Unauthorized PA-0002"),
        "{out}"
    );
    assert_eq!(state(&s, "PA-0001"), "revoked");
    assert_eq!(state(&s, "PA-0002"), "revoked");
    agent.wait_auth("revoked");

    // Every change is in the audit trail, by the account.
    let audit = s.portal_ok(&["audit", "--json"]);
    let entries: serde_json::Value = serde_json::from_str(&audit).unwrap();
    let by_alice = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "alice")
        .count();
    assert_eq!(by_alice, 4, "{audit}");

    // Without the CSRF token, nothing.
    let forged = console.post(
        "/devices/add",
        &[
            "device=PA-0001".to_owned(),
            "period=1m".to_owned(),
            "confirm=yes".to_owned(),
        ],
    );
    assert_eq!(status(&forged), 403, "{forged}");
}

#[test]
fn a_viewer_sees_the_devices_without_the_actions_and_a_forged_post_is_refused_and_audited() {
    let s = Scratch::new("");
    s.portal_ok(&["authorize", "PA-0002", "--period", "1m", "--allow-unseen"]);
    let console = Console::start_with(&s, &[("victor", "viewer")]);
    assert_eq!(status(&console.login_as("victor", PASSWORD)), 303);
    let page = console.curl("/devices", &[]);
    assert!(page.contains("PA-0002"), "{page}");
    assert!(!page.contains("Add a device") && !page.contains("Unauthorize selected"));
    let csrf = console.csrf();
    let forged = console.post(
        "/devices/unauthorize",
        &[
            format!("csrf={csrf}"),
            "serial=PA-0002".to_owned(),
            "confirm=yes".to_owned(),
        ],
    );
    assert_eq!(status(&forged), 403, "{forged}");
    assert_eq!(state(&s, "PA-0002"), "authorized");
    let audit = s.portal_ok(&["audit"]);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("victor") && l.contains("forbidden")),
        "{audit}"
    );
}
