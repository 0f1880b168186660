//! Session information end to end, as root: real clients (curl, openssl s_client, Python's
//! smtplib, dig) talk to real servers in a test namespace while the agent captures; every
//! field of every session is compared with what tshark dissects from the same decrypted pcap.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use pcap_protocol::session::{App, Field};
use pcap_tests::clients::{DECODE_AS, Servers, port_open, run_clients, spawn};
use pcap_tests::net::VethPair;
use pcap_tests::{
    Scratch, find_session as find, fixture, require_root, run, tshark_query, wait_until,
};
use serde_json::{Value, json};

fn strings(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

#[test]
fn fields_of_real_sessions_agree_with_tshark() {
    require_root!("servers in a test network namespace and a live capture");
    let pair = VethPair::create();
    let s = Scratch::with_interfaces(&[&pair.host_if], "");
    s.authorize();
    let agent = s.start_agent();
    let ns_ip = pair.ns_ip.clone();

    let _servers = Servers::start(|p| pair.in_ns(p), &ns_ip, &s.path("tls"));

    let capture = agent.start_capture_ok(&json!({"interface": pair.host_if, "filter": "", "reason": "unknown_application", "limits": {"max_duration": "60s"}}));
    let id = capture["id"].as_str().unwrap().to_owned();

    run_clients(&ns_ip);

    let stopped = agent.post_delete(&id);
    let by_app = &stopped["sessions"]["by_application"];
    for app in ["http", "tls", "smtp", "dns"] {
        assert!(by_app[app].as_u64().unwrap_or(0) >= 1, "{app} in {by_app}");
    }
    assert!(
        stopped.get("sessions").unwrap().get("records").is_none(),
        "the record shows counts, not fields"
    );

    let records = s.session_records(&id);
    let pcap = s.decrypt(&s.segments(&id)[0]);
    let decode = DECODE_AS;

    // HTTP: URL from Host and the request target, the Basic user, the file names.
    let http = tshark_query(
        &pcap,
        &decode,
        "http.request",
        &[
            "ip.src",
            "tcp.srcport",
            "ip.dst",
            "tcp.dstport",
            "http.host",
            "http.request.uri",
            "http.authbasic",
        ],
    );
    assert_eq!(http.len(), 2, "{http:?}");
    for row in &http {
        let r = find(&records, &row[0], &row[1], &row[2], &row[3]);
        assert_eq!(r.application(), Some(App::Http));
        assert_eq!(r.urls(), [format!("http://{}{}", row[4], row[5])]);
        if let Some((user, _)) = row[6].split_once(':') {
            assert_eq!(strings(r.users()), BTreeSet::from([user.to_owned()]));
        }
    }
    let disposition = tshark_query(
        &pcap,
        &decode,
        "http.response",
        &["tcp.dstport", "http.response.line"],
    );
    let download = disposition
        .iter()
        .find(|r| r[1].contains("Content-Disposition"))
        .expect("a disposition header");
    let r = records
        .iter()
        .find(|r| r.source().1.map(|p| p.to_string()).as_deref() == Some(download[0].as_str()))
        .unwrap();
    assert!(download[1].contains("fw-v2.bin"));
    assert_eq!(
        strings(r.filenames()),
        BTreeSet::from(["fw.bin".to_owned(), "fw-v2.bin".to_owned()])
    );

    // TLS: SNI and ALPN of the ClientHello.
    let hello = tshark_query(
        &pcap,
        &decode,
        "tls.handshake.type == 1",
        &[
            "ip.src",
            "tcp.srcport",
            "ip.dst",
            "tcp.dstport",
            "tls.handshake.extensions_server_name",
            "tls.handshake.extensions_alpn_str",
        ],
    );
    assert_eq!(hello.len(), 1);
    let r = find(
        &records,
        &hello[0][0],
        &hello[0][1],
        &hello[0][2],
        &hello[0][3],
    );
    assert_eq!(r.application(), Some(App::Tls));
    assert_eq!(r.urls(), [format!("tls://{}", hello[0][4])]);
    assert_eq!(r.alpn.join(","), hello[0][5]);

    // SMTP: envelope, AUTH user, subject (RFC 2047 decoded), attachment.
    let smtp = tshark_query(
        &pcap,
        &decode,
        "smtp.req.command",
        &[
            "ip.src",
            "tcp.srcport",
            "ip.dst",
            "tcp.dstport",
            "smtp.req.command",
            "smtp.req.parameter",
        ],
    );
    let all = tshark_query(
        &pcap,
        &decode,
        "tcp.port == 2525",
        &["frame.number", "tcp.len", "_ws.col.Protocol"],
    );
    let first = smtp
        .first()
        .unwrap_or_else(|| panic!("tshark found no SMTP command; port 2525 packets: {all:?}"));
    let r = find(&records, &first[0], &first[1], &first[2], &first[3]);
    assert_eq!(r.application(), Some(App::Smtp));
    let param = |cmd: &str| -> Vec<String> {
        smtp.iter()
            .filter(|row| row[4].eq_ignore_ascii_case(cmd))
            .map(|row| {
                row[5]
                    .split_once(':')
                    .map(|(_, a)| {
                        a.trim()
                            .trim_start_matches('<')
                            .split('>')
                            .next()
                            .unwrap_or("")
                            .to_owned()
                    })
                    .unwrap_or_default()
            })
            .collect()
    };
    assert_eq!(
        r.email_sender(),
        Some(param("MAIL")[0].as_str()),
        "the first message's"
    );
    assert_eq!(
        strings(r.email_recipients()),
        param("RCPT").into_iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(r.email_recipients().len(), 4, "both messages' recipients");
    // tshark shows the AUTH PLAIN argument; its user is the second NUL-separated part.
    let plain = smtp
        .iter()
        .find(|row| row[4].eq_ignore_ascii_case("AUTH"))
        .expect("an AUTH command");
    let encoded = plain[5]
        .split_whitespace()
        .nth(1)
        .expect("AUTH PLAIN with its argument");
    let decoded = run(Command::new("python3").args([
        "-c",
        "import base64,sys;print(base64.b64decode(sys.argv[1]).split(b'\\0')[1].decode())",
        encoded,
    ]));
    let auth_user = String::from_utf8_lossy(&decoded.stdout).trim().to_owned();
    assert_eq!(strings(r.users()), BTreeSet::from([auth_user]));
    // tshark shows the Subject header with its RFC 2047 encoded words; Python's email package
    // decodes them for the comparison.
    let imf = tshark_query(
        &pcap,
        &decode,
        "imf",
        &["imf.subject", "mime_multipart.header.content-disposition"],
    );
    let decoded = run(Command::new("python3").args(["-c", "import sys;from email.header import decode_header,make_header;print(str(make_header(decode_header(sys.argv[1]))))", &imf[0][0]]));
    assert_eq!(
        r.email_subject(),
        Some(String::from_utf8_lossy(&decoded.stdout).trim())
    );
    assert_eq!(r.email_subject(), Some("Rapport d'équipement ✓ n°42"));
    // Every message of the session: the second starts after the first's 2 MiB attachment.
    let attached: BTreeSet<String> = imf
        .iter()
        .flat_map(|row| row[1].split("filename=\"").skip(1))
        .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        .collect();
    assert_eq!(imf.len(), 2, "tshark reads two messages: {imf:?}");
    assert_eq!(
        attached,
        BTreeSet::from(["scan-42.pdf".to_owned(), "boot-43.log".to_owned()])
    );
    assert_eq!(strings(r.filenames()), attached);

    // DNS: the query name.
    let dns = tshark_query(
        &pcap,
        &decode,
        "dns.flags.response == 0",
        &[
            "ip.src",
            "udp.srcport",
            "ip.dst",
            "udp.dstport",
            "dns.qry.name",
        ],
    );
    let r = find(&records, &dns[0][0], &dns[0][1], &dns[0][2], &dns[0][3]);
    assert_eq!(r.application(), Some(App::Dns));
    assert_eq!(r.urls(), [format!("dns://{}", dns[0][4])]);

    community_ids_agree_with_the_reference(&records, &pcap);
}

/// Every record's Community ID is the one Corelight's reference implementation computes for
/// its flow from the same pcap (TCP, UDP and ICMP alike).
fn community_ids_agree_with_the_reference(records: &[pcap_tests::Record], pcap: &std::path::Path) {
    let out = run(Command::new(pcap_tests::reference_python())
        .arg(fixture("community_ids.py"))
        .arg(pcap));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: Vec<Vec<String>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    let mut protocols = BTreeSet::new();
    for r in records {
        let (Some(src), sport) = r.source() else {
            panic!("a record without its source: {r:?}")
        };
        let (Some(dst), dport) = r.destination() else {
            panic!("a record without its destination: {r:?}")
        };
        let ends = |a: &str, p: &str| (a.to_owned(), p.to_owned());
        let mine = BTreeSet::from([
            ends(&src.to_string(), &sport.unwrap_or(0).to_string()),
            ends(&dst.to_string(), &dport.unwrap_or(0).to_string()),
        ]);
        let proto = r.protocol.number().to_string();
        let Some(row) = reference.iter().find(|row| {
            row[1] == proto
                && BTreeSet::from([ends(&row[2], &row[3]), ends(&row[4], &row[5])]) == mine
        }) else {
            panic!("no reference flow for {r:?} in {reference:?}")
        };
        assert_eq!(r.community_id.as_deref(), Some(row[0].as_str()), "{r:?}");
        protocols.insert(proto);
    }
    assert!(
        ["1", "6", "17"].iter().all(|p| protocols.contains(*p)),
        "ICMP, TCP and UDP among {protocols:?}"
    );
}

/// A capture on `lo` of what `traffic` sends to the HTTP fixture on `port` (an HTTP/1.1
/// server that keeps connections alive); the session records and the decrypted pcap.
fn http_capture(
    s: &Scratch,
    agent: &pcap_tests::Agent,
    port: u16,
    traffic: impl FnOnce(&str),
) -> (Vec<pcap_tests::Record>, std::path::PathBuf) {
    let _http = spawn(
        Command::new("python3")
            .arg(fixture("http_server.py"))
            .args(["127.0.0.1", &port.to_string(), "1.1"]),
    );
    assert!(wait_until(Duration::from_secs(10), || port_open(
        "127.0.0.1",
        port
    )));
    let c = agent.start_capture_ok(&json!({"interface": "lo", "filter": format!("tcp port {port}"), "reason": "other", "limits": {"max_duration": "30s"}}));
    let id = c["id"].as_str().unwrap().to_owned();
    traffic(&format!("http://127.0.0.1:{port}"));
    agent.post_delete(&id);
    (s.session_records(&id), s.decrypt(&s.segments(&id)[0]))
}

#[test]
fn every_request_of_a_keep_alive_session_agrees_with_tshark() {
    require_root!("a live capture on the loopback interface");
    let s = Scratch::new("");
    s.authorize();
    let agent = s.start_agent();
    let (records, pcap) = http_capture(&s, &agent, 18182, |base| {
        // One curl, several URLs: one connection, kept alive, the download on the last.
        let out = run(Command::new("curl").args([
            "-sSf",
            "--http1.1",
            "-o",
            "/dev/null",
            &format!("{base}/robots.txt"),
            "-o",
            "/dev/null",
            &format!("{base}/humans.txt"),
            "-o",
            "/dev/null",
            "-u",
            "alice:secret",
            &format!("{base}/private/status"),
            "-o",
            "/dev/null",
            &format!("{base}/chunked/report?week=48"),
        ]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let requests = tshark_query(
        &pcap,
        &[],
        "http.request",
        &[
            "tcp.stream",
            "ip.src",
            "tcp.srcport",
            "ip.dst",
            "tcp.dstport",
            "http.host",
            "http.request.uri",
        ],
    );
    assert_eq!(requests.len(), 4, "{requests:?}");
    assert!(
        requests.iter().all(|r| r[0] == requests[0][0]),
        "one connection: {requests:?}"
    );
    let r = find(
        &records,
        &requests[0][1],
        &requests[0][2],
        &requests[0][3],
        &requests[0][4],
    );
    let want: Vec<String> = requests
        .iter()
        .map(|row| format!("http://{}{}", row[5], row[6]))
        .collect();
    assert_eq!(r.urls(), want);
    assert_eq!(strings(r.users()), BTreeSet::from(["alice".to_owned()]));
    // tshark reassembles the chunked body and shows the one Content-Disposition header; the
    // head-like text inside a chunk is data, for both.
    let dispositions = tshark_query(&pcap, &[], "http.response", &["http.response.line"]);
    let shown: Vec<&String> = dispositions
        .iter()
        .filter(|row| row[0].contains("Content-Disposition"))
        .map(|row| &row[0])
        .collect();
    assert_eq!(shown.len(), 1, "{dispositions:?}");
    assert!(shown[0].contains("chunked-report.csv"));
    assert!(
        r.filenames().contains(&"chunked-report.csv".to_owned()),
        "{r:?}"
    );
    assert!(!r.filenames().contains(&"fake.bin".to_owned()), "{r:?}");
    assert_eq!(
        strings(r.filenames()),
        BTreeSet::from(
            [
                "robots.txt",
                "humans.txt",
                "status",
                "report",
                "chunked-report.csv"
            ]
            .map(str::to_owned)
        )
    );
}

#[test]
fn a_multipart_upload_gives_the_file_names_tshark_shows() {
    require_root!("a live capture on the loopback interface");
    let s = Scratch::new("");
    s.authorize();
    let agent = s.start_agent();
    std::fs::write(s.path("notes.txt"), "field notes\n").unwrap();
    std::fs::write(s.path("scan 42.pdf"), "%PDF-1.4 not really\n").unwrap();
    let (records, pcap) = http_capture(&s, &agent, 18183, |base| {
        let out = run(Command::new("curl")
            .args(["-sSf", "-o", "/dev/null", "-F", "comment=hello", "-F"])
            .arg(format!("notes=@{}", s.path("notes.txt").display()))
            .arg("-F")
            .arg(format!("scan=@{}", s.path("scan 42.pdf").display()))
            .arg(format!("{base}/upload/form")));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let parts = tshark_query(
        &pcap,
        &[],
        "mime_multipart",
        &[
            "ip.src",
            "tcp.srcport",
            "ip.dst",
            "tcp.dstport",
            "mime_multipart.header.content-disposition",
        ],
    );
    assert!(!parts.is_empty(), "tshark found no multipart body");
    // tshark lists each part's Content-Disposition; those with a filename= name a file.
    let shown: BTreeSet<String> = parts[0][4]
        .split(',')
        .filter_map(|d| d.split("filename=\"").nth(1))
        .map(|f| f.trim_end_matches('"').to_owned())
        .collect();
    assert_eq!(
        shown,
        BTreeSet::from(["notes.txt".to_owned(), "scan 42.pdf".to_owned()])
    );
    let r = find(
        &records,
        &parts[0][0],
        &parts[0][1],
        &parts[0][2],
        &parts[0][3],
    );
    let mut want = shown.clone();
    want.insert("form".to_owned());
    assert_eq!(strings(r.filenames()), want);
}

#[test]
fn a_connect_through_a_real_proxy_gives_the_target_not_a_concatenation() {
    require_root!("a live capture on the loopback interface");
    let s = Scratch::new("");
    s.authorize();
    let agent = s.start_agent();
    // tinyproxy, and a TLS server behind it (openssl s_server with a certificate of its own).
    let cert = s.path("tls.pem");
    assert!(
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1"
            ])
            .args([
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=tunnel.example",
                "-keyout"
            ])
            .arg(&cert)
            .arg("-out")
            .arg(&cert))
        .status
        .success()
    );
    let _tls = spawn(
        Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept", "18185", "-cert"])
            .arg(&cert),
    );
    let conf = s.path("tinyproxy.conf");
    std::fs::write(
        &conf,
        "Port 18184\nListen 127.0.0.1\nAllow 127.0.0.1\nUser nobody\nGroup nogroup\nLogLevel Critical\n",
    )
    .unwrap();
    let _proxy = spawn(Command::new("tinyproxy").arg("-d").arg("-c").arg(&conf));
    for port in [18184, 18185] {
        assert!(wait_until(Duration::from_secs(10), || port_open(
            "127.0.0.1",
            port
        )));
    }
    let c = agent.start_capture_ok(&json!({"interface": "lo", "filter": "tcp port 18184", "reason": "other", "limits": {"max_duration": "30s"}}));
    let id = c["id"].as_str().unwrap().to_owned();
    let out = run(Command::new("curl").args([
        "-sSk",
        "-o",
        "/dev/null",
        "-x",
        "http://127.0.0.1:18184",
        "https://127.0.0.1:18185/status",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    agent.post_delete(&id);
    let records = s.session_records(&id);
    let pcap = s.decrypt(&s.segments(&id)[0]);
    let connect = tshark_query(
        &pcap,
        &[],
        "http.request.method == \"CONNECT\"",
        &[
            "ip.src",
            "tcp.srcport",
            "ip.dst",
            "tcp.dstport",
            "http.request.uri",
        ],
    );
    assert_eq!(connect.len(), 1, "{connect:?}");
    let r = find(
        &records,
        &connect[0][0],
        &connect[0][1],
        &connect[0][2],
        &connect[0][3],
    );
    assert_eq!(r.application(), Some(App::Http));
    assert_eq!(r.urls(), [format!("http://{}/", connect[0][4])]);
}

#[test]
fn dns_on_another_port_and_over_tcp_ssdp_and_dhcpv6_agree_with_tshark() {
    require_root!("a live capture on the loopback interface");
    let s = Scratch::new("");
    s.authorize();
    let agent = s.start_agent();
    let _dns = spawn(Command::new("dnsmasq").args([
        "--no-daemon",
        "--port=5300",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--address=/device.lan/10.1.2.3",
        "--pid-file=",
    ]));
    assert!(wait_until(Duration::from_secs(10), || port_open(
        "127.0.0.1",
        5300
    )));
    let c = agent.start_capture_ok(&json!({"interface": "lo", "filter": "udp port 5300 or tcp port 5300 or udp port 1900 or udp port 547", "reason": "other", "limits": {"max_duration": "30s"}}));
    let id = c["id"].as_str().unwrap().to_owned();
    for args in [&["device.lan"][..], &["+tcp", "nas.device.lan"]] {
        let out = run(Command::new("dig")
            .args(["@127.0.0.1", "-p", "5300", "+tries=1", "+time=2"])
            .args(args));
        assert!(out.status.success(), "dig {args:?}");
    }
    // An SSDP search and an announcement, and a DHCPv6 SOLICIT (scapy builds it).
    let script = r#"
import socket
from scapy.layers.dhcp6 import DHCP6_Solicit, DHCP6OptClientId, DUID_LL
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 41900))
s.sendto(b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n', ("127.0.0.1", 1900))
s.sendto(b'NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nLOCATION: http://127.0.0.1:49152/desc.xml\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n\r\n', ("127.0.0.1", 1900))
v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
v6.sendto(bytes(DHCP6_Solicit(trid=0x123456) / DHCP6OptClientId(duid=DUID_LL(lladdr="02:00:00:00:00:01"))), ("::1", 547))
"#;
    let out = run(Command::new("/usr/bin/python3").args(["-c", script]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    agent.post_delete(&id);
    let records = s.session_records(&id);
    let pcap = s.decrypt(&s.segments(&id)[0]);

    // tshark reads port 5300 as DNS when told to; the agent finds it by its payload.
    let decode = ["udp.port==5300,dns", "tcp.port==5300,dns"];
    for (transport, filter) in [
        ("udp", "udp && dns.flags.response == 0"),
        ("tcp", "tcp && dns.flags.response == 0"),
    ] {
        let rows = tshark_query(
            &pcap,
            &decode,
            filter,
            &[
                "ip.src",
                &format!("{transport}.srcport"),
                "ip.dst",
                &format!("{transport}.dstport"),
                "dns.qry.name",
            ],
        );
        assert_eq!(rows.len(), 1, "{transport}: {rows:?}");
        let r = find(&records, &rows[0][0], &rows[0][1], &rows[0][2], &rows[0][3]);
        assert_eq!(r.application(), Some(App::Dns), "{transport}");
        assert_eq!(r.urls(), [format!("dns://{}", rows[0][4])], "{transport}");
    }

    let ssdp = tshark_query(
        &pcap,
        &[],
        "ssdp",
        &[
            "ip.src",
            "udp.srcport",
            "ip.dst",
            "udp.dstport",
            "http.request.full_uri",
            "http.location",
        ],
    );
    assert_eq!(ssdp.len(), 2, "{ssdp:?}");
    let r = find(&records, &ssdp[0][0], &ssdp[0][1], &ssdp[0][2], &ssdp[0][3]);
    assert_eq!(r.application(), Some(App::Ssdp));
    let mut want: Vec<String> = vec![ssdp[0][4].clone()];
    want.extend(
        ssdp.iter()
            .map(|row| row[5].clone())
            .filter(|l| !l.is_empty()),
    );
    assert_eq!(r.urls(), want);

    let dhcp = tshark_query(
        &pcap,
        &[],
        "dhcpv6",
        &[
            "ipv6.src",
            "udp.srcport",
            "ipv6.dst",
            "udp.dstport",
            "dhcpv6.msgtype",
        ],
    );
    assert_eq!(dhcp.len(), 1, "{dhcp:?}");
    assert_eq!(dhcp[0][4], "1", "a SOLICIT");
    let r = find(&records, &dhcp[0][0], &dhcp[0][1], &dhcp[0][2], &dhcp[0][3]);
    assert_eq!(r.application(), Some(App::Dhcpv6));
}

#[test]
fn each_sharing_switch_removes_exactly_its_field() {
    require_root!("live captures on the loopback interface");
    let s = Scratch::new("");
    s.authorize();
    let agent = s.start_agent();
    let _http = spawn(
        Command::new("python3")
            .arg(fixture("http_server.py"))
            .args(["127.0.0.1", "18181"]),
    );
    assert!(wait_until(Duration::from_secs(10), || port_open(
        "127.0.0.1",
        18181
    )));
    for off in Field::ALL {
        std::fs::write(
            s.config_path(),
            s.config_text("") + &format!("\n[sharing]\n{off} = false\n"),
        )
        .unwrap();
        assert_eq!(agent.post("/v1/reload", None).status, 200);
        let c = agent.start_capture_ok(&json!({"interface": "lo", "filter": "tcp port 18181", "reason": "other", "limits": {"max_duration": "30s"}}));
        let id = c["id"].as_str().unwrap().to_owned();
        assert!(
            run(Command::new("curl").args([
                "-sSf",
                "-o",
                "/dev/null",
                "-u",
                "alice:secret",
                "http://127.0.0.1:18181/private/x"
            ]))
            .status
            .success()
        );
        agent.post_delete(&id);
        let records = s.session_records(&id);
        assert_eq!(records.len(), 1, "{off}: {records:?}");
        let shared = records[0].shared_fields();
        for f in Field::ALL {
            assert_eq!(
                shared.contains(f),
                f != off,
                "with {off} off, {f} is {:?}",
                records[0]
            );
        }
    }

    // A switch turned off while a capture runs applies to that capture's records too.
    std::fs::write(s.config_path(), s.config_text("")).unwrap();
    assert_eq!(agent.post("/v1/reload", None).status, 200);
    let c = agent.start_capture_ok(&json!({"interface": "lo", "filter": "tcp port 18181", "reason": "other", "limits": {"max_duration": "30s"}}));
    let id = c["id"].as_str().unwrap().to_owned();
    assert!(
        run(Command::new("curl").args(["-sSf", "-o", "/dev/null", "http://127.0.0.1:18181/x"]))
            .status
            .success()
    );
    std::fs::write(
        s.config_path(),
        s.config_text("") + "\n[sharing]\nurl = false\n",
    )
    .unwrap();
    assert_eq!(agent.post("/v1/reload", None).status, 200);
    agent.post_delete(&id);
    let records = s.session_records(&id);
    let shared = records[0].shared_fields();
    assert!(
        !shared.contains(Field::Url) && shared.contains(Field::SourceIp),
        "{:?}",
        records[0]
    );
}

#[test]
fn ipv6_vlan_cooked_and_truncated_traffic_give_correct_five_tuples() {
    require_root!("veth pair, VLAN interfaces and a live capture");
    let pair = VethPair::create();
    let ip = |args: &[&str]| {
        assert!(
            run(Command::new("ip").args(args)).status.success(),
            "ip {args:?}"
        )
    };
    ip(&[
        "addr",
        "add",
        "fd00:77::1/64",
        "dev",
        &pair.host_if,
        "nodad",
    ]);
    ip(&[
        "-n",
        &pair.ns,
        "addr",
        "add",
        "fd00:77::2/64",
        "dev",
        &pair.ns_if,
        "nodad",
    ]);
    // This kernel has no VLAN interfaces: a tagged frame is sent out of the veth instead.
    let ns_mac = String::from_utf8_lossy(
        &run(pair
            .in_ns("cat")
            .arg(format!("/sys/class/net/{}/address", pair.ns_if)))
        .stdout,
    )
    .trim()
    .to_owned();
    ip(&[
        "-6",
        "neigh",
        "replace",
        "fd00:77::2",
        "lladdr",
        &ns_mac,
        "dev",
        &pair.host_if,
        "nud",
        "permanent",
    ]);

    let s = Scratch::with_interfaces(&[&pair.host_if, "any"], "");
    s.authorize();
    let agent = s.start_agent();
    let send = |addr: &str, port: u16| {
        let sock = std::net::UdpSocket::bind(if addr.contains(':') {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        })
        .unwrap();
        for _ in 0..3 {
            sock.send_to(b"five tuple", (addr, port)).unwrap();
        }
        sock.local_addr().unwrap().port()
    };
    let cases: [(&str, &str, &str, u16, Value); 4] = [
        ("ipv6", &pair.host_if, "fd00:77::2", 7101, json!({})),
        ("vlan", &pair.host_if, "10.250.7.2", 7102, json!({})),
        ("cooked", "any", &pair.ns_ip, 7103, json!({})),
        (
            "truncated",
            &pair.host_if,
            &pair.ns_ip,
            7104,
            json!({"snaplen": 40}),
        ),
    ];
    for (name, iface, dst, port, mut limits) in cases {
        limits["max_duration"] = json!("20s");
        // A BPF filter looks past a VLAN tag only when told to.
        let filter = if name == "vlan" {
            format!("vlan and udp port {port}")
        } else {
            format!("udp port {port}")
        };
        let c = agent.start_capture_ok(
            &json!({"interface": iface, "filter": filter, "reason": "other", "limits": limits}),
        );
        let id = c["id"].as_str().unwrap().to_owned();
        let sport = if name == "vlan" {
            send_tagged(&pair.host_if, &ns_mac, port)
        } else {
            send(dst, port)
        };
        std::thread::sleep(Duration::from_millis(300));
        let stopped = agent.post_delete(&id);
        assert!(
            stopped["stats"]["written"].as_u64().unwrap() >= 3,
            "{name}: {stopped}"
        );
        let records = s.session_records(&id);
        let pcap = s.decrypt(&s.segments(&id)[0]);
        let fields = if dst.contains(':') {
            ["ipv6.src", "udp.srcport", "ipv6.dst", "udp.dstport"]
        } else {
            ["ip.src", "udp.srcport", "ip.dst", "udp.dstport"]
        };
        let rows = tshark_query(&pcap, &[], "udp", &fields);
        assert!(!rows.is_empty(), "{name}: tshark saw nothing");
        let r = find(&records, &rows[0][0], &rows[0][1], &rows[0][2], &rows[0][3]);
        assert_eq!(
            r.destination(),
            (Some(dst.parse().unwrap()), Some(port)),
            "{name}"
        );
        assert_eq!(r.source().1, Some(sport), "{name}");
        if name == "cooked" {
            assert_eq!(stopped["link_type"], "LINUX_SLL");
        }
        if name == "vlan" {
            assert_eq!(tshark_query(&pcap, &[], "vlan", &["vlan.id"])[0][0], "7");
        }
    }
}

/// Sends three 802.1Q-tagged (VLAN 7) IPv4/UDP frames from 10.250.7.1:45007 to
/// 10.250.7.2:`port` out of `iface`, through a packet socket; returns the source port.
fn send_tagged(iface: &str, dst_mac: &str, port: u16) -> u16 {
    let mac: Vec<u8> = dst_mac
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], mac.try_into().unwrap())
        .single_vlan(etherparse::VlanId::try_new(7).unwrap())
        .ipv4([10, 250, 7, 1], [10, 250, 7, 2], 64)
        .udp(45007, port);
    let mut frame = Vec::new();
    b.write(&mut frame, b"tagged").unwrap();
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let script = "import socket,sys\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind((sys.argv[1],0))\nf=bytes.fromhex(sys.argv[2])\nfor _ in range(3): s.send(f)\n";
    let out = run(Command::new("python3").args(["-c", script, iface, &hex]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    45007
}

/// Sessions of the flood below, and their frames: a SYN, a 5600-byte request head that never
/// ends, three segments past a hole that never fills (about 12 KiB each while inspected).
const FLOOD_FLOWS: u32 = 10_000;
const FLOOD_BUDGET_MIB: u64 = 16;
/// What the agent's memory may grow by besides the sessions' budget: the capture's ring
/// buffer (4 MiB here, as configured), the IP reassembly's bound (8 MiB, unused here), and
/// 8 MiB for the allocator's slack and the write path's buffers.
const FLOOD_CONSTANT_MIB: u64 = 20;

#[test]
fn a_flood_of_flows_that_stay_inspecting_keeps_the_agent_within_its_session_budget() {
    require_root!("a live capture on a veth pair and frames injected into it");
    let pair = VethPair::create();
    let s = Scratch::with_interfaces(
        &[&pair.host_if],
        &format!("buffer_size = \"4MiB\"\n\n[sessions]\nmax_bytes = \"{FLOOD_BUDGET_MIB}MiB\"\n"),
    );
    s.authorize();
    let agent = s.start_agent();
    let capture = agent.start_capture_ok(&json!({"interface": pair.host_if, "filter": "tcp port 80", "reason": "other", "limits": {"max_duration": "120s"}}));
    let id = capture["id"].as_str().unwrap().to_owned();
    // A first flow, so that the capture path has run before the baseline is read.
    pcap_tests::net::inject(
        &pair.host_if,
        pcap_tests::pcapgen::half_open_http_flow(FLOOD_FLOWS, 5600, 3),
        1000,
    );
    std::thread::sleep(Duration::from_millis(500));
    let baseline = agent.memory_kib("VmRSS");

    let frames =
        (0..FLOOD_FLOWS).flat_map(|n| pcap_tests::pcapgen::half_open_http_flow(n, 5600, 3));
    let sent = pcap_tests::net::inject(&pair.host_if, frames, 20_000);
    assert!(
        wait_until(Duration::from_secs(20), || {
            agent.json(&format!("/v1/captures/{id}"))["stats"]["received"].as_u64()
                >= Some(sent as u64)
        }),
        "the capture received the flood"
    );
    let peak = agent.memory_kib("VmHWM");
    let stopped = agent.post_delete(&id);

    let grown_mib = peak.saturating_sub(baseline) >> 10;
    println!(
        "agent RSS {baseline} KiB before the flood, peak {peak} KiB: grew {grown_mib} MiB for {FLOOD_FLOWS} flows (unbounded, about {} MiB)",
        (u64::from(FLOOD_FLOWS) * 12) >> 10
    );
    assert!(
        grown_mib <= FLOOD_BUDGET_MIB + FLOOD_CONSTANT_MIB,
        "the agent grew {grown_mib} MiB, past max_bytes ({FLOOD_BUDGET_MIB} MiB) and {FLOOD_CONSTANT_MIB} MiB"
    );
    let summary = &stopped["sessions"];
    assert!(
        summary["inspection_stopped"].as_u64() > Some(0),
        "{summary}"
    );
    let records = s.session_records(&id);
    assert_eq!(
        records.len(),
        FLOOD_FLOWS as usize + 1,
        "every session recorded; {summary}"
    );
    assert!(records.iter().all(|r| r.application() == Some(App::Http)));
}
