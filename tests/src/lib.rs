//! Helpers for the end-to-end tests: the built binaries, a scratch directory with keys made by
//! `pcap-portal keygen`, an agent config, and a running `pcap-agent` to talk to.
//!
//! The tests run the real binaries, so `cargo build --workspace --bins` must come first (the
//! README's test command does it).

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
}

impl Scratch {
    /// Creates keys with `pcap-portal keygen` and writes `agent.toml` (extra TOML appended).
    pub fn new(extra: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pcap-e2e-")
            .tempdir()
            .expect("tempdir");
        let s = Scratch {
            dir,
            serial: "PA-0001".to_owned(),
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
interfaces = ["lo"]
{extra}
"#,
            serial = self.serial,
            d = self.dir.path().display(),
            recipient = recipient.trim(),
        )
    }

    pub fn write_config(&self, extra: &str) {
        std::fs::write(self.config_path(), self.config_text(extra)).expect("write config");
    }

    /// A `pcap-portal` command on this scratch's store and keys.
    pub fn portal(&self) -> Command {
        let mut cmd = Command::new(bin("pcap-portal"));
        cmd.env("PCAP_STORE", self.store_url()).env(
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

    /// A `pcapctl` command on this scratch's socket.
    pub fn pcapctl(&self) -> Command {
        let mut cmd = Command::new(bin("pcapctl"));
        cmd.arg("--socket").arg(self.socket());
        cmd
    }

    /// Starts the agent and waits until it answers on its socket.
    pub fn start_agent(&self) -> Agent {
        let log = std::fs::File::create(self.path("agent.log")).expect("log file");
        let child = Command::new(bin("pcap-agent"))
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
        answer.json().expect("JSON")
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
