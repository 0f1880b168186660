//! Users, shares and file names of an enterprise network's sessions, from real servers and
//! clients (Samba with smbclient and rpcclient over SMB3 and SMB1, an MIT KDC with kinit and
//! kvno over UDP and TCP), captured live by the agent and compared with tshark's dissection
//! of the same capture: every value tshark shows is in the agent's record, and nothing else.

use std::collections::BTreeSet;

use pcap_protocol::session::{App, Transport};
use pcap_tests::enterprise::{Kdc, Samba, rpcclient, smbclient};
use pcap_tests::net::VethPair;
use pcap_tests::{Record, Scratch, require_root, tshark_query};
use serde_json::json;

/// tshark's `-d` options: the servers are on their standard ports.
const DECODE: [&str; 0] = [];

fn set(values: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    values.into_iter().filter(|v| !v.is_empty()).collect()
}

/// The records of TCP or UDP sessions to `port` of the server, by the client's port.
fn by_client_port(records: &[Record], port: u16) -> Vec<&Record> {
    records
        .iter()
        .filter(|r| r.destination().1 == Some(port))
        .collect()
}

/// tshark's values of `field` (split where it aggregated several), per client port, in the
/// packets `filter` selects.
fn tshark_values(
    pcap: &std::path::Path,
    filter: &str,
    port_field: &str,
    fields: &[&str],
) -> Vec<(String, Vec<String>)> {
    let mut wanted = vec![port_field];
    wanted.extend_from_slice(fields);
    tshark_query(pcap, &DECODE, filter, &wanted)
        .into_iter()
        .map(|row| {
            let values = row[1..]
                .iter()
                .flat_map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>())
                .filter(|v| !v.is_empty())
                .collect();
            (row[0].clone(), values)
        })
        .collect()
}

#[test]
fn smb_and_kerberos_users_shares_and_files_agree_with_tshark() {
    require_root!("Samba and a KDC in a test network namespace and a live capture");
    let pair = VethPair::create();
    let s = Scratch::with_interfaces(&[&pair.host_if], "");
    s.authorize();
    let agent = s.start_agent();
    let ip = pair.ns_ip.clone();
    let _samba = Samba::start(|p| pair.in_ns(p), &ip, &s.path("samba"));
    let kdc = Kdc::start(|p| pair.in_ns(p), &ip, &s.path("kdc"));

    let capture = agent.start_capture_ok(&json!({"interface": pair.host_if, "filter": "", "reason": "unknown_application", "limits": {"max_duration": "120s"}}));
    let id = capture["id"].as_str().unwrap().to_owned();
    smbclient(&ip, "SMB3", &s.path("samba"));
    smbclient(&ip, "NT1", &s.path("samba"));
    rpcclient(&ip);
    kdc.login(&kdc.krb5_conf, &s.path("kdc"));
    kdc.login(&kdc.krb5_conf_tcp, &s.path("kdc"));
    let stopped = agent.post_delete(&id);
    let by_app = &stopped["sessions"]["by_application"];
    assert!(by_app["smb"].as_u64().unwrap_or(0) >= 3, "{by_app}");
    assert!(by_app["kerberos"].as_u64().unwrap_or(0) >= 2, "{by_app}");

    let records = s.session_records(&id);
    let pcap = s.decrypt(&s.segments(&id)[0]);

    // SMB: per session, the NTLMSSP user (DOMAIN\user), the shares and the file names of the
    // client's requests.
    let smb = by_client_port(&records, 445);
    assert!(smb.len() >= 3, "{smb:#?}");
    let users = tshark_values(
        &pcap,
        "ntlmssp.messagetype == 3",
        "tcp.srcport",
        &["ntlmssp.auth.domain", "ntlmssp.auth.username"],
    );
    let trees = tshark_values(
        &pcap,
        "(smb2.cmd == 3 && smb2.flags.response == 0) || (smb.cmd == 0x75 && smb.flags.response == 0)",
        "tcp.srcport",
        &["smb2.tree", "smb.path"],
    );
    let files = tshark_values(
        &pcap,
        "(smb2 && smb2.flags.response == 0) || (smb && smb.flags.response == 0)",
        "tcp.srcport",
        &["smb2.filename", "smb.file"],
    );
    let mut compared = 0;
    for r in &smb {
        assert_eq!(r.application(), Some(App::Smb));
        let port = r.source().1.unwrap().to_string();
        let of = |rows: &[(String, Vec<String>)]| -> Vec<String> {
            rows.iter()
                .filter(|(p, _)| *p == port)
                .flat_map(|(_, v)| v.clone())
                .collect()
        };
        let login = of(&users);
        let want_users = set(login.chunks(2).map(|c| format!("{}\\{}", c[0], c[1])));
        assert_eq!(set(r.users().to_vec()), want_users, "users of {port}");
        let want_urls = set(of(&trees).iter().map(|t| {
            let rest = t.trim_start_matches('\\');
            let (server, share) = rest.split_once('\\').unwrap();
            format!("smb://{server}/{share}")
        }));
        assert_eq!(set(r.urls().to_vec()), want_urls, "shares of {port}");
        assert_eq!(
            set(r.filenames().to_vec()),
            set(of(&files)),
            "files of {port}"
        );
        compared += 1;
    }
    assert!(compared >= 3);
    let all_files: BTreeSet<String> = smb.iter().flat_map(|r| r.filenames().to_vec()).collect();
    for wanted in ["report.txt", "upload-SMB3.txt", "\\report.txt", "srvsvc"] {
        assert!(all_files.contains(wanted), "{wanted} in {all_files:?}");
    }

    // Kerberos: the client principal of AS-REQ, AS-REP and TGS-REP, over UDP and TCP.
    let krb = tshark_values(
        &pcap,
        "kerberos.CNameString",
        "ip.src",
        &[
            "kerberos.CNameString",
            "kerberos.crealm",
            "kerberos.realm",
            "kerberos.msg_type",
        ],
    );
    assert!(krb.len() >= 6, "{krb:?}");
    let kerberos: Vec<&Record> = records
        .iter()
        .filter(|r| r.application() == Some(App::Kerberos))
        .collect();
    assert!(kerberos.len() >= 3, "{kerberos:#?}");
    let agent_users: BTreeSet<String> = kerberos.iter().flat_map(|r| r.users().to_vec()).collect();
    let tshark_users: BTreeSet<String> = krb
        .iter()
        .map(|(_, v)| format!("{}@{}", v[0], pcap_tests::enterprise::REALM))
        .collect();
    assert_eq!(agent_users, tshark_users);
    assert!(
        kerberos
            .iter()
            .any(|r| r.protocol == Transport::Tcp && !r.users().is_empty())
            && kerberos
                .iter()
                .any(|r| r.protocol == Transport::Udp && !r.users().is_empty()),
        "both transports give the user: {kerberos:#?}"
    );
}
