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
        let users = s.path("users.json");
        let mut add = s
            .portal()
            .args([
                "users",
                "add",
                "alice",
                "--role",
                "admin",
                "--password-stdin",
                "--users",
            ])
            .arg(&users)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(add.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        assert!(add.wait().unwrap().success());
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
        self.curl(
            "/login",
            &[
                "-d",
                "name=alice",
                "--data-urlencode",
                &format!("password={password}"),
            ],
        )
    }
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
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the CSRF token in the page");
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
