//! Helpers for the end-to-end tests: the built binaries, a scratch directory with keys made by
//! `pcap-portal keygen`, an agent config, and a running `pcap-agent` to talk to.
//!
//! The tests run the real binaries, so `cargo build --workspace --bins` must come first (the
//! README's test command does it).

pub mod browser;
pub mod clients;
pub mod enterprise;
pub mod mqtt;
pub mod net;
pub mod pcapgen;
pub mod s3;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pcap_agent::client::{Answer, Client};

/// Path of a workspace binary next to the test executable (`target/<profile>/<name>`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests",
        path.display()
    );
    path
}

/// Whether the tests run as root; tests that need root print why they skip otherwise.
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Skips the current test with a printed reason unless running as root.
#[macro_export]
macro_rules! require_root {
    ($why:expr) => {
        if !$crate::is_root() {
            eprintln!("skipped: needs root ({})", $why);
            return;
        }
    };
}

/// Polls `check` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a command to completion, returning its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// A scratch directory with keys, a file store and an agent config for device `PA-0001`.
#[derive(Debug)]
pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub serial: String,
    /// The interfaces captures may use (`capture.interfaces`).
    pub interfaces: Vec<String>,
}

impl Scratch {
    /// Creates keys with `pcap-portal keygen` and writes `agent.toml` (extra TOML appended).
    pub fn new(extra: &str) -> Self {
        Self::with_interfaces(&["lo"], extra)
    }

    /// As [`Scratch::new`], allowing captures on `interfaces`. `extra` lands in `[capture]`
    /// unless it opens tables of its own.
    pub fn with_interfaces(interfaces: &[&str], extra: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pcap-e2e-")
            .tempdir()
            .expect("tempdir");
        let s = Scratch {
            dir,
            serial: "PA-0001".to_owned(),
            interfaces: interfaces.iter().map(|i| i.to_string()).collect(),
        };
        let out = run(Command::new(bin("pcap-portal"))
            .arg("keygen")
            .arg("--out")
            .arg(s.path("keys")));
        assert!(
            out.status.success(),
            "keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        s.write_config(extra);
        s
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn store_url(&self) -> String {
        format!("file://{}", self.path("store").display())
    }

    pub fn socket(&self) -> PathBuf {
        self.path("run/control.sock")
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("agent.toml")
    }

    /// The agent config: the grant source is the store's `devices/<serial>/grant.json`.
    pub fn config_text(&self, extra: &str) -> String {
        let recipient =
            std::fs::read_to_string(self.path("keys/research.age.pub")).expect("recipient");
        format!(
            r#"[device]
serial = "{serial}"
name = "e2e"

[authorization]
source = "file://{d}/store/devices/{serial}/grant.json"
verify_key = "{d}/keys/authorization.pub"

[upload]
store = "file://{d}/store"
recipients = ["{recipient}"]

[control]
socket = "{d}/run/control.sock"

[paths]
state_dir = "{d}/state"
spool_dir = "{d}/spool"

[capture]
interfaces = {interfaces:?}
{extra}
"#,
            interfaces = self.interfaces,
            serial = self.serial,
            d = self.dir.path().display(),
            recipient = recipient.trim(),
        )
    }

    pub fn write_config(&self, extra: &str) {
        std::fs::write(self.config_path(), self.config_text(extra)).expect("write config");
    }

    /// Writes the config with `upload` lines added to `[upload]` and `extra` to `[capture]`.
    pub fn write_upload_config(&self, upload: &str, extra: &str) {
        let text = self
            .config_text(extra)
            .replace("[upload]\n", &format!("[upload]\n{upload}\n"));
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// Writes the config for uploads to `server` (bucket `captures`, prefix `pa`) with the
    /// secret key `secret`, `upload` lines in `[upload]` and `extra` in `[capture]`.
    pub fn write_s3_config(&self, server: &s3::S3Server, secret: &str, upload: &str, extra: &str) {
        let creds = self.path("s3-credentials");
        server.credentials_file(&creds, secret);
        let text = self.config_text(extra).replace(
            &format!("store = \"{}\"", self.store_url()),
            &format!("store = \"s3://{}/pa\"\n{upload}", s3::BUCKET),
        ) + &format!(
            "\n[upload.s3]\nendpoint = \"{}\"\npath_style = true\ncredentials_file = \"{}\"\n",
            server.endpoint(),
            creds.display()
        );
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// The config of an agent whose only channel is the store on `server`: the grant and the
    /// requests come from it (polled every second), captures and heartbeats go to it.
    pub fn write_remote_config(&self, server: &s3::S3Server, upload: &str, extra: &str) {
        self.write_s3_config(server, s3::SECRET_KEY, upload, extra);
        let d = self.dir.path().display();
        let text = std::fs::read_to_string(self.config_path())
            .expect("config")
            .replace(
                &format!(
                    "source = \"file://{d}/store/devices/{}/grant.json\"",
                    self.serial
                ),
                "source = \"store\"\npoll_interval = \"1s\"",
            )
            + &format!(
                "\n[requests]\nverify_key = \"{d}/keys/request.pub\"\npoll_interval = \"1s\"\n"
            );
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// A `pcap-portal` command on the S3 store of `server`, with every key of this scratch.
    pub fn portal_s3(&self, server: &s3::S3Server) -> Command {
        let mut cmd = Command::new(bin("pcap-portal"));
        cmd.env("PCAP_PORTAL_STATE", self.path("portal-state"))
            .env("PCAP_STORE", format!("s3://{}/pa", s3::BUCKET))
            .env("PCAP_S3_ENDPOINT", server.endpoint())
            .env("PCAP_S3_PATH_STYLE", "true")
            .env("PCAP_S3_CREDENTIALS", self.path("s3-credentials"))
            .env(
                "PCAP_AUTHORIZATION_KEY",
                self.path("keys/authorization.key"),
            )
            .env("PCAP_REQUEST_KEY", self.path("keys/request.key"))
            .env("PCAP_RESEARCH_IDENTITY", self.path("keys/research.age"));
        cmd
    }

    /// Runs `pcap-portal ARGS` on `server` and asserts that it succeeds; returns stdout.
    pub fn portal_s3_ok(&self, server: &s3::S3Server, args: &[&str]) -> String {
        let out = run(self.portal_s3(server).args(args));
        assert!(
            out.status.success(),
            "pcap-portal {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A capture's directory on the S3 test server.
    pub fn s3_dir(&self, server: &s3::S3Server, capture_id: &str) -> PathBuf {
        server.object(&format!("pa/captures/{}/{capture_id}", self.serial))
    }

    /// A `pcap-portal` command on this scratch's store and keys.
    pub fn portal(&self) -> Command {
        let mut cmd = Command::new(bin("pcap-portal"));
        cmd.env("PCAP_PORTAL_STATE", self.path("portal-state"))
            .env("PCAP_STORE", self.store_url())
            .env(
                "PCAP_AUTHORIZATION_KEY",
                self.path("keys/authorization.key"),
            );
        cmd
    }

    /// Runs `pcap-portal ARGS` and asserts that it succeeds.
    pub fn portal_ok(&self, args: &[&str]) -> String {
        let out = run(self.portal().args(args));
        assert!(
            out.status.success(),
            "pcap-portal {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes a capture of `serial` with id `id` into the scratch's file store as the uploader
    /// leaves it: the segment `000001.pcap.age` (the pcap `plain`, encrypted with the age CLI
    /// to the research recipient) and a manifest with its size and SHA-256. Returns the id.
    pub fn store_capture(&self, serial: &str, id: &str, plain: &Path) -> String {
        let dir = self.path(&format!("store/captures/{serial}/{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let segment = dir.join("000001.pcap.age");
        self.encrypt(plain, &segment);
        let bytes = std::fs::read(&segment).unwrap();
        let sha = ring::digest::digest(&ring::digest::SHA256, &bytes);
        let manifest = serde_json::json!({
            "schema": "1.0", "capture_id": id, "serial": serial, "agent_version": "0.1.0",
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

    /// Writes a grant for `serial`, named `name`, unlimited, with `sequence`, signed by a key
    /// that is not the customer's (a forger's), into the scratch's store.
    pub fn forge_grant(&self, serial: &str, name: &str, sequence: u64) {
        let forger = Scratch::new("");
        let key = pcap_protocol::SigningKey::load(&forger.path("keys/authorization.key")).unwrap();
        let grant = pcap_protocol::Grant::new(
            pcap_protocol::Serial::parse(serial).unwrap(),
            Some(name.to_owned()),
            pcap_protocol::Period::Unlimited,
            sequence,
            jiff::Timestamp::now(),
        );
        let doc = pcap_protocol::AuthorizationDocument::Grant(grant);
        let dir = self.path(&format!("store/devices/{serial}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("grant.json"),
            pcap_protocol::Envelope::sign(&doc, &key).to_json(),
        )
        .unwrap();
    }

    /// Encrypts `plain` into `out` with the age CLI, to the research recipient.
    pub fn encrypt(&self, plain: &Path, out: &Path) {
        let recipient = std::fs::read_to_string(self.path("keys/research.age.pub")).unwrap();
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

    /// A `pcapctl` command on this scratch's socket.
    pub fn pcapctl(&self) -> Command {
        let mut cmd = Command::new(bin("pcapctl"));
        cmd.arg("--socket").arg(self.socket());
        cmd
    }

    /// Authorizes this scratch's device for a month with `pcap-portal`.
    pub fn authorize(&self) {
        self.portal_ok(&[
            "authorize",
            &format!("{} e2e", self.serial),
            "--period",
            "1m",
            "--allow-unseen",
        ]);
    }

    /// Decrypts a sealed segment with the `age` CLI and the research team's identity; returns
    /// the path of the plain pcap file.
    pub fn decrypt(&self, segment: &Path) -> PathBuf {
        let out_path = segment.with_extension("pcap-plain");
        let out = run(Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(self.path("keys/research.age"))
            .arg("-o")
            .arg(&out_path)
            .arg(segment));
        assert!(
            out.status.success(),
            "age -d {}: {}",
            segment.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        out_path
    }

    /// A capture's directory in the (file://) store.
    pub fn store_dir(&self, capture_id: &str) -> PathBuf {
        self.path("store/captures")
            .join(&self.serial)
            .join(capture_id)
    }

    /// Waits until the capture is complete in the store (its manifest is there, written last)
    /// and returns the manifest.
    pub fn wait_complete(&self, capture_id: &str) -> serde_json::Value {
        let manifest = self.store_dir(capture_id).join("manifest.json");
        assert!(
            wait_until(Duration::from_secs(30), || manifest.exists()),
            "capture {capture_id} never completed in the store; spool: {:?}\nagent log:\n{}",
            std::fs::read_dir(self.path("spool").join(capture_id)).map(|d| d
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect::<Vec<_>>()),
            std::fs::read_to_string(self.path("agent.log")).unwrap_or_default()
        );
        serde_json::from_slice(&std::fs::read(manifest).expect("manifest")).expect("manifest JSON")
    }

    /// The segments of a complete capture in the store, in order.
    pub fn segments(&self, capture_id: &str) -> Vec<PathBuf> {
        self.wait_complete(capture_id);
        files_ending(&self.store_dir(capture_id), ".pcap.age")
    }

    /// Capture directories in the spool (the journal does not count).
    pub fn spool_captures(&self) -> usize {
        std::fs::read_dir(self.path("spool"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().is_dir())
                    .count()
            })
            .unwrap_or(0)
    }

    /// Starts the agent and waits until it answers on its socket.
    pub fn start_agent(&self) -> Agent {
        self.start_agent_via(&[])
    }

    /// Starts the agent through `wrapper` (e.g. `setpriv` and its options), waiting until it
    /// answers on its socket.
    pub fn start_agent_via(&self, wrapper: &[&str]) -> Agent {
        let log = std::fs::File::create(self.path("agent.log")).expect("log file");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin("pcap-agent"));
                c
            }
            None => Command::new(bin("pcap-agent")),
        };
        let child = cmd
            .arg("run")
            .arg("--config")
            .arg(self.config_path())
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn pcap-agent");
        let mut agent = Agent {
            child,
            client: Client::new(self.socket()),
            log: self.path("agent.log"),
        };
        let ready = wait_until(Duration::from_secs(20), || {
            agent
                .get("/v1/status")
                .is_some_and(|a| a.status.is_success())
        });
        if !ready {
            let _ = agent.child.kill();
            panic!(
                "the agent did not answer within 20 s; log:\n{}",
                agent.log_text()
            );
        }
        agent
    }
}

/// A running `pcap-agent run`; killed when dropped.
#[derive(Debug)]
pub struct Agent {
    pub child: Child,
    pub client: Client,
    pub log: PathBuf,
}

impl Agent {
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// `GET path`, or `None` if the agent cannot be reached.
    pub fn get(&self, path: &str) -> Option<Answer> {
        Self::runtime().block_on(self.client.get(path)).ok()
    }

    /// `POST path` with a body.
    pub fn post(&self, path: &str, body: Option<Vec<u8>>) -> Answer {
        Self::runtime()
            .block_on(self.client.post(path, body))
            .expect("the agent answers")
    }

    /// The JSON of `GET path`.
    pub fn json(&self, path: &str) -> serde_json::Value {
        let answer = self.get(path).expect("the agent answers");
        assert!(answer.status.is_success(), "GET {path}: {}", answer.status);
        answer.parse::<serde_json::Value>().expect("JSON")
    }

    /// The authorization state string.
    pub fn auth_state(&self) -> String {
        self.json("/v1/authorization")["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the authorization state is `state`.
    pub fn wait_auth(&self, state: &str) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        let ok = wait_until(Duration::from_secs(10), || {
            last = self.json("/v1/authorization");
            last["state"] == state
        });
        assert!(ok, "authorization did not become {state}; last: {last}");
        last
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// A memory figure of the process from `/proc/<pid>/status`, in KiB: `VmRSS` (now),
    /// `VmHWM` (its peak).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the agent's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("signal the agent");
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The agent's threads: name and nice value, from `/proc/<pid>/task`.
    pub fn threads(&self) -> Vec<(String, i32)> {
        let task = PathBuf::from(format!("/proc/{}/task", self.child.id()));
        let mut out = Vec::new();
        for entry in std::fs::read_dir(task).into_iter().flatten().flatten() {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // The fields after the parenthesised name; nice is field 19 of the whole line.
            let nice = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(16))
                .and_then(|n| n.parse().ok());
            if let Some(nice) = nice {
                out.push((comm.trim().to_owned(), nice));
            }
        }
        out
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Kills the child process when dropped, so a failing test leaves nothing running.
#[derive(Debug)]
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    /// Hands the child back (it will no longer be killed on drop).
    pub fn take(mut self) -> Child {
        self.0.take().expect("child present")
    }

    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Copies a test's decrypted capture to `$PCAP_TEST_KEEP/<name>.pcap` when that variable
/// names a directory (how the fuzz seeds of real sessions are made: fuzz/seeds-enterprise.py).
pub fn keep_capture(pcap: &Path, name: &str) {
    if let Some(dir) = std::env::var_os("PCAP_TEST_KEEP") {
        let to = Path::new(&dir).join(format!("{name}.pcap"));
        std::fs::copy(pcap, &to).unwrap_or_else(|e| panic!("keep {}: {e}", to.display()));
    }
}

/// The values of `fields` for each packet of a pcap file, as tshark dissects them.
pub fn tshark_fields(pcap: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"])
        .arg(pcap)
        .args(["-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

/// The session records `pcap-agent analyze` writes for `pcap` (with the `[sharing]` and
/// `[sessions]` settings of `config`, if given); fails the test if it fails.
pub fn analyze_records(pcap: &Path, config: Option<&Path>) -> Vec<Record> {
    let mut cmd = Command::new(bin("pcap-agent"));
    cmd.arg("analyze").arg(pcap);
    if let Some(config) = config {
        cmd.arg("--sharing-from").arg(config);
    }
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "analyze {}: {}",
        pcap.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_records(&String::from_utf8_lossy(&out.stdout))
}

/// A session record, as the tests read them back.
pub type Record = pcap_protocol::session::SessionRecord<'static>;

/// The session records of JSON lines `text`, read as the research team reads them (refusing a
/// newer schema).
pub fn parse_records(text: &str) -> Vec<Record> {
    text.lines()
        .map(|l| pcap_protocol::schema::decode(l.as_bytes()).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The record of the session from `src`:`sport` to `dst`:`dport` (as tshark prints them).
pub fn find_session<'a>(
    records: &'a [Record],
    src: &str,
    sport: &str,
    dst: &str,
    dport: &str,
) -> &'a Record {
    let text = |(ip, port): (Option<std::net::IpAddr>, Option<u16>)| {
        (
            ip.map(|i| i.to_string()).unwrap_or_default(),
            port.map(|p| p.to_string()).unwrap_or_default(),
        )
    };
    records
        .iter()
        .find(|r| {
            text(r.source()) == (src.to_owned(), sport.to_owned())
                && text(r.destination()) == (dst.to_owned(), dport.to_owned())
        })
        .unwrap_or_else(|| panic!("no session {src}:{sport} -> {dst}:{dport} in {records:#?}"))
}

/// How many packets `tcpdump -r` reads from a pcap file.
pub fn tcpdump_count(pcap: &Path) -> usize {
    let out = run(Command::new("tcpdump").args(["-nn", "-r"]).arg(pcap));
    assert!(
        out.status.success(),
        "tcpdump -r: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

impl Agent {
    /// `POST /v1/captures` with `body`.
    pub fn start_capture(&self, body: &serde_json::Value) -> Answer {
        self.post(
            "/v1/captures",
            Some(serde_json::to_vec(body).expect("JSON")),
        )
    }

    /// Starts a capture that must be accepted; returns its record.
    pub fn start_capture_ok(&self, body: &serde_json::Value) -> serde_json::Value {
        let answer = self.start_capture(body);
        assert_eq!(
            answer.status,
            201,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        answer.parse::<serde_json::Value>().expect("JSON")
    }

    /// Waits until the capture `id` has ended; returns its final record.
    pub fn wait_capture_end(&self, id: &str, timeout: Duration) -> serde_json::Value {
        let mut record = serde_json::Value::Null;
        let ended = wait_until(timeout, || {
            record = self.json(&format!("/v1/captures/{id}"));
            record["state"] != "running"
        });
        assert!(
            ended,
            "capture {id} still running after {timeout:?}: {record}"
        );
        record
    }
}

/// Milliseconds between two RFC 3339 times of a record.
pub fn millis_between(from: &serde_json::Value, to: &serde_json::Value) -> i64 {
    let parse = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .expect("a timestamp")
    };
    parse(to).duration_since(parse(from)).as_millis() as i64
}

impl Agent {
    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Answer {
        Self::runtime()
            .block_on(self.client.send(http::Method::DELETE, path, None))
            .expect("the agent answers")
    }

    /// Stops capture `id` (it must succeed); returns its final record.
    pub fn post_delete(&self, id: &str) -> serde_json::Value {
        let answer = self.delete(&format!("/v1/captures/{id}"));
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        answer.parse::<serde_json::Value>().expect("JSON")
    }
}

/// The values of `fields` for each packet tshark shows with the display filter `filter`,
/// dissecting the ports in `decode_as` (`tcp.port==8081,http`) as given.
pub fn tshark_query(
    pcap: &Path,
    decode_as: &[&str],
    filter: &str,
    fields: &[&str],
) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(pcap);
    for d in decode_as {
        cmd.args(["-d", d]);
    }
    cmd.args([
        "-Y",
        filter,
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

/// The fixtures directory (test servers and clients).
/// The Python of the venv `scripts/setup` makes for the reference implementations (PyPI's
/// communityid), which also sees the system's scapy.
pub fn reference_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python3");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup, which makes the reference tools' venv",
        python.display()
    );
    python
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

impl Scratch {
    /// Decrypts `sessions.json.age` of a capture and parses its JSON lines.
    pub fn session_records(&self, capture_id: &str) -> Vec<Record> {
        self.wait_complete(capture_id);
        let file = self.store_dir(capture_id).join("sessions.json.age");
        assert!(
            file.exists(),
            "no {}: {:?}",
            file.display(),
            std::fs::read_dir(file.parent().unwrap()).map(|d| d.count())
        );
        let plain = self.decrypt(&file);
        parse_records(
            &std::fs::read_to_string(plain)
                .unwrap_or_else(|e| panic!("decrypted records of {capture_id}: {e}")),
        )
    }
}

/// The files in `dir` whose names end with `suffix`, sorted (none if `dir` is missing).
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.to_string_lossy().ends_with(suffix));
    files.sort();
    files
}
