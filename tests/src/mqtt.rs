//! A real MQTT broker for the doorbell tests and the fleet benchmark: Debian's `mosquitto`
//! (installed by `scripts/setup`) on loopback, with a password file and the ACL the README
//! shows (a device may only read its own topic; the portal may write every device's), and
//! optionally TLS with a certificate made by `openssl`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::s3::free_port;
use crate::{ChildGuard, run, wait_until};

/// The portal's broker account (it may publish to every device's topic).
pub const PORTAL_USER: &str = "portal";
pub const PASSWORD: &str = "doorbell-test-password";

/// A running `mosquitto`; killed when dropped.
#[derive(Debug)]
pub struct Broker {
    dir: PathBuf,
    pub port: u16,
    tls: bool,
    child: Option<ChildGuard>,
}

impl Broker {
    /// Starts a broker on 127.0.0.1 whose users are the portal and `devices` (each device's
    /// user name is its serial), all with [`PASSWORD`].
    pub fn start(dir: &Path, devices: &[&str]) -> Self {
        Self::start_with(dir, devices, false)
    }

    /// As [`Broker::start`], listening with TLS (a certificate for 127.0.0.1 signed by
    /// `dir/ca.pem`, which [`Broker::ca`] names).
    pub fn start_tls(dir: &Path, devices: &[&str]) -> Self {
        Self::start_with(dir, devices, true)
    }

    fn start_with(dir: &Path, devices: &[&str], tls: bool) -> Self {
        std::fs::create_dir_all(dir).expect("broker directory");
        let passwd = dir.join("passwd");
        let _ = std::fs::remove_file(&passwd);
        std::fs::write(&passwd, "").expect("password file");
        for user in std::iter::once(PORTAL_USER).chain(devices.iter().copied()) {
            let out = run(Command::new("mosquitto_passwd")
                .args(["-b"])
                .arg(&passwd)
                .args([user, PASSWORD]));
            assert!(out.status.success(), "mosquitto_passwd: {out:?}");
        }
        std::fs::write(
            dir.join("acl"),
            format!(
                "user {PORTAL_USER}\ntopic write pcap-agent/v1/#\n\npattern read pcap-agent/v1/%u\n"
            ),
        )
        .expect("acl");
        let port = free_port();
        let mut conf = format!(
            "user root\nlistener {port} 127.0.0.1\nallow_anonymous false\npassword_file {p}\nacl_file {a}\npersistence false\nlog_dest file {l}\nlog_type all\n",
            p = passwd.display(),
            a = dir.join("acl").display(),
            l = dir.join("mosquitto.log").display(),
        );
        if tls {
            make_certificates(dir);
            conf.push_str(&format!(
                "cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n",
                d = dir.display()
            ));
        }
        std::fs::write(dir.join("mosquitto.conf"), conf).expect("mosquitto.conf");
        let mut broker = Broker {
            dir: dir.to_owned(),
            port,
            tls,
            child: None,
        };
        broker.restart();
        broker
    }

    /// The broker's URL for the agent and the portal.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The CA that signed the broker's certificate (TLS brokers only).
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Writes a 0600 doorbell credentials file for `user`.
    pub fn credentials(&self, path: &Path, user: &str, password: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(
            path,
            format!("username = \"{user}\"\npassword = \"{password}\"\n"),
        )
        .expect("credentials");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod credentials");
    }

    /// Kills the broker at once (SIGKILL).
    pub fn kill(&mut self) {
        self.child = None;
    }

    /// Starts the broker again on the same port; waits until it listens.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto (scripts/setup installs it)");
        self.child = Some(ChildGuard(Some(child)));
        let port = self.port;
        assert!(
            wait_until(Duration::from_secs(10), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "mosquitto did not start on port {port}; see {}",
            self.dir.join("mosquitto.log").display()
        );
    }

    /// Publishes each line of `lines` as one message to `topic` as `user` (QoS 0), with
    /// `mosquitto_pub`.
    pub fn publish_lines(&self, user: &str, topic: &str, lines: &str) {
        let input = self.dir.join("messages.txt");
        std::fs::write(&input, lines).expect("messages");
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-u", user, "-P", PASSWORD, "-t", topic, "-l"])
            .stdin(std::fs::File::open(&input).expect("messages"));
        if self.tls {
            cmd.arg("--cafile").arg(self.ca());
        }
        let out = run(&mut cmd);
        assert!(out.status.success(), "mosquitto_pub: {out:?}");
    }
}

/// A CA and a server certificate for 127.0.0.1 under `dir` (ca.pem, server.pem, server.key).
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = run(Command::new("openssl").current_dir(dir).args(args));
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=pcap-test-ca",
        "-days",
        "2",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("san.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}
