//! The servers of an enterprise network for the session tests, run for real in a test
//! namespace: Samba (SMB1 and SMB2/3, NTLM logins, a share and the IPC$ pipes), an MIT
//! Kerberos KDC, PostgreSQL, MariaDB, FreeRADIUS, tftpd-hpa and Dovecot (IMAP and POP3), each
//! in its own scratch directory, stopped when dropped; and the clients that log in to them.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::clients::{port_open, spawn};
use crate::{ChildGuard, run, wait_until};

/// Samba's SMB port and the KDC's (UDP and TCP).
pub const SMB_PORT: u16 = 445;
pub const KDC_PORT: u16 = 88;
/// The DCE/RPC endpoint mapper's port.
pub const EPMAPPER_PORT: u16 = 135;
/// The account both servers know, and its password.
pub const USER: &str = "root";
pub const PASSWORD: &str = "Pcap-test-1";
pub const WORKGROUP: &str = "LABNET";
pub const REALM: &str = "LAB.TEST";
pub const KRB_USER: &str = "alice";

/// A Samba server with one share, `data`, holding `report.txt`.
#[derive(Debug)]
pub struct Samba {
    _child: ChildGuard,
    _dcerpcd: Server,
}

impl Samba {
    pub fn start(in_ns: impl Fn(&str) -> Command, ip: &str, dir: &Path) -> Self {
        for d in ["share", "private", "lock", "state", "cache", "pid"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("share/report.txt"), "quarterly figures\n").unwrap();
        let d = dir.display();
        let conf = dir.join("smb.conf");
        std::fs::write(
            &conf,
            format!(
                "[global]\n  workgroup = {WORKGROUP}\n  netbios name = FS01\n  \
                 server role = standalone server\n  private dir = {d}/private\n  \
                 lock directory = {d}/lock\n  state directory = {d}/state\n  \
                 cache directory = {d}/cache\n  pid directory = {d}/pid\n  \
                 ncalrpc dir = {d}/lock/ncalrpc\n  passdb backend = tdbsam:{d}/private/passdb.tdb\n  \
                 interfaces = {ip}\n  bind interfaces only = yes\n  smb ports = {SMB_PORT}\n  \
                 disable netbios = yes\n  server min protocol = NT1\n  load printers = no\n  \
                 printing = bsd\n  printcap name = /dev/null\n  log file = {d}/log\n  \
                 map to guest = never\n  rpc start on demand helpers = no\n\
                 [data]\n  path = {d}/share\n  read only = no\n"
            ),
        )
        .unwrap();
        let mut add = Command::new("smbpasswd");
        add.arg("-c").arg(&conf).args(["-a", "-s", USER]);
        let out = run_with_input(&mut add, &format!("{PASSWORD}\n{PASSWORD}\n"));
        assert!(out.status.success(), "smbpasswd: {out:?}");
        let child = spawn(
            in_ns("smbd")
                .args(["-F", "--no-process-group", "-s"])
                .arg(&conf),
        );
        assert!(
            wait_until(Duration::from_secs(20), || port_open(ip, SMB_PORT)),
            "smbd did not answer on {ip}:{SMB_PORT}"
        );
        // The RPC services (the endpoint mapper on 135, the dynamic ports, and the named
        // pipes smbd hands over), run apart as a domain member's would be.
        let log = dir.join("dcerpcd.log");
        let dcerpcd = Server::spawn(
            in_ns("/usr/libexec/samba/samba-dcerpcd")
                .args(["-F", "--libexec-rpcds", "-s"])
                .arg(&conf),
            &log,
        );
        await_port(ip, EPMAPPER_PORT, "samba-dcerpcd", &log);
        Samba {
            _child: child,
            _dcerpcd: dcerpcd,
        }
    }
}

/// An MIT KDC for [`REALM`] knowing [`KRB_USER`] and a CIFS service.
#[derive(Debug)]
pub struct Kdc {
    _child: ChildGuard,
    /// The client configuration (`KRB5_CONFIG`), UDP first.
    pub krb5_conf: std::path::PathBuf,
    /// The same over TCP only.
    pub krb5_conf_tcp: std::path::PathBuf,
}

impl Kdc {
    pub fn start(in_ns: impl Fn(&str) -> Command, ip: &str, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let d = dir.display();
        let client = |extra: &str| {
            format!(
                "[libdefaults]\n  default_realm = {REALM}\n  dns_lookup_kdc = false\n  \
                 dns_lookup_realm = false\n{extra}[realms]\n  {REALM} = {{\n    kdc = {ip}:{KDC_PORT}\n  }}\n"
            )
        };
        let krb5_conf = dir.join("krb5.conf");
        let krb5_conf_tcp = dir.join("krb5-tcp.conf");
        std::fs::write(&krb5_conf, client("")).unwrap();
        std::fs::write(&krb5_conf_tcp, client("  udp_preference_limit = 1\n")).unwrap();
        let kdc_conf = dir.join("kdc.conf");
        std::fs::write(
            &kdc_conf,
            format!(
                "[kdcdefaults]\n  kdc_listen = {ip}:{KDC_PORT}\n  kdc_tcp_listen = {ip}:{KDC_PORT}\n\
                 [realms]\n  {REALM} = {{\n    database_name = {d}/principal\n    \
                 key_stash_file = {d}/stash\n    acl_file = {d}/kadm5.acl\n  }}\n\
                 [logging]\n  kdc = FILE:{d}/kdc.log\n"
            ),
        )
        .unwrap();
        let env = |cmd: &mut Command| {
            cmd.env("KRB5_CONFIG", &krb5_conf)
                .env("KRB5_KDC_PROFILE", &kdc_conf);
        };
        let mut create = Command::new("kdb5_util");
        env(&mut create);
        let out = run(create.args(["create", "-s", "-r", REALM, "-P", "master-pw-1"]));
        assert!(out.status.success(), "kdb5_util: {out:?}");
        for q in [
            format!("addprinc -pw {PASSWORD} {KRB_USER}"),
            "addprinc -randkey cifs/fs01.lab.test".to_owned(),
        ] {
            let mut add = Command::new("kadmin.local");
            env(&mut add);
            let out = run(add.args(["-q", &q]));
            assert!(out.status.success(), "kadmin.local {q}: {out:?}");
        }
        let mut kdc = in_ns("krb5kdc");
        env(&mut kdc);
        let child = spawn(kdc.arg("-n"));
        assert!(
            wait_until(Duration::from_secs(20), || port_open(ip, KDC_PORT)),
            "krb5kdc did not answer on {ip}:{KDC_PORT}"
        );
        Kdc {
            _child: child,
            krb5_conf,
            krb5_conf_tcp,
        }
    }

    /// `kinit` as [`KRB_USER`] then a service ticket (`kvno`), with `conf`, the cache in `dir`.
    pub fn login(&self, conf: &Path, dir: &Path) {
        let cache = dir.join(format!(
            "cc-{}",
            conf.file_stem().unwrap().to_string_lossy()
        ));
        let mut kinit = Command::new("kinit");
        kinit
            .env("KRB5_CONFIG", conf)
            .env("KRB5CCNAME", &cache)
            .arg(KRB_USER);
        let out = run_with_input(&mut kinit, &format!("{PASSWORD}\n"));
        assert!(out.status.success(), "kinit: {out:?}");
        let out = run(Command::new("kvno")
            .env("KRB5_CONFIG", conf)
            .env("KRB5CCNAME", &cache)
            .arg("cifs/fs01.lab.test"));
        assert!(out.status.success(), "kvno: {out:?}");
    }
}

/// A server process, stopped when dropped: asked to stop (SIGTERM) so that it takes its
/// worker processes with it, killed if it has not after a few seconds.
#[derive(Debug)]
pub struct Server(Option<std::process::Child>);

impl Server {
    fn spawn(cmd: &mut Command, log: &Path) -> Self {
        let log = std::fs::File::create(log).unwrap();
        let child = cmd
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        Server(Some(child))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let Some(mut child) = self.0.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if !wait_until(Duration::from_secs(5), || {
            child.try_wait().ok().flatten().is_some()
        }) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

/// `program` in the namespace as the system user `user` (no forked session to outlive it).
fn as_user(in_ns: &impl Fn(&str) -> Command, user: &str, program: &str) -> Command {
    let mut cmd = in_ns("setpriv");
    cmd.args(["--reuid", user, "--regid", user, "--clear-groups", program]);
    cmd
}

/// Waits for `ip:port` (TCP) to answer, or fails the test with `log`.
fn await_port(ip: &str, port: u16, what: &str, log: &Path) {
    assert!(
        wait_until(Duration::from_secs(30), || port_open(ip, port)),
        "{what} did not answer on {ip}:{port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// PostgreSQL's and MariaDB's database user, and its password.
pub const DB_USER: &str = "reporter";

/// A PostgreSQL server that asks [`DB_USER`] for a password (SCRAM) over TCP, without TLS.
#[derive(Debug)]
pub struct Postgres {
    _server: Server,
}

impl Postgres {
    pub fn start(in_ns: impl Fn(&str) -> Command, ip: &str, dir: &Path) -> Self {
        let bin = Path::new("/usr/lib/postgresql/15/bin");
        std::fs::create_dir_all(dir).unwrap();
        let out = run(Command::new("chown").arg("postgres").arg(dir));
        assert!(out.status.success(), "chown: {out:?}");
        let data = dir.join("data");
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        let out = run(Command::new("setpriv")
            .args([
                "--reuid",
                "postgres",
                "--regid",
                "postgres",
                "--clear-groups",
            ])
            .arg(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                DB_USER,
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
            ])
            .arg(format!("--pwfile={}", pwfile.display())));
        assert!(out.status.success(), "initdb: {out:?}");
        let mut hba = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("pg_hba.conf"))
            .unwrap();
        std::io::Write::write_all(&mut hba, b"host all all 0.0.0.0/0 scram-sha-256\n").unwrap();
        let log = dir.join("log");
        let postgres = bin.join("postgres");
        let server = Server::spawn(
            as_user(&in_ns, "postgres", postgres.to_str().unwrap())
                .arg("-D")
                .arg(&data)
                .arg("-k")
                .arg(dir)
                .args(["-h", ip, "-p", "5432"]),
            &log,
        );
        await_port(ip, 5432, "postgres", &log);
        Postgres { _server: server }
    }
}

/// `psql` as [`DB_USER`] (it asks for TLS first and is refused, then logs in in the clear).
pub fn psql(ip: &str) {
    let out = run(Command::new("psql")
        .env("PGPASSWORD", PASSWORD)
        .args(["-h", ip, "-U", DB_USER, "-d", "postgres", "-c", "select 1"]));
    assert!(out.status.success(), "psql: {out:?}");
}

/// A MariaDB server with the account [`DB_USER`]@`%`.
#[derive(Debug)]
pub struct Mariadb {
    _server: Server,
}

impl Mariadb {
    pub fn start(in_ns: impl Fn(&str) -> Command, ip: &str, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let data = dir.join("data");
        let out = run(Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--user=root", "--auth-root-authentication-method=socket"]));
        assert!(out.status.success(), "mariadb-install-db: {out:?}");
        let socket = dir.join("sock");
        let log = dir.join("log");
        let server = Server::spawn(
            in_ns("mariadbd")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--pid-file={}", dir.join("pid").display()))
                .args(["--user=root", "--skip-log-bin", "--port=3306"])
                .arg(format!("--bind-address={ip}")),
            &log,
        );
        await_port(ip, 3306, "mariadbd", &log);
        let out = run(Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", socket.display()))
            .args(["-u", "root", "-e"])
            .arg(format!(
                "CREATE USER '{DB_USER}'@'%' IDENTIFIED BY '{PASSWORD}'; \
                 GRANT SELECT ON *.* TO '{DB_USER}'@'%'"
            )));
        assert!(out.status.success(), "mariadb CREATE USER: {out:?}");
        Mariadb { _server: server }
    }
}

/// The `mariadb` client as [`DB_USER`].
pub fn mariadb(ip: &str) {
    let out = run(Command::new("mariadb")
        .arg("--no-defaults")
        .args(["-h", ip, "-u", DB_USER])
        .arg(format!("-p{PASSWORD}"))
        .args(["-e", "select 1"]));
    assert!(out.status.success(), "mariadb: {out:?}");
}

/// The RADIUS user and the shared secret of the test network's clients.
pub const RADIUS_USER: &str = "bob";
const RADIUS_SECRET: &str = "lab-secret";

/// FreeRADIUS with Debian's configuration, knowing [`RADIUS_USER`] and the host's network.
#[derive(Debug)]
pub struct Radius {
    _server: Server,
}

impl Radius {
    pub fn start(in_ns: impl Fn(&str) -> Command, host_ip: &str, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let raddb = dir.join("raddb");
        let out = run(Command::new("cp")
            .arg("-a")
            .arg("/etc/freeradius/3.0")
            .arg(&raddb));
        assert!(out.status.success(), "cp raddb: {out:?}");
        let append = |file: &str, text: &str| {
            let path = raddb.join(file);
            let old = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, format!("{old}{text}")).unwrap();
        };
        append(
            "clients.conf",
            &format!("client lab {{\n  ipaddr = {host_ip}\n  secret = {RADIUS_SECRET}\n}}\n"),
        );
        let users = raddb.join("mods-config/files/authorize");
        let old = std::fs::read_to_string(&users).unwrap();
        std::fs::write(
            &users,
            format!("{RADIUS_USER} Cleartext-Password := \"{PASSWORD}\"\n{old}"),
        )
        .unwrap();
        // Runs as root here, not as Debian's freerad user.
        let conf = raddb.join("radiusd.conf");
        let text = std::fs::read_to_string(&conf)
            .unwrap()
            .replace("\tuser = freerad", "\t#user = freerad")
            .replace("\tgroup = freerad", "\t#group = freerad");
        std::fs::write(&conf, text).unwrap();
        let log = dir.join("log");
        let server = Server::spawn(
            in_ns("freeradius")
                .arg("-f")
                .arg("-d")
                .arg(&raddb)
                .arg("-l")
                .arg(&log),
            &dir.join("out"),
        );
        assert!(
            wait_until(Duration::from_secs(30), || std::fs::read_to_string(&log)
                .is_ok_and(|l| l.contains("Ready to process requests"))),
            "freeradius did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Radius { _server: server }
    }
}

/// `radtest` as [`RADIUS_USER`]: an Access-Request that is accepted.
pub fn radtest(ip: &str) {
    let out = run(Command::new("radtest").args([RADIUS_USER, PASSWORD, ip, "0", RADIUS_SECRET]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Access-Accept"), "radtest: {out:?}");
}

/// tftpd-hpa serving `fw.bin`, taking uploads.
#[derive(Debug)]
pub struct Tftp {
    _server: Server,
}

impl Tftp {
    pub fn start(in_ns: impl Fn(&str) -> Command, ip: &str, dir: &Path) -> Self {
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("fw.bin"), "firmware image\n").unwrap();
        let server = Server::spawn(
            in_ns("in.tftpd")
                .args(["-L", "-c", "-u", "root", "-s"])
                .arg(&root)
                .args(["--address", &format!("{ip}:69")]),
            &dir.join("log"),
        );
        // UDP: nothing to connect to; the first request is retried by curl until it answers.
        Tftp { _server: server }
    }
}

/// curl's `tftp://`: gets `fw.bin` and puts `up-<n>.txt`.
pub fn tftp(ip: &str, dir: &Path) {
    let got = dir.join("fw-got.bin");
    let out = run(Command::new("curl")
        .args(["-sS", "--retry", "3", "--connect-timeout", "5"])
        .arg(format!("tftp://{ip}/fw.bin"))
        .arg("-o")
        .arg(&got));
    assert!(out.status.success(), "curl tftp get: {out:?}");
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "firmware image\n");
    let up = dir.join("config-backup.txt");
    std::fs::write(&up, "hostname sw1\n").unwrap();
    let out = run(Command::new("curl")
        .args(["-sS", "-T"])
        .arg(&up)
        .arg(format!("tftp://{ip}/")));
    assert!(out.status.success(), "curl tftp put: {out:?}");
}

/// The mail user of Dovecot.
pub const MAIL_USER: &str = "alice";

/// Dovecot serving IMAP and POP3 without TLS, [`MAIL_USER`] in a password file.
#[derive(Debug)]
pub struct Dovecot {
    _server: Server,
}

impl Dovecot {
    pub fn start(in_ns: impl Fn(&str) -> Command, ip: &str, dir: &Path) -> Self {
        let d = dir.display();
        for sub in ["mail", "run", "state"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let out = run(Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(dir.join("mail")));
        assert!(out.status.success(), "chown: {out:?}");
        std::fs::write(
            dir.join("users"),
            format!("{MAIL_USER}:{{PLAIN}}{PASSWORD}\n"),
        )
        .unwrap();
        let conf = dir.join("dovecot.conf");
        std::fs::write(
            &conf,
            format!(
                "protocols = imap pop3\nlisten = {ip}\nbase_dir = {d}/run\nstate_dir = {d}/state\n\
                 ssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\n\
                 mail_location = maildir:{d}/mail/%u\nfirst_valid_uid = 1\nlog_path = {d}/log\n\
                 default_internal_user = dovecot\ndefault_login_user = dovenull\n\
                 passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {d}/users\n}}\n\
                 userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home={d}/mail/%u\n}}\n"
            ),
        )
        .unwrap();
        let log = dir.join("out");
        let server = Server::spawn(in_ns("dovecot").arg("-F").arg("-c").arg(&conf), &log);
        await_port(ip, 143, "dovecot", &log);
        await_port(ip, 110, "dovecot", &log);
        Dovecot { _server: server }
    }
}

/// Mail clients against Dovecot as [`MAIL_USER`]: curl appends `message` and fetches it back
/// over IMAP and POP3 (its SASL PLAIN logins), and Python's imaplib and poplib log in with
/// IMAP `LOGIN` and POP3 `USER` and fetch it again.
pub fn mail_clients(ip: &str, message: &Path) {
    let login = format!("{MAIL_USER}:{PASSWORD}");
    let curl = |args: &[&str]| {
        let out = run(Command::new("curl").args(["-sS", "-u", &login]).args(args));
        assert!(out.status.success(), "curl {args:?}: {out:?}");
        out.stdout
    };
    curl(&[
        "-T",
        message.to_str().unwrap(),
        &format!("imap://{ip}/INBOX"),
    ]);
    let fetched = curl(&[&format!("imap://{ip}/INBOX;UID=1")]);
    assert!(String::from_utf8_lossy(&fetched).contains("Subject:"));
    curl(&[&format!("pop3://{ip}/1")]);
    let script = format!(
        "import imaplib, poplib\n\
         m = imaplib.IMAP4('{ip}')\nm.login('{MAIL_USER}', '{PASSWORD}')\nm.select('INBOX')\n\
         m.fetch('1', '(RFC822)')\nm.logout()\n\
         p = poplib.POP3('{ip}')\np.user('{MAIL_USER}')\np.pass_('{PASSWORD}')\n\
         p.retr(1)\np.quit()\n"
    );
    let out = run(Command::new("python3").args(["-c", &script]));
    assert!(out.status.success(), "imaplib/poplib: {out:?}");
}

/// An RDP client's connection request with the `mstshash` cookie of `user`, sent to a
/// listener on 3389 in the namespace (no RDP server runs here; the request is what names the
/// user, and tshark dissects it on its own).
pub fn rdp_connection_request(in_ns: impl Fn(&str) -> Command, ip: &str, user: &str) {
    let listener = format!(
        "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('{ip}', 3389))\ns.listen(1)\ns.settimeout(20)\nc, _ = s.accept()\n\
         c.settimeout(5)\nc.recv(4096)\n\
         c.sendall(bytes.fromhex('0300001306d00000123400020f080001000000'))\nc.close()\n"
    );
    let mut server = in_ns("python3");
    let mut server = spawn(server.args(["-c", &listener]));
    assert!(
        wait_until(Duration::from_secs(20), || {
            let out = run(in_ns("ss").args(["-Hltn", "sport = :3389"]));
            !out.stdout.is_empty()
        }),
        "the RDP listener did not start"
    );
    let client = format!(
        "import socket\ncookie = b'Cookie: mstshash={user}\\r\\n'\n\
         neg = bytes([1, 0, 8, 0, 3, 0, 0, 0])\nx224 = bytes([0xe0, 0, 0, 0, 0, 0]) + cookie + neg\n\
         x224 = bytes([len(x224)]) + x224\ntpkt = bytes([3, 0]) + (len(x224) + 4).to_bytes(2, 'big') + x224\n\
         c = socket.create_connection(('{ip}', 3389), timeout=10)\nc.sendall(tpkt)\nc.recv(4096)\nc.close()\n"
    );
    let out = run(Command::new("python3").args(["-c", &client]));
    assert!(out.status.success(), "RDP client: {out:?}");
    let _ = server.0.as_mut().map(std::process::Child::wait);
}

/// A SIP phone's `REGISTER` for `user` over UDP to 5060 in the namespace, as a softphone
/// sends it (no SIP server runs here; the request names the user, and tshark dissects it).
pub fn sip_register(ip: &str, user: &str) {
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind(('0.0.0.0', 0))\nport = s.getsockname()[1]\n\
         msg = ('REGISTER sip:{ip} SIP/2.0\\r\\n'\n\
         f'Via: SIP/2.0/UDP 10.0.0.1:{{port}};branch=z9hG4bK776asdhds\\r\\n'\n\
         'Max-Forwards: 70\\r\\n'\n\
         'To: <sip:{user}@{ip}>\\r\\n'\n\
         'From: \"Desk phone\" <sip:{user}@{ip}>;tag=1928301774\\r\\n'\n\
         'Call-ID: a84b4c76e66710@pc33\\r\\nCSeq: 1 REGISTER\\r\\n'\n\
         f'Contact: <sip:{user}@10.0.0.1:{{port}}>\\r\\nContent-Length: 0\\r\\n\\r\\n')\n\
         s.sendto(msg.encode(), ('{ip}', 5060))\n"
    );
    let out = run(Command::new("python3").args(["-c", &script]));
    assert!(out.status.success(), "SIP REGISTER: {out:?}");
}

/// vsftpd serving `pub/fw.bin` to anonymous users and taking uploads into `pub/`.
#[derive(Debug)]
pub struct Vsftpd {
    _server: Server,
}

impl Vsftpd {
    pub fn start(in_ns: impl Fn(&str) -> Command, ip: &str, dir: &Path) -> Self {
        let root = dir.join("root");
        let public = root.join("pub");
        std::fs::create_dir_all(&public).unwrap();
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        std::fs::write(public.join("fw.bin"), "firmware v2\n").unwrap();
        // Anonymous users are `daemon` here (a system user with a home), and may write pub/.
        let out = run(Command::new("chown").arg("daemon").arg(&public));
        assert!(out.status.success(), "chown: {out:?}");
        let conf = dir.join("vsftpd.conf");
        std::fs::write(
            &conf,
            format!(
                "listen=YES\nlisten_address={ip}\nanonymous_enable=YES\nanon_root={}\n\
                 anon_upload_enable=YES\nwrite_enable=YES\nlocal_enable=NO\npasv_enable=YES\n\
                 port_enable=YES\nconnect_from_port_20=NO\nseccomp_sandbox=NO\n\
                 secure_chroot_dir={}\nbackground=NO\nxferlog_enable=NO\nftp_username=daemon\n",
                root.display(),
                dir.join("empty").display()
            ),
        )
        .unwrap();
        let log = dir.join("log");
        let server = Server::spawn(in_ns("vsftpd").arg(&conf), &log);
        await_port(ip, 21, "vsftpd", &log);
        Vsftpd { _server: server }
    }
}

/// curl against vsftpd: `fw.bin` in passive mode (EPSV) and in active mode (EPRT), and an
/// upload of `report-up.txt` in passive mode.
pub fn ftp_clients(ip: &str, dir: &Path) {
    let url = format!("ftp://{ip}/pub/");
    for mode in [&["--ftp-pasv"][..], &["-P", "-"]] {
        let out = run(Command::new("curl")
            .arg("-sS")
            .args(mode)
            .arg(format!("{url}fw.bin")));
        assert!(out.status.success(), "curl ftp {mode:?}: {out:?}");
        assert_eq!(out.stdout, b"firmware v2\n");
    }
    let up = dir.join("report-up.txt");
    std::fs::write(&up, "uploaded\n").unwrap();
    let out = run(Command::new("curl").args(["-sS", "-T"]).arg(&up).arg(&url));
    assert!(out.status.success(), "curl ftp upload: {out:?}");
}

/// The MS-SQL login impacket's client sends in the clear.
pub const TDS_USER: &str = "sa_report";

/// impacket's MS-SQL client logging in as [`TDS_USER`] to a listener on 1433 in the namespace
/// that answers its pre-login with "encryption not supported" (no MS-SQL server runs on
/// Debian), so that the LOGIN7 message travels in the clear, as it does to old servers.
pub fn tds_login(in_ns: impl Fn(&str) -> Command, ip: &str) {
    // The pre-login answer: VERSION, ENCRYPTION (2: not supported), INSTOPT, THREADID.
    let listener = format!(
        "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('{ip}', 1433))\ns.listen(1)\ns.settimeout(20)\nc, _ = s.accept()\nc.settimeout(5)\n\
         c.recv(4096)\n\
         t = bytes([0, 0, 21, 0, 6, 1, 0, 27, 0, 1, 2, 0, 28, 0, 1, 3, 0, 29, 0, 4, 0xff])\n\
         t += bytes([15, 0, 7, 0xd0, 0, 0, 2, 0, 0, 0, 0, 0])\n\
         c.sendall(bytes([4, 1]) + (len(t) + 8).to_bytes(2, 'big') + bytes([0, 0, 1, 0]) + t)\n\
         c.recv(4096)\nc.close()\n"
    );
    let mut server = in_ns("python3");
    let mut server = spawn(server.args(["-c", &listener]));
    assert!(
        wait_until(Duration::from_secs(20), || {
            !run(in_ns("ss").args(["-Hltn", "sport = :1433"]))
                .stdout
                .is_empty()
        }),
        "the TDS listener did not start"
    );
    let client = format!(
        "from impacket import tds\nms = tds.MSSQL('{ip}', 1433)\nms.connect()\n\
         try:\n    ms.login(None, '{TDS_USER}', '{PASSWORD}')\nexcept Exception:\n    pass\n"
    );
    // Debian's python, where python3-impacket is installed.
    let out = run(Command::new("/usr/bin/python3").args(["-c", &client]));
    assert!(out.status.success(), "impacket TDS client: {out:?}");
    let _ = server.0.as_mut().map(std::process::Child::wait);
}

/// The directory's administrator DN.
pub const LDAP_ADMIN: &str = "cn=admin,dc=lab,dc=test";

/// OpenLDAP's slapd with one database, `dc=lab,dc=test`, its administrator [`LDAP_ADMIN`].
#[derive(Debug)]
pub struct Slapd {
    _server: Server,
}

impl Slapd {
    pub fn start(in_ns: impl Fn(&str) -> Command, ip: &str, dir: &Path) -> Self {
        let db = dir.join("db");
        std::fs::create_dir_all(&db).unwrap();
        let conf = dir.join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\nmodulepath /usr/lib/ldap\n\
                 moduleload back_mdb\npidfile {}/pid\ndatabase mdb\n\
                 suffix \"dc=lab,dc=test\"\nrootdn \"{LDAP_ADMIN}\"\nrootpw {PASSWORD}\n\
                 directory {}\n",
                dir.display(),
                db.display()
            ),
        )
        .unwrap();
        let log = dir.join("log");
        let server = Server::spawn(
            in_ns("slapd")
                .args(["-d", "0", "-h", &format!("ldap://{ip}:389/"), "-f"])
                .arg(&conf),
            &log,
        );
        await_port(ip, 389, "slapd", &log);
        Slapd { _server: server }
    }
}

/// `ldapsearch` with a simple bind as [`LDAP_ADMIN`], then with a SASL NTLM bind as
/// [`MAIL_USER`] (which the directory refuses; the bind is what is looked for).
pub fn ldap_clients(ip: &str) {
    let url = format!("ldap://{ip}");
    let out = run(Command::new("ldapsearch").args([
        "-x",
        "-H",
        &url,
        "-D",
        LDAP_ADMIN,
        "-w",
        PASSWORD,
        "-b",
        "dc=lab,dc=test",
    ]));
    // 32: no such object (the directory is empty), after a successful bind.
    assert!(
        matches!(out.status.code(), Some(0 | 32)),
        "ldapsearch -x: {out:?}"
    );
    let _ = run(Command::new("ldapsearch").args([
        "-H",
        &url,
        "-Y",
        "NTLM",
        "-U",
        MAIL_USER,
        "-w",
        PASSWORD,
        "-b",
        "dc=lab,dc=test",
    ]));
}

/// Runs `cmd` with `input` on its standard input.
pub fn run_with_input(cmd: &mut Command, input: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// smbclient against the share as [`USER`], speaking `protocol` (`SMB3`, `NT1`): gets
/// `report.txt` and puts `upload-PROTOCOL.txt`.
pub fn smbclient(ip: &str, protocol: &str, dir: &Path) {
    let local = dir.join(format!("got-{protocol}.txt"));
    let out = run(Command::new("smbclient")
        .arg(format!("//{ip}/data"))
        .args(["-U", &format!("{USER}%{PASSWORD}"), "-m", protocol])
        .arg(format!("--option=client min protocol={protocol}"))
        .arg("-c")
        .arg(format!(
            "get report.txt {}; put /etc/hostname upload-{protocol}.txt",
            local.display()
        )));
    assert!(out.status.success(), "smbclient -m {protocol}: {out:?}");
    assert_eq!(
        std::fs::read_to_string(&local).unwrap(),
        "quarterly figures\n"
    );
}

/// rpcclient's `lsaquery` over TCP as [`USER`]: the endpoint mapper on 135, then a bind to
/// the LSA interface's dynamic port signed with NTLMSSP.
pub fn rpcclient_tcp(ip: &str) {
    // The server may refuse the call; the authenticated bind is what is looked for.
    let _ = run(Command::new("rpcclient")
        .arg(format!("ncacn_ip_tcp:{ip}[sign]"))
        .args(["-U", &format!("{USER}%{PASSWORD}"), "-c", "lsaquery"]));
}

/// rpcclient's `srvinfo` (the srvsvc pipe through IPC$) as [`USER`].
pub fn rpcclient(ip: &str) {
    // The server may refuse the call itself; the pipe is opened either way, and that is what
    // is looked for.
    let _ = run(Command::new("rpcclient").arg(ip).args([
        "-U",
        &format!("{USER}%{PASSWORD}"),
        "-c",
        "srvinfo",
    ]));
}
