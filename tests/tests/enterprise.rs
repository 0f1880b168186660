//! Users, shares and file names of an enterprise network's sessions, from real servers and
//! clients (Samba with smbclient and rpcclient over SMB3 and SMB1, an MIT KDC with kinit and
//! kvno over UDP and TCP; PostgreSQL with psql, MariaDB with mariadb, FreeRADIUS with radtest,
//! tftpd-hpa with curl, Dovecot with curl, imaplib and poplib, and an RDP connection
//! request), captured live by the agent and compared with tshark's dissection of the same
//! capture: every value tshark shows is in the agent's record, and nothing else.

use std::collections::BTreeSet;

use pcap_protocol::session::{App, Transport};
use pcap_tests::enterprise::{
    self, Dovecot, Kdc, Mariadb, Postgres, Radius, Samba, Slapd, Tftp, Vsftpd, ftp_clients,
    ldap_clients, mail_clients, mariadb, psql, radtest, rdp_connection_request, rpcclient,
    rpcclient_tcp, sip_register, smbclient, tds_login, tftp,
};
use pcap_tests::net::VethPair;
use pcap_tests::{Record, Scratch, require_root, tshark_query};
use serde_json::json;

/// tshark's `-d` options: the servers are on their standard ports.
const DECODE: [&str; 0] = [];

fn set(values: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    values.into_iter().filter(|v| !v.is_empty()).collect()
}

/// A protocol compared per session: transport, server port, application, tshark's fields,
/// and the record's values they are compared with.
type Check = (
    &'static str,
    u16,
    App,
    &'static [&'static str],
    fn(&Record) -> Vec<String>,
);

/// The values tshark shows in the client's packets to `port` (TCP or UDP), per client port.
fn tshark_by_client(
    pcap: &std::path::Path,
    transport: &str,
    port: u16,
    fields: &[&str],
) -> Vec<(String, Vec<String>)> {
    let filter = format!("{transport}.dstport == {port}");
    tshark_values(pcap, &filter, &format!("{transport}.srcport"), fields)
}

/// tshark's values per client port, gathered into a set each.
fn sets_by_port(
    rows: &[(String, Vec<String>)],
) -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let mut out = std::collections::BTreeMap::<String, BTreeSet<String>>::new();
    for (port, values) in rows {
        out.entry(port.clone())
            .or_default()
            .extend(values.iter().cloned());
    }
    out
}

/// The record of the TCP session from the client's port `client` to the server's `server`
/// port (an ephemeral port is used again by later sessions of other protocols).
fn tcp_session<'a>(records: &'a [Record], client: &str, server: u16) -> Option<&'a Record> {
    records.iter().find(|r| {
        r.protocol == Transport::Tcp
            && r.destination().1 == Some(server)
            && r.source().1.map(|p| p.to_string()).as_deref() == Some(client)
    })
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
    rpcclient_tcp(&ip);
    kdc.login(&kdc.krb5_conf, &s.path("kdc"));
    kdc.login(&kdc.krb5_conf_tcp, &s.path("kdc"));
    let stopped = agent.post_delete(&id);
    let by_app = &stopped["sessions"]["by_application"];
    assert!(by_app["smb"].as_u64().unwrap_or(0) >= 3, "{by_app}");
    assert!(by_app["kerberos"].as_u64().unwrap_or(0) >= 2, "{by_app}");

    let records = s.session_records(&id);
    let pcap = s.decrypt(&s.segments(&id)[0]);
    pcap_tests::keep_capture(&pcap, "enterprise-smb-kerberos");

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

    // DCE/RPC over TCP: the NTLMSSP user of the authenticated bind, on the dynamic port the
    // endpoint mapper gave (tshark follows the mapper's answer to name it).
    let rpc_users: Vec<(String, Vec<String>)> = users
        .iter()
        .filter(|(port, _)| {
            !smb.iter()
                .any(|r| r.source().1.map(|p| p.to_string()).as_ref() == Some(port))
        })
        .cloned()
        .collect();
    assert!(
        !rpc_users.is_empty(),
        "tshark shows the bind's user: {users:?}"
    );
    for (port, v) in &rpc_users {
        let r = records
            .iter()
            .find(|r| {
                r.protocol == Transport::Tcp
                    && r.destination().1 != Some(enterprise::SMB_PORT)
                    && r.source().1.map(|p| p.to_string()).as_ref() == Some(port)
            })
            .unwrap_or_else(|| panic!("a record from {port}"));
        assert_eq!(r.application(), Some(App::Dcerpc), "{r:?}");
        let want = set(v.chunks(2).map(|c| format!("{}\\{}", c[0], c[1])));
        assert_eq!(set(r.users().to_vec()), want, "DCE/RPC from {port}");
    }
    assert!(
        records
            .iter()
            .any(|r| r.application() == Some(App::Dcerpc) && r.destination().1 == Some(135)),
        "the endpoint mapper session is named"
    );

    // Kerberos: per session, the client principals of AS-REQ, AS-REP and TGS-REP (and the
    // KRB-ERROR asking for pre-authentication), over UDP and TCP.
    let mut krb = std::collections::BTreeMap::<String, BTreeSet<String>>::new();
    for row in tshark_query(
        &pcap,
        &DECODE,
        "kerberos.CNameString",
        &[
            "udp.srcport",
            "tcp.srcport",
            "udp.dstport",
            "tcp.dstport",
            "kerberos.CNameString",
        ],
    ) {
        let (src, dst) = (row[0].clone() + &row[1], row[2].clone() + &row[3]);
        let client = if src == "88" { dst } else { src };
        let names = krb.entry(client).or_default();
        for name in row[4].split(',').filter(|n| !n.is_empty()) {
            names.insert(format!("{name}@{}", pcap_tests::enterprise::REALM));
        }
    }
    assert!(krb.len() >= 4, "{krb:?}");
    for (client, names) in &krb {
        let r = records
            .iter()
            .find(|r| {
                r.application() == Some(App::Kerberos)
                    && r.source().1.map(|p| p.to_string()).as_ref() == Some(client)
            })
            .unwrap_or_else(|| panic!("a Kerberos record from {client}"));
        assert_eq!(&set(r.users().to_vec()), names, "Kerberos from {client}");
    }
    let kerberos: Vec<&Record> = records
        .iter()
        .filter(|r| r.application() == Some(App::Kerberos))
        .collect();
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

#[test]
fn database_mail_radius_tftp_and_rdp_logins_agree_with_tshark() {
    require_root!(
        "database, mail, RADIUS and TFTP servers in a test network namespace and a live capture"
    );
    let pair = VethPair::create();
    let s = Scratch::with_interfaces(&[&pair.host_if], "");
    s.authorize();
    let agent = s.start_agent();
    let ip = pair.ns_ip.clone();
    let in_ns = |p: &str| pair.in_ns(p);
    let _pg = Postgres::start(in_ns, &ip, &s.path("pg"));
    let _my = Mariadb::start(in_ns, &ip, &s.path("mariadb"));
    let _radius = Radius::start(in_ns, &pair.host_ip, &s.path("radius"));
    let _tftp = Tftp::start(in_ns, &ip, &s.path("tftp"));
    let _mail = Dovecot::start(in_ns, &ip, &s.path("dovecot"));
    let _ldap = Slapd::start(in_ns, &ip, &s.path("ldap"));
    let _ftp = Vsftpd::start(in_ns, &ip, &s.path("ftp"));
    let message = s.path("message.eml");
    std::fs::write(
        &message,
        "From: Bob <bob@lab.test>\r\nTo: alice@lab.test\r\nCc: carol@lab.test\r\n\
         Subject: Quarterly =?UTF-8?Q?r=C3=A9sults?=\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain\r\n\r\nsee attached\r\n--b1\r\n\
         Content-Type: application/pdf; name=\"q3.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"q3.pdf\"\r\n\r\nJVBERi0xLjQ=\r\n--b1--\r\n",
    )
    .unwrap();

    let capture = agent.start_capture_ok(&json!({"interface": pair.host_if, "filter": "", "reason": "unknown_application", "limits": {"max_duration": "120s"}}));
    let id = capture["id"].as_str().unwrap().to_owned();
    psql(&ip);
    mariadb(&ip);
    radtest(&ip);
    tftp(&ip, &s.path("tftp"));
    mail_clients(&ip, &message);
    rdp_connection_request(in_ns, &ip, "jdoe");
    ldap_clients(&ip);
    sip_register(&ip, "1001");
    tds_login(in_ns, &ip);
    ftp_clients(&ip, &s.path("ftp"));
    let stopped = agent.post_delete(&id);
    let by_app = &stopped["sessions"]["by_application"];
    for (app, least) in [
        ("postgresql", 1),
        ("mysql", 1),
        ("radius", 1),
        ("tftp", 2),
        ("imap", 3),
        ("pop3", 2),
        ("rdp", 1),
        ("ldap", 2),
        ("tds", 1),
        ("ftp", 3),
        ("ftp-data", 3),
    ] {
        assert!(
            by_app[app].as_u64().unwrap_or(0) >= least,
            "{app}: {by_app}"
        );
    }
    let records = s.session_records(&id);
    let pcap = s.decrypt(&s.segments(&id)[0]);
    pcap_tests::keep_capture(&pcap, "enterprise-logins");

    // For each protocol, per client port: the users (or file names) tshark shows in the
    // client's packets are the record's.
    let mut compared = 0;
    let checks: [Check; 7] = [
        (
            "tcp",
            5432,
            App::Postgresql,
            &["pgsql.parameter_name", "pgsql.parameter_value"],
            |r| r.users().to_vec(),
        ),
        ("tcp", 3306, App::Mysql, &["mysql.user"], |r| {
            r.users().to_vec()
        }),
        ("udp", 1812, App::Radius, &["radius.User_Name"], |r| {
            r.users().to_vec()
        }),
        (
            "udp",
            69,
            App::Tftp,
            &["tftp.source_file", "tftp.destination_file"],
            |r| r.filenames().to_vec(),
        ),
        ("tcp", 3389, App::Rdp, &["rdp.rt_cookie"], |r| {
            r.users().to_vec()
        }),
        ("udp", 5060, App::Sip, &["sip.from.user"], |r| {
            r.users().to_vec()
        }),
        ("tcp", 1433, App::Tds, &["tds.7login.username"], |r| {
            r.users().to_vec()
        }),
    ];
    for (transport, port, app, fields, of) in checks {
        let rows = tshark_by_client(&pcap, transport, port, fields);
        let wanted = sets_by_port(&rows);
        assert!(!wanted.is_empty(), "tshark shows {app} values: {rows:?}");
        for (client, values) in wanted {
            let values: BTreeSet<String> = match app {
                // `name,name,...` then `value,value,...`: the value of `user`.
                App::Postgresql => rows
                    .iter()
                    .filter(|(p, _)| *p == client)
                    .flat_map(|(_, row)| {
                        let (names, vals) = row.split_at(row.len() / 2);
                        names
                            .iter()
                            .zip(vals)
                            .filter(|(n, _)| *n == "user")
                            .map(|(_, v)| v.clone())
                            .collect::<Vec<_>>()
                    })
                    .collect(),
                App::Rdp => values
                    .iter()
                    .filter_map(|c| {
                        c.trim()
                            .strip_prefix("Cookie: mstshash=")
                            .map(str::to_owned)
                    })
                    .collect(),
                _ => values,
            };
            let record = records
                .iter()
                .find(|r| {
                    r.source().1.map(|p| p.to_string()) == Some(client.clone())
                        && r.destination().1 == Some(port)
                })
                .unwrap_or_else(|| panic!("a record of {app} from port {client}"));
            assert_eq!(record.application(), Some(app));
            assert_eq!(set(of(record)), values, "{app} from {client}");
            compared += 1;
        }
    }
    assert!(compared >= 6, "{compared}");
    // The TFTP transfers, from the server's new port, are named too, with the request's file
    // (tshark shows it on the transfer's packets).
    let transfers = tshark_values(
        &pcap,
        "tftp && udp.srcport != 69 && udp.dstport != 69",
        "udp.dstport",
        &["tftp.source_file", "tftp.destination_file"],
    );
    let transfers = sets_by_port(&transfers);
    assert!(transfers.len() >= 2, "{transfers:?}");
    for (client, files) in &transfers {
        let r = records
            .iter()
            .find(|r| {
                r.application() == Some(App::Tftp)
                    && r.destination().1 != Some(69)
                    && (r.source().1.map(|p| p.to_string()).as_ref() == Some(client)
                        || r.destination().1.map(|p| p.to_string()).as_ref() == Some(client))
            })
            .unwrap_or_else(|| panic!("the TFTP transfer to {client}: {records:#?}"));
        assert_eq!(
            &set(r.filenames().to_vec()),
            files,
            "TFTP transfer to {client}"
        );
    }

    // FTP: each data connection (passive, active, upload) is ftp-data with the file its
    // control connection's RETR or STOR named; tshark's ftp-data sessions are all among them.
    let data: Vec<&Record> = records
        .iter()
        .filter(|r| r.application() == Some(App::FtpData))
        .collect();
    let control_files: BTreeSet<String> = records
        .iter()
        .filter(|r| r.application() == Some(App::Ftp))
        .flat_map(|r| r.filenames().to_vec())
        .collect();
    let requested = set(tshark_values(
        &pcap,
        "ftp.request.command == \"RETR\" || ftp.request.command == \"STOR\"",
        "tcp.srcport",
        &["ftp.request.arg"],
    )
    .into_iter()
    .flat_map(|(_, v)| v));
    assert_eq!(control_files, requested, "the control connections' files");
    assert_eq!(data.len(), 3, "{data:#?}");
    let data_files: Vec<Vec<String>> = data.iter().map(|r| r.filenames().to_vec()).collect();
    for files in &data_files {
        assert_eq!(files.len(), 1, "{data_files:?}");
        assert!(requested.contains(&files[0]), "{files:?} in {requested:?}");
    }
    for (client, _) in tshark_values(&pcap, "ftp-data", "tcp.srcport", &["tcp.dstport"]) {
        assert!(
            data.iter().any(|r| {
                let ports = [r.source().1, r.destination().1];
                ports
                    .iter()
                    .any(|p| p.map(|p| p.to_string()).as_ref() == Some(&client))
            }),
            "tshark's ftp-data session from {client} is ftp-data in the records"
        );
    }

    // LDAP: a simple bind's DN, a SASL bind's NTLMSSP user.
    let mut ldap_users = std::collections::BTreeMap::<String, BTreeSet<String>>::new();
    for row in tshark_query(
        &pcap,
        &DECODE,
        "ldap.protocolOp == 0",
        &[
            "tcp.srcport",
            "ldap.name",
            "ntlmssp.auth.domain",
            "ntlmssp.auth.username",
        ],
    ) {
        let users = ldap_users.entry(row[0].clone()).or_default();
        if !row[1].is_empty() {
            users.insert(row[1].clone());
        }
        match (row[2].as_str(), row[3].as_str()) {
            (_, "") => {}
            ("", user) => {
                users.insert(user.to_owned());
            }
            (domain, user) => {
                users.insert(format!("{domain}\\{user}"));
            }
        }
    }
    assert!(ldap_users.len() >= 2, "{ldap_users:?}");
    assert!(
        ldap_users
            .values()
            .any(|u| u.contains(enterprise::LDAP_ADMIN)),
        "{ldap_users:?}"
    );
    for (client, users) in &ldap_users {
        let r = tcp_session(&records, client, 389)
            .unwrap_or_else(|| panic!("a record of LDAP from {client}"));
        assert_eq!(r.application(), Some(App::Ldap));
        assert_eq!(&set(r.users().to_vec()), users, "LDAP from {client}");
    }

    // Mail: the users of IMAP LOGIN and POP3 USER as tshark shows them; the SASL PLAIN
    // logins (tshark does not decode them) give the one user that logged in.
    let imap = sets_by_port(&tshark_by_client(
        &pcap,
        "tcp",
        143,
        &["imap.request.username"],
    ));
    let pop_rows = tshark_values(
        &pcap,
        "tcp.dstport == 110 && pop.request.command == \"USER\"",
        "tcp.srcport",
        &["pop.request.parameter"],
    );
    let pop = sets_by_port(&pop_rows);
    assert!(
        imap.values().any(|u| !u.is_empty()) && !pop.is_empty(),
        "{imap:?} {pop:?}"
    );
    for (port, app, shown, request) in [
        (143, App::Imap, &imap, "imap.request"),
        (110, App::Pop3, &pop, "pop.request.command"),
    ] {
        // The sessions that carried requests (not a readiness check's closing handshake).
        let mut clients = sets_by_port(&tshark_by_client(&pcap, "tcp", port, &[request]));
        clients.retain(|_, requests| !requests.is_empty());
        assert!(clients.len() >= 2, "{app}: {clients:?}");
        for client in clients.keys() {
            let r = by_client_port(&records, port)
                .into_iter()
                .find(|r| r.source().1.map(|p| p.to_string()).as_ref() == Some(client))
                .unwrap_or_else(|| panic!("a record of {app} from {client}"));
            assert_eq!(r.application(), Some(app));
            let want = shown
                .get(client)
                .filter(|u| !u.is_empty())
                .cloned()
                .unwrap_or_else(|| BTreeSet::from([enterprise::MAIL_USER.to_owned()]));
            assert_eq!(set(r.users().to_vec()), want, "{app} from {client}");
        }
    }

    // Mail fields of the messages appended and fetched: where tshark dissects the message
    // (IMAP FETCH answers), its From, To, Cc, Subject and attachment are the record's; where
    // it does not (APPEND, POP3 RETR), the record holds the message the test sent.
    let sent = |r: &Record| {
        (
            r.email_sender().map(str::to_owned),
            set(r.email_recipients().to_vec()),
            r.email_subject().map(str::to_owned),
            set(r.filenames().to_vec()),
        )
    };
    let the_message = (
        Some("bob@lab.test".to_owned()),
        set(["alice@lab.test".to_owned(), "carol@lab.test".to_owned()]),
        Some("Quarterly résults".to_owned()),
        set(["q3.pdf".to_owned()]),
    );
    let imf = tshark_values(
        &pcap,
        "imf && tcp.srcport == 143",
        "tcp.dstport",
        &[
            "imf.from",
            "imf.to",
            "imf.cc",
            "imf.subject",
            "mime_multipart.header.content-disposition",
        ],
    );
    assert!(imf.len() >= 2, "tshark reads the fetched messages: {imf:?}");
    for (client, v) in &imf {
        let r = tcp_session(&records, client, 143)
            .unwrap_or_else(|| panic!("the IMAP session from {client}"));
        assert_eq!(v[0], "Bob <bob@lab.test>");
        assert_eq!(
            v[3], "Quarterly =?UTF-8?Q?r=C3=A9sults?=",
            "decoded in the record"
        );
        let tshark_view = (
            Some("bob@lab.test".to_owned()),
            set([v[1].clone(), v[2].clone()]),
            Some("Quarterly résults".to_owned()),
            set(v[4..]
                .iter()
                .filter_map(|d| d.split_once("filename=\""))
                .map(|(_, f)| f.trim_end_matches('"').to_owned())),
        );
        assert_eq!(sent(r), tshark_view, "IMAP fetch from {client}");
    }
    let unread: Vec<&Record> = records
        .iter()
        .filter(|r| {
            let port = r.source().1.map(|p| p.to_string());
            let fetched = r.application() == Some(App::Imap)
                && imf.iter().any(|(c, _)| Some(c) == port.as_ref());
            matches!(r.application(), Some(App::Imap | App::Pop3))
                && !fetched
                && !r.users().is_empty()
        })
        .collect();
    // The APPEND, and the two POP3 sessions' RETR.
    assert!(unread.len() >= 3, "{unread:#?}");
    for r in unread {
        assert_eq!(sent(r), the_message, "{r:?}");
    }
}
