//! A real S3-compatible server for the tests: `s3s-fs` (installed by `scripts/setup`), on
//! loopback or inside a test's network namespace, storing objects as files under a directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::net::VethPair;
use crate::{ChildGuard, wait_until};

pub const ACCESS_KEY: &str = "pcap-test-access";
pub const SECRET_KEY: &str = "pcap-test-secret-key";
pub const BUCKET: &str = "captures";

/// The `s3s-fs` binary: on `PATH` or in `~/.cargo/bin`.
pub fn s3s_fs() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("s3s-fs"))
            .find(|p| p.is_file())
    });
    let in_cargo = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/s3s-fs"));
    on_path
        .or(in_cargo.filter(|p| p.is_file()))
        .expect("s3s-fs is not installed; run scripts/setup (cargo install s3s-fs@0.14.1 --features binary --locked)")
}

/// A free TCP port on loopback (free when this returns; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running `s3s-fs`; killed when dropped.
#[derive(Debug)]
pub struct S3Server {
    pub root: PathBuf,
    pub host: String,
    pub port: u16,
    /// Run inside this network namespace (else on the host).
    ns: Option<String>,
    child: Option<ChildGuard>,
    /// Where the server logs every request it routes (see [`S3Server::requests`]).
    log: Option<PathBuf>,
}

impl S3Server {
    /// Starts a server on 127.0.0.1 with the bucket [`BUCKET`] under `root`.
    pub fn start(root: &Path) -> Self {
        Self::start_at(root, "127.0.0.1", free_port(), None)
    }

    /// Starts a server on the namespace side of `pair`.
    pub fn start_in(root: &Path, pair: &VethPair) -> Self {
        Self::start_at(root, &pair.ns_ip, 9000, Some(pair.ns.clone()))
    }

    fn start_at(root: &Path, host: &str, port: u16, ns: Option<String>) -> Self {
        std::fs::create_dir_all(root.join(BUCKET)).expect("bucket directory");
        let mut s = S3Server {
            root: root.to_owned(),
            host: host.to_owned(),
            port,
            ns,
            child: None,
            log: None,
        };
        s.restart();
        s
    }

    /// Starts a server on 127.0.0.1 that logs each request it serves, so that a test can
    /// count them ([`S3Server::requests`]).
    pub fn start_logged(root: &Path) -> Self {
        std::fs::create_dir_all(root.join(BUCKET)).expect("bucket directory");
        let mut s = S3Server {
            root: root.to_owned(),
            host: "127.0.0.1".to_owned(),
            port: free_port(),
            ns: None,
            child: None,
            log: Some(root.with_extension("log")),
        };
        s.restart();
        s
    }

    /// Every request served so far, as (operation, key): `("GetObject", "pa/devices/...")`,
    /// `("ListObjectsV2", "")`, ... (only for a server from [`S3Server::start_logged`]).
    pub fn requests(&self) -> Vec<(String, String)> {
        let log = self.log.as_ref().expect("a logged server");
        let text = std::fs::read_to_string(log).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split_once("resolved route, op: ").map(|(_, r)| r))
            .map(|r| {
                let (op, path) = r.split_once(", s3_path: ").unwrap_or((r, ""));
                let key = path
                    .split_once("key: \"")
                    .and_then(|(_, k)| k.split_once('"'))
                    .map_or("", |(k, _)| k);
                (op.to_owned(), key.to_owned())
            })
            .collect()
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        self.child = None;
    }

    /// Starts the server again on the same address and directory; waits until it listens.
    pub fn restart(&mut self) {
        self.kill();
        let mut cmd = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(s3s_fs());
                c
            }
            None => Command::new(s3s_fs()),
        };
        cmd.args(["--host", &self.host, "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(log) = &self.log {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .expect("s3s-fs log");
            // s3s-fs logs to stdout.
            cmd.env("RUST_LOG", "s3s::ops=debug").stdout(file);
        }
        let child = cmd.spawn().expect("start s3s-fs");
        self.child = Some(ChildGuard(Some(child)));
        let url = format!("{}/", self.endpoint());
        let mut probe = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "curl"]);
                c
            }
            None => Command::new("curl"),
        };
        probe.args(["-s", "-o", "/dev/null", "--max-time", "1", &url]);
        assert!(
            wait_until(Duration::from_secs(10), || probe
                .status()
                .is_ok_and(|s| s.success())),
            "s3s-fs did not start on {url}"
        );
    }

    /// Where the object `key` of the bucket is kept.
    pub fn object(&self, key: &str) -> PathBuf {
        self.root.join(BUCKET).join(key)
    }

    /// Multipart uploads started and neither completed nor aborted.
    pub fn open_uploads(&self) -> Vec<String> {
        std::fs::read_dir(&self.root)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(".upload-") && n.ends_with(".json"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Writes a 0600 credentials file for the agent.
    pub fn credentials_file(&self, path: &Path, secret: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(
            path,
            format!("access_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{secret}\"\n"),
        )
        .expect("credentials file");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}
