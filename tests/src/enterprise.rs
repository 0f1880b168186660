//! The servers of an enterprise network for the session tests, run for real in a test
//! namespace: Samba (SMB1 and SMB2/3, NTLM logins, a share and the IPC$ pipes) and an MIT
//! Kerberos KDC, each in its own scratch directory, stopped when dropped.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::clients::{port_open, spawn};
use crate::{ChildGuard, run, wait_until};

/// Samba's SMB port and the KDC's (UDP and TCP).
pub const SMB_PORT: u16 = 445;
pub const KDC_PORT: u16 = 88;
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
                 map to guest = never\n[data]\n  path = {d}/share\n  read only = no\n"
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
        Samba { _child: child }
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
