//! Real servers and real clients for the session tests: an HTTP server with Basic auth and a
//! download (Python), openssl s_server with ALPN, an SMTP server (Python) and dnsmasq in a test
//! namespace; curl, openssl s_client with SNI, Python's smtplib and dig from the host.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{ChildGuard, fixture, run, wait_until};

/// The HTTP, SMTP, TLS and DNS ports of [`Servers`].
pub const HTTP_PORT: u16 = 8081;
pub const SMTP_PORT: u16 = 2525;
pub const TLS_PORT: u16 = 8443;

/// tshark's `-d` options for the servers' ports.
pub const DECODE_AS: [&str; 3] = [
    "tcp.port==8081,http",
    "tcp.port==2525,smtp",
    "tcp.port==8443,tls",
];

/// Spawns a test server with its output discarded, stopped when the guard drops.
pub fn spawn(cmd: &mut Command) -> ChildGuard {
    ChildGuard(Some(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn a test server"),
    ))
}

/// Whether a TCP connection to `ip:port` succeeds within 200 ms.
pub fn port_open(ip: &str, port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse().unwrap(),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// The servers, stopped when dropped.
#[derive(Debug)]
pub struct Servers {
    _children: Vec<ChildGuard>,
}

impl Servers {
    /// Starts the servers on `ip` with `in_ns` (a command run in the servers' namespace),
    /// keeping the TLS key and certificate in `dir`; returns once each answers.
    pub fn start(in_ns: impl Fn(&str) -> Command, ip: &str, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                "/CN=device.example",
                "-days",
                "1",
                "-keyout",
            ])
            .arg(dir.join("k.pem"))
            .arg("-out")
            .arg(dir.join("c.pem")));
        assert!(out.status.success());
        let children = vec![
            spawn(
                in_ns("python3")
                    .arg(fixture("http_server.py"))
                    .args([ip, &HTTP_PORT.to_string()]),
            ),
            spawn(
                in_ns("python3")
                    .arg(fixture("smtp_server.py"))
                    .args([ip, &SMTP_PORT.to_string()]),
            ),
            spawn(
                in_ns("openssl")
                    .args([
                        "s_server",
                        "-quiet",
                        "-accept",
                        &format!("{ip}:{TLS_PORT}"),
                        "-alpn",
                        "h2,http/1.1",
                        "-cert",
                    ])
                    .arg(dir.join("c.pem"))
                    .arg("-key")
                    .arg(dir.join("k.pem")),
            ),
            spawn(in_ns("dnsmasq").args([
                "--no-daemon",
                "--port=53",
                &format!("--listen-address={ip}"),
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--address=/device.example/10.9.9.9",
                "--pid-file=",
            ])),
        ];
        for port in [HTTP_PORT, SMTP_PORT, TLS_PORT, 53] {
            assert!(
                wait_until(Duration::from_secs(10), || port_open(ip, port)),
                "server on {port}"
            );
        }
        Servers {
            _children: children,
        }
    }
}

/// Runs the clients against the servers on `ip`: two HTTP requests (a download with a
/// Content-Disposition, a Basic-auth request), a TLS handshake with SNI and ALPN, two mails
/// over one SMTP session with AUTH (four recipients, an encoded subject, two attachments, the
/// first of 2 MiB), a DNS query and an ICMP echo.
pub fn run_clients(ip: &str) {
    let base = format!("http://{ip}:{HTTP_PORT}");
    assert!(
        run(Command::new("curl").args([
            "-sSf",
            "-o",
            "/dev/null",
            &format!("{base}/download/fw.bin?v=2")
        ]))
        .status
        .success()
    );
    assert!(
        run(Command::new("curl").args([
            "-sSf",
            "-o",
            "/dev/null",
            "-u",
            "alice:secret",
            &format!("{base}/private/status")
        ]))
        .status
        .success()
    );
    let tls = run(Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("{ip}:{TLS_PORT}"),
            "-servername",
            "device.example",
            "-alpn",
            "h2,http/1.1",
        ])
        .stdin(Stdio::null()));
    assert!(String::from_utf8_lossy(&tls.stdout).contains("CONNECTED"));
    let mail = run(Command::new("python3")
        .arg(fixture("smtp_client.py"))
        .args([ip, &SMTP_PORT.to_string()]));
    assert!(
        mail.status.success(),
        "smtplib: {}",
        String::from_utf8_lossy(&mail.stderr)
    );
    let dig =
        run(Command::new("dig").args([&format!("@{ip}"), "device.example", "+short", "+tries=1"]));
    assert_eq!(String::from_utf8_lossy(&dig.stdout).trim(), "10.9.9.9");
    let ping = run(Command::new("ping").args(["-c", "2", "-i", "0.2", "-W", "2", ip]));
    assert!(
        ping.status.success(),
        "ping: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
}
