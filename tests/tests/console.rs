//! The web console (`pcap-portal serve`) through curl, a real HTTP client: logging in and out,
//! the devices page from the store, the security headers, and failed logins slowing down; and
//! the console under attack: parallel and flooding logins, slow connections (plain and TLS),
//! forged grants, accounts changed while it runs, junk documents in the store.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use pcap_tests::pcapgen;
use pcap_tests::s3::free_port;
use pcap_tests::{ChildGuard, Scratch, run, wait_until};

const PASSWORD: &str = "correct horse battery";
/// The id of the captures the tests write into the store.
const CAPTURE_ID: &str = "01930000-0000-7000-8000-000000000001";

/// A console on a free loopback port over the scratch's store, with the account alice (admin).
struct Console {
    port: u16,
    jar: std::path::PathBuf,
    /// `http`, or `https` with the CA file curl trusts.
    scheme: &'static str,
    cacert: Option<std::path::PathBuf>,
    child: ChildGuard,
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
        Self::start_configured(s, accounts, args, tls, |_| {})
    }

    /// As [`Console::start_full`], with `configure` applied to the `serve` command last.
    fn start_configured(
        s: &Scratch,
        accounts: &[(&str, &str)],
        args: &[&str],
        tls: Option<(&std::path::Path, &std::path::Path)>,
        configure: impl FnOnce(&mut Command),
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
        configure(&mut serve);
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
            child: ChildGuard(Some(child)),
        }
    }

    /// `curl -i` of `path` with the cookie jar, and `args`.
    fn curl(&self, path: &str, args: &[&str]) -> String {
        let out = self.curl_output(path, args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The console's resident memory now and at its peak, in KiB (VmRSS, VmHWM).
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the console runs");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
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
    let page = console.curl("/devices", &[]);
    assert_eq!(status(&page), 200);
    assert!(
        page.to_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{page}"
    );
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

#[test]
fn a_download_is_decrypted_and_verified_against_the_manifest_and_a_substituted_file_fails() {
    let s = Scratch::new("");
    let plain = s.path("plain.pcap");
    let frames: Vec<Vec<u8>> = (0..3)
        .map(|i| pcapgen::udp4([10, 0, 0, 1], [10, 0, 0, 2], 4000 + i, 53, b"query"))
        .collect();
    std::fs::write(&plain, pcapgen::pcap(1, &frames)).unwrap();
    let id = s.store_capture("PA-0001", CAPTURE_ID, &plain);
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
    s.encrypt(
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

// The console under attack: each test below is a finding of the hostile review, as a hostile
// user or a compromised device would try it.

/// A runtime for the tests that open many connections at once.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `127.0.0.n`: loopback answers every address of 127/8, so each is a client of its own.
fn loopback(n: u8) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(127, 0, 0, n)
}

/// A TCP connection to the console from `source`.
async fn connect_from(source: std::net::Ipv4Addr, port: u16) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((source, 0).into()).unwrap();
    socket
        .connect((std::net::Ipv4Addr::LOCALHOST, port).into())
        .await
        .unwrap()
}

/// POSTs the form `body` to `/login` from `source` with the login form's `token` (and its
/// cookie); the answer's status.
async fn post_login(source: std::net::Ipv4Addr, port: u16, body: String, token: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = connect_from(source, port).await;
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: pcap_login={token}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    status(&String::from_utf8_lossy(&answer))
}

/// The login form's token, from a fresh login page.
fn login_token(console: &Console) -> String {
    field_of(&console.curl("/login", &[]), "token")
}

#[test]
fn parallel_wrong_passwords_get_only_the_free_attempts_and_never_lock_the_owner_out_elsewhere() {
    let s = Scratch::new("");
    let console = Console::start(&s);
    let token = login_token(&console);
    let body = |password: &str| format!("name=alice&password={password}&token={token}");
    let statuses: Vec<u16> = runtime().block_on(async {
        let attempts = (0..40)
            .map(|_| post_login(loopback(66), console.port, body("wrong+guess+one"), &token));
        futures::future::join_all(attempts).await
    });
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    eprintln!("40 parallel wrong passwords: {checked} checked, {throttled} throttled");
    assert!(checked <= 3, "{checked} of 40 were hashed: {statuses:?}");
    assert_eq!(checked + throttled, 40, "{statuses:?}");

    // The right password from the attacker's address waits; from the owner's, it logs in.
    let rt = runtime();
    let from_attacker = rt.block_on(post_login(
        loopback(66),
        console.port,
        body("correct+horse+battery"),
        &token,
    ));
    assert_eq!(from_attacker, 429);
    let from_owner = rt.block_on(post_login(
        loopback(1),
        console.port,
        body("correct+horse+battery"),
        &token,
    ));
    assert_eq!(from_owner, 303);
}

#[test]
fn a_flood_of_logins_from_150_addresses_keeps_the_console_under_400_mib_and_a_real_login_works() {
    let s = Scratch::new("");
    let console = Console::start(&s);
    let token = login_token(&console);
    let (before, _) = console.memory();
    let statuses: Vec<u16> = runtime().block_on(async {
        let attempts = (0..150u8).map(|i| {
            let body = format!("name=user{i}&password=a+guess+of+its+own&token={token}");
            post_login(loopback(10 + i), console.port, body, &token)
        });
        futures::future::join_all(attempts).await
    });
    let (after, peak) = console.memory();
    let answered = |code| statuses.iter().filter(|s| **s == code).count();
    eprintln!(
        "150 concurrent logins: {} wrong, {} busy; RSS {before} KiB before, {after} KiB after, peak {peak} KiB",
        answered(401),
        answered(503)
    );
    assert_eq!(answered(401) + answered(503), 150, "{statuses:?}");
    assert!(peak < 400 * 1024, "peak RSS {peak} KiB");
    assert_eq!(status(&console.login(PASSWORD)), 303);
}

/// Opens `n` connections (from `sources` in turn) that send part of a request's headers and
/// never the rest; returns them.
async fn slow_clients(n: usize, sources: &[u8], port: u16) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut open = Vec::new();
    for i in 0..n {
        let mut tcp = connect_from(loopback(sources[i % sources.len()]), port).await;
        // Past the cap for its address the console closes it at once: the write may fail.
        let _ = tcp
            .write_all(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await;
        open.push(tcp);
    }
    open
}

/// Waits until the console has closed every one of `streams`; how long that took.
async fn closed<S: tokio::io::AsyncRead + Unpin>(streams: Vec<S>) -> Duration {
    use tokio::io::AsyncReadExt;
    let start = std::time::Instant::now();
    let waits = streams.into_iter().map(|mut s| async move {
        let mut buf = [0u8; 256];
        // The console answers 408 or nothing, then closes: read to the end.
        let limit = Duration::from_secs(40);
        tokio::time::timeout(limit, async {
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await
        .expect("a slow connection still open after 40 s");
    });
    futures::future::join_all(waits).await;
    start.elapsed()
}

#[test]
fn a_hundred_slow_connections_are_closed_by_the_header_timeout_while_a_real_login_succeeds() {
    let s = Scratch::new("");
    let console = Console::start(&s);
    let rt = runtime();
    let slow = rt.block_on(slow_clients(100, &[2, 3], console.port));
    let login = console.login(PASSWORD);
    assert_eq!(status(&login), 303, "{login}");
    let took = rt.block_on(closed(slow));
    eprintln!("100 slow plain connections closed {took:?} after the login");
    // From one address, past the cap, a connection is closed at once.
    let many = rt.block_on(slow_clients(70, &[4], console.port));
    let quickly = rt.block_on(async {
        let (first, rest): (Vec<_>, Vec<_>) =
            many.into_iter().enumerate().partition(|(i, _)| *i < 64);
        let took = closed(rest.into_iter().map(|(_, s)| s).collect()).await;
        drop(first);
        took
    });
    assert!(quickly < Duration::from_secs(5), "{quickly:?}");
}

#[test]
fn a_hundred_slow_tls_connections_are_closed_by_the_header_timeout_while_a_real_login_succeeds() {
    use tokio::io::AsyncWriteExt;
    let s = Scratch::new("");
    let (cert, key) = certificate(&s);
    let console = Console::start_full(&s, &[("alice", "admin")], &[], Some((&cert, &key)));
    // The slow clients are the attackers: they take any certificate.
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let rt = runtime();
    let slow = rt.block_on(async {
        let mut open = Vec::new();
        for i in 0..100u8 {
            let tcp = connect_from(loopback(2 + i % 2), console.port).await;
            let name =
                rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
            let mut tls = connector.connect(name, tcp).await.expect("the handshake");
            tls.write_all(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .await
                .unwrap();
            tls.flush().await.unwrap();
            open.push(tls);
        }
        open
    });
    let login = console.login(PASSWORD);
    assert_eq!(status(&login), 303, "{login}");
    let took = rt.block_on(closed(slow));
    eprintln!("100 slow TLS connections closed {took:?} after the login");
}

/// The state cell of `serial`'s row on a devices page.
fn state_cell(page: &str, serial: &str) -> String {
    let row = page
        .split("<tr>")
        .find(|r| r.contains(&format!(">{serial}</a>")))
        .unwrap_or_else(|| panic!("no row for {serial}: {page}"));
    row.split("<td class=\"state\">")
        .nth(1)
        .and_then(|r| r.split("</td>").next())
        .unwrap_or_else(|| panic!("no state cell: {row}"))
        .to_owned()
}

#[test]
fn a_forged_grant_is_never_shown_as_authorized_whatever_keys_the_console_has() {
    let s = Scratch::new("");
    s.forge_grant("PA-0001", "forged-name", 7);
    // Given the authorization key with --key (not the environment): the forgery is invalid.
    let key = s.path("keys/authorization.key");
    let admin = Console::start_configured(&s, &[("alice", "admin")], &[], None, |c| {
        c.env_remove("PCAP_AUTHORIZATION_KEY")
            .arg("--key")
            .arg(&key);
    });
    assert_eq!(status(&admin.login(PASSWORD)), 303);
    let cell = state_cell(&admin.curl("/devices", &[]), "PA-0001");
    assert!(cell.starts_with("invalid"), "{cell}");
    let device = admin.curl("/devices/PA-0001", &[]);
    assert!(!device.contains("State <strong>authorized"), "{device}");
    drop(admin);

    // A research console holds no authorization key: every grant is a claim, labelled so.
    let mut research = Console::start_configured(&s, &[("rita", "research")], &[], None, |c| {
        c.env_remove("PCAP_AUTHORIZATION_KEY");
    });
    research.jar = s.path("rita-cookies.txt");
    assert_eq!(status(&research.login_as("rita", PASSWORD)), 303);
    let cell = state_cell(&research.curl("/devices", &[]), "PA-0001");
    assert!(cell.starts_with("unverified"), "{cell}");

    // The CLI without a key says the same.
    let out = run(s
        .portal()
        .env_remove("PCAP_AUTHORIZATION_KEY")
        .args(["devices", "list", "--json"]));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["state"], "unverified", "{rows}");
    assert_eq!(rows[0]["claimed"], "authorized", "{rows}");
}

/// Runs `pcap-portal users ARGS --users FILE` with `password` on stdin.
fn users(s: &Scratch, args: &[&str], password: Option<&str>) -> String {
    let mut cmd = s.portal();
    cmd.arg("users")
        .args(args)
        .arg("--users")
        .arg(s.path("users.json"));
    if password.is_some() {
        cmd.arg("--password-stdin");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(p) = password {
        writeln!(child.stdin.take().unwrap(), "{p}").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "users {args:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn removing_an_account_or_changing_its_password_takes_effect_at_once_without_a_restart() {
    let s = Scratch::new("");
    let mut console = Console::start_with(&s, &[("alice", "admin"), ("bob", "viewer")]);
    console.jar = s.path("bob-cookies.txt");
    assert_eq!(status(&console.login_as("bob", PASSWORD)), 303);
    assert_eq!(status(&console.curl("/devices", &[])), 200);
    console.jar = s.path("alice-cookies.txt");
    assert_eq!(status(&console.login_as("alice", PASSWORD)), 303);
    assert_eq!(status(&console.curl("/devices", &[])), 200);

    let said = users(&s, &["remove", "bob"], None);
    assert!(said.contains("ends its sessions"), "{said}");
    console.jar = s.path("bob-cookies.txt");
    assert_eq!(
        status(&console.curl("/devices", &[])),
        303,
        "bob's session ended"
    );
    assert_eq!(status(&console.login_as("bob", PASSWORD)), 401);

    users(&s, &["passwd", "alice"], Some("a brand new password"));
    console.jar = s.path("alice-cookies.txt");
    assert_eq!(
        status(&console.curl("/devices", &[])),
        303,
        "alice's session ended"
    );
    assert_eq!(status(&console.login_as("alice", PASSWORD)), 401);
    assert_eq!(
        status(&console.login_as("alice", "a brand new password")),
        303
    );
}

#[test]
fn three_hundred_junk_manifests_leave_the_console_within_its_cache_budget() {
    let s = Scratch::new("");
    let junk = vec![b'{'; 1 << 20];
    for i in 0..300 {
        let dir = s.path(&format!(
            "store/captures/PA-0001/01930000-0000-7000-8000-{i:012}"
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("manifest.json"), &junk).unwrap();
    }
    let console = Console::start_full(
        &s,
        &[("rita", "research")],
        &["--cache-budget", "16MiB", "--concurrency", "8"],
        None,
    );
    assert_eq!(status(&console.login_as("rita", PASSWORD)), 303);
    let (before, _) = console.memory();
    for _ in 0..3 {
        let page = console.curl("/captures", &[]);
        assert!(page.contains("300 capture(s)"), "{page}");
        assert_eq!(status(&console.curl("/devices/PA-0001", &[])), 200);
    }
    let (after, peak) = console.memory();
    eprintln!(
        "300 junk 1 MB manifests read 3 times: RSS {before} KiB before, {after} KiB after, peak {peak} KiB"
    );
    // Nothing of the junk is kept: what may be left over is the budget and the buffers of the
    // reads in flight (8 at a time for each of the two pages, 1 MiB read and 1 MiB copied
    // each, kept by the allocator), and some slack: never 300 MB.
    let bound = before + 16 * 1024 + 2 * 8 * 2 * 1024 + 8 * 1024;
    assert!(after < bound, "RSS grew from {before} to {after} KiB");
}

#[test]
fn the_login_form_needs_its_own_token_and_reauthorize_needs_its_confirmation() {
    let s = Scratch::new("");
    s.portal_ok(&["authorize", "PA-0002", "--period", "1m", "--allow-unseen"]);
    let console = Console::start(&s);
    // A login posted from another site carries no token of this console's form: refused,
    // even with the right password.
    let forged = console.curl(
        "/login",
        &[
            "-d",
            "name=alice",
            "--data-urlencode",
            &format!("password={PASSWORD}"),
        ],
    );
    assert_eq!(status(&forged), 403, "{forged}");
    assert_eq!(status(&console.curl("/devices", &[])), 303);
    assert_eq!(status(&console.login(PASSWORD)), 303);

    let before = s.portal_ok(&["devices", "list", "--json"]);
    let csrf = console.csrf();
    let unconfirmed = console.post(
        "/devices/reauthorize",
        &[
            format!("csrf={csrf}"),
            "serial=PA-0002".to_owned(),
            "period=3m".to_owned(),
        ],
    );
    assert_eq!(status(&unconfirmed), 200, "{unconfirmed}");
    assert!(unconfirmed.contains("Confirm"), "{unconfirmed}");
    assert_eq!(
        s.portal_ok(&["devices", "list", "--json"]),
        before,
        "nothing was issued"
    );
}

/// A certificate verifier that takes any certificate (for the attackers' clients only).
#[derive(Debug)]
struct AnyCertificate(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
