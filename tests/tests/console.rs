//! The web console (`pcap-portal serve`) through curl, a real HTTP client: logging in and out,
//! the devices page from the store, the security headers, and failed logins slowing down.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use pcap_tests::pcapgen;
use pcap_tests::s3::free_port;
use pcap_tests::{ChildGuard, Scratch, run, wait_until};

const PASSWORD: &str = "correct horse battery";

/// A console on a free loopback port over the scratch's store, with the account alice (admin).
struct Console {
    port: u16,
    jar: std::path::PathBuf,
    /// `http`, or `https` with the CA file curl trusts.
    scheme: &'static str,
    cacert: Option<std::path::PathBuf>,
    _child: ChildGuard,
}

impl Console {
    fn start(s: &Scratch) -> Self {
        Self::start_with(s, &[("alice", "admin")])
    }

    /// A console with the accounts `accounts` (name, role), all with [`PASSWORD`].
    fn start_with(s: &Scratch, accounts: &[(&str, &str)]) -> Self {
        Self::start_full(s, accounts, &[], None)
    }

    /// As [`Console::start_with`], with `args` added to `serve`, served over HTTPS with the
    /// certificate and key `tls` (whose certificate is its own CA) if given.
    fn start_full(
        s: &Scratch,
        accounts: &[(&str, &str)],
        args: &[&str],
        tls: Option<(&std::path::Path, &std::path::Path)>,
    ) -> Self {
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
        let mut serve = s.portal();
        serve
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--users"])
            .arg(&users)
            .args(args);
        if let Some((cert, key)) = tls {
            serve.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        let child = serve
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
            scheme: if tls.is_some() { "https" } else { "http" },
            cacert: tls.map(|(cert, _)| cert.to_owned()),
            _child: ChildGuard(Some(child)),
        }
    }

    /// `curl -i` of `path` with the cookie jar, and `args`.
    fn curl(&self, path: &str, args: &[&str]) -> String {
        let out = self.curl_output(path, args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// curl's whole outcome for `path` (with the cookie jar, and `args`).
    fn curl_output(&self, path: &str, args: &[&str]) -> Output {
        let mut curl = Command::new("curl");
        curl.args(["-s", "-i", "-b"])
            .arg(&self.jar)
            .arg("-c")
            .arg(&self.jar);
        if let Some(ca) = &self.cacert {
            curl.arg("--cacert").arg(ca);
        }
        run(curl
            .args(args)
            .arg(format!("{}://127.0.0.1:{}{path}", self.scheme, self.port)))
    }

    fn login(&self, password: &str) -> String {
        self.login_as("alice", password)
    }

    /// Logs in as a browser does: the login form first (its token, and the cookie that goes
    /// with it), then the form posted.
    fn login_as(&self, name: &str, password: &str) -> String {
        let form = self.curl("/login", &[]);
        let token = field_of(&form, "token");
        self.curl(
            "/login",
            &[
                "-d",
                &format!("name={name}"),
                "--data-urlencode",
                &format!("password={password}"),
                "-d",
                &format!("token={token}"),
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
    field_of(page, "csrf")
}

/// The value of the hidden field `name` in `page`.
fn field_of(page: &str, name: &str) -> String {
    page.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no field {name} in the page: {page}"))
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
        ask.contains("Authorize <strong>PA-0001 e2e</strong> for 3 months"),
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

/// A self-signed certificate for 127.0.0.1 and its key, made with openssl.
fn certificate(s: &Scratch) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (s.path("console.crt"), s.path("console.key"));
    let out = run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

#[test]
fn the_console_serves_https_with_a_secure_cookie_and_refuses_a_key_that_is_not_the_certificates() {
    let s = Scratch::new("");
    let (cert, key) = certificate(&s);
    let console = Console::start_full(&s, &[("alice", "admin")], &[], Some((&cert, &key)));
    let login = console.login(PASSWORD);
    assert_eq!(status(&login), 303, "{login}");
    let cookie = login
        .lines()
        .find(|l| l.to_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert_eq!(status(&console.curl("/devices", &[])), 200);
    // Plain HTTP on the HTTPS port gets no page.
    let plain = run(Command::new("curl").args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://127.0.0.1:{}/login", console.port),
    ]));
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");

    // A key of another certificate: refused at the start, saying so.
    let other = Scratch::new("");
    let (_, other_key) = certificate(&other);
    let out = run(s
        .portal()
        .args(["serve", "--listen", "127.0.0.1:0", "--users"])
        .arg(s.path("users.json"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&other_key));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not go with the certificate"), "{err}");
}

/// Writes a capture of `PA-0001` into the scratch's file store as the uploader leaves it: the
/// segment `000001.pcap.age` (the pcap `plain`, encrypted with the age CLI to the research
/// recipient) and a manifest with its size and SHA-256. Returns the capture id.
fn stored_capture(s: &Scratch, plain: &std::path::Path) -> String {
    let id = "01930000-0000-7000-8000-000000000001";
    let dir = s.path(&format!("store/captures/PA-0001/{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let segment = dir.join("000001.pcap.age");
    encrypt(s, plain, &segment);
    let bytes = std::fs::read(&segment).unwrap();
    let sha = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let manifest = serde_json::json!({
        "schema": "1.0", "capture_id": id, "serial": "PA-0001", "agent_version": "0.1.0",
        "origin": "remote", "request": {"interface": "lo", "reason": "other"},
        "interface": "lo", "effective_filter": "udp", "link_type": "EN10MB",
        "limits": {"max_duration": "1m", "snaplen": 65535},
        "started_at": "2026-12-01T00:00:00Z", "ended_at": "2026-12-01T00:01:00Z",
        "state": "stopped", "stop_reason": "duration",
        "stats": {"received": 3, "written": 3, "bytes_written": 300, "dropped_rate_limit": 0,
                  "dropped_kernel": 0, "dropped_interface": 0, "segments": 1},
        "segments": [{"seq": 1, "name": "000001.pcap.age", "packets": 3,
                      "plaintext_bytes": std::fs::metadata(plain).unwrap().len()}],
        "segments_lost": 0,
        "files": [{"name": "000001.pcap.age", "state": "uploaded", "size": bytes.len(),
                   "sha256": pcap_protocol::keys::hex(sha.as_ref())}],
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    id.to_owned()
}

fn encrypt(s: &Scratch, plain: &std::path::Path, out: &std::path::Path) {
    let recipient = std::fs::read_to_string(s.path("keys/research.age.pub")).unwrap();
    let done = run(Command::new("age")
        .args(["-r", recipient.trim(), "-o"])
        .arg(out)
        .arg(plain));
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
}

#[test]
fn a_download_is_decrypted_and_verified_against_the_manifest_and_a_substituted_file_fails() {
    let s = Scratch::new("");
    let plain = s.path("plain.pcap");
    let frames: Vec<Vec<u8>> = (0..3)
        .map(|i| pcapgen::udp4([10, 0, 0, 1], [10, 0, 0, 2], 4000 + i, 53, b"query"))
        .collect();
    std::fs::write(&plain, pcapgen::pcap(1, &frames)).unwrap();
    let id = stored_capture(&s, &plain);
    let identity = s.path("keys/research.age");
    let console = Console::start_full(
        &s,
        &[("rita", "research"), ("victor", "viewer")],
        &["--identity", identity.to_str().unwrap()],
        None,
    );
    assert_eq!(status(&console.login_as("rita", PASSWORD)), 303);
    // A request without the CSRF token is forged, whatever else it holds.
    let forged = console.post(
        "/captures/request",
        &["serial=PA-0001".to_owned(), "interface=lo".to_owned()],
    );
    assert_eq!(status(&forged), 403, "{forged}");
    let list = console.curl("/captures", &[]);
    assert!(list.contains(&id), "{list}");
    let page = console.curl(&format!("/captures/PA-0001/{id}"), &[]);
    assert!(page.contains("000001.pcap"), "{page}");

    let got = s.path("got.pcap");
    let path = format!("/captures/PA-0001/{id}/000001.pcap");
    let out = console.curl_output(
        &path,
        &[
            "--no-include",
            "-o",
            got.to_str().unwrap(),
            "-w",
            "%{http_code}",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&plain).unwrap());

    // A file the manifest does not list, an id that is not one.
    assert_eq!(
        status(&console.curl(&format!("/captures/PA-0001/{id}/000002.pcap"), &[])),
        404
    );
    assert_eq!(
        status(&console.curl("/captures/PA-0001/..%2Fx/000001.pcap", &[])),
        400
    );

    // The segment replaced whole by another file encrypted to the same recipient: age accepts
    // it, the manifest's SHA-256 does not, and the download fails instead of completing.
    // It has the same length as the genuine one, so only the manifest's SHA-256 tells them apart.
    let other = s.path("other.pcap");
    let frames: Vec<Vec<u8>> = (0..3)
        .map(|i| pcapgen::udp4([10, 0, 0, 9], [10, 0, 0, 2], 4000 + i, 53, b"QUERY"))
        .collect();
    std::fs::write(&other, pcapgen::pcap(1, &frames)).unwrap();
    encrypt(
        &s,
        &other,
        &s.path(&format!("store/captures/PA-0001/{id}/000001.pcap.age")),
    );
    std::fs::remove_file(&got).unwrap();
    let out = console.curl_output(&path, &["--no-include", "-o", got.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "curl completed a download that does not match the manifest"
    );
    let received = std::fs::metadata(&got).map_or(0, |m| m.len());
    assert!(received < std::fs::metadata(&other).unwrap().len());

    // A viewer gets no captures.
    assert_eq!(status(&console.login_as("victor", PASSWORD)), 303);
    assert_eq!(status(&console.curl("/captures", &[])), 403);
    assert_eq!(status(&console.curl(&path, &[])), 403);
}
