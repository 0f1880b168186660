//! Sessions inside tunnels, as root: the real clients of the session tests talk to real servers
//! across a VXLAN overlay the kernel builds between two namespaces; the carrier link is captured
//! (by the agent live, and by tcpdump for `pcap-agent analyze`), and every session's inner
//! 5-tuple and fields are compared with tshark's innermost dissection of the same packets.
//!
//! The kernel here builds VXLAN but not GENEVE, GRE, ERSPAN, IP in IP, MPLS routing, L2TP,
//! PPPoE or VLAN devices (its /proc/config.gz: CONFIG_GENEVE, CONFIG_NET_IPGRE_DEMUX,
//! CONFIG_MPLS_ROUTING and CONFIG_VLAN_8021Q are not set), so for those and for QinQ the same
//! clients' packets (captured on the overlay's device) are wrapped in each encapsulation by
//! scapy (tests/fixtures/encapsulate.py, an implementation independent of the agent's) and
//! tshark's dissection of the result is the reference.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pcap_protocol::session::Transport;
use pcap_tests::clients::{DECODE_AS, Servers, TLS_PORT, port_open, run_clients};
use pcap_tests::net::{VethPair, ip, send_udp};
use pcap_tests::{
    Record, Scratch, analyze_records, fixture, require_root, run, tshark_query, wait_until,
};
use serde_json::json;

/// The kernel overlay's VNI in each test (two overlays on one host need two).
const VNI: u32 = 5001;
const VNI_SETTINGS: u32 = 5002;
/// The scoped capture's test: the VNI it asks for and a second one beside it.
const VNI_SCOPED: u32 = 5003;
const VNI_BESIDE: u32 = 5004;

/// A kernel VXLAN overlay across a veth pair: `vxh<tag>` on the host, `vxn<tag>` in the
/// namespace, carried as UDP 4789 between the pair's addresses.
struct Overlay {
    host_if: String,
    host_ip: String,
    ns_ip: String,
}

impl Overlay {
    fn vxlan(pair: &VethPair, vni: u32) -> Self {
        Overlay::nth(pair, vni, 0)
    }

    /// The `n`th overlay (0 or 1) across `pair`, with its own devices and subnet.
    fn nth(pair: &VethPair, vni: u32, n: usize) -> Self {
        let tag = pair.host_if.trim_start_matches("pah");
        // The overlay's subnet follows the pair's (10.<200+k>.<pid>.0/24 -> 10.<100+k>.<pid>.0/24
        // for the first, 10.<50+k> for the second), so that overlays of tests running at once
        // do not overlap.
        let octets: Vec<u16> = pair
            .host_ip
            .split('.')
            .map(|o| o.parse().unwrap_or(0))
            .collect();
        let (second, third) = (octets[1].saturating_sub([100, 150][n]), octets[2]);
        let letter = ["x", "y"][n];
        let o = Overlay {
            host_if: format!("v{letter}h{tag}"),
            host_ip: format!("10.{second}.{third}.1"),
            ns_ip: format!("10.{second}.{third}.2"),
        };
        let vni = vni.to_string();
        ip(&[
            "link",
            "add",
            &o.host_if,
            "type",
            "vxlan",
            "id",
            &vni,
            "local",
            &pair.host_ip,
            "remote",
            &pair.ns_ip,
            "dstport",
            "4789",
            "dev",
            &pair.host_if,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{}/24", o.host_ip),
            "dev",
            &o.host_if,
        ]);
        ip(&["link", "set", &o.host_if, "up"]);
        let ns_if = format!("v{letter}n{tag}");
        ip(&[
            "-n",
            &pair.ns,
            "link",
            "add",
            &ns_if,
            "type",
            "vxlan",
            "id",
            &vni,
            "local",
            &pair.ns_ip,
            "remote",
            &pair.host_ip,
            "dstport",
            "4789",
            "dev",
            &pair.ns_if,
        ]);
        ip(&[
            "-n",
            &pair.ns,
            "addr",
            "add",
            &format!("{}/24", o.ns_ip),
            "dev",
            &ns_if,
        ]);
        ip(&["-n", &pair.ns, "link", "set", &ns_if, "up"]);
        ip(&["-n", &pair.ns, "link", "set", "lo", "up"]);
        o
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}

/// tcpdump writing `interface`'s packets to `file` until stopped.
struct Tcpdump {
    child: Option<Child>,
    file: PathBuf,
}

impl Tcpdump {
    fn start(interface: &str, file: PathBuf) -> Self {
        let child = Command::new("tcpdump")
            .args(["-i", interface, "-n", "-U", "--immediate-mode", "-w"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tcpdump");
        assert!(
            wait_until(Duration::from_secs(10), || file.exists()),
            "tcpdump on {interface} did not start"
        );
        // The file is created before the socket is ready to deliver.
        std::thread::sleep(Duration::from_millis(300));
        Tcpdump {
            child: Some(child),
            file,
        }
    }

    fn stop(mut self) -> PathBuf {
        if let Some(mut child) = self.child.take() {
            std::thread::sleep(Duration::from_millis(300));
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGINT);
            let _ = child.wait();
        }
        self.file.clone()
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The layers a session was found inside: kind and id, outermost first.
type Layers<'a> = &'a [(&'a str, Option<u64>)];

/// A session: protocol and both ends, the lower end first.
type Tuple = (String, (String, u16), (String, u16));

fn tuple(proto: &str, a: (String, u16), b: (String, u16)) -> Tuple {
    if a <= b {
        (proto.to_owned(), a, b)
    } else {
        (proto.to_owned(), b, a)
    }
}

/// What tshark finds innermost in each packet of `pcap`: the sessions and, per session, the
/// fields the agent's records carry (HTTP URL, TLS SNI, DNS name, mail sender).
#[derive(Debug, Default)]
struct Reference {
    sessions: BTreeSet<Tuple>,
    urls: BTreeMap<Tuple, BTreeSet<String>>,
    senders: BTreeMap<Tuple, String>,
}

fn reference(pcap: &Path, decode_as: &[&str]) -> Reference {
    let fields = [
        "frame.protocols",
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
        "tcp.srcport",
        "tcp.dstport",
        "udp.srcport",
        "udp.dstport",
        "http.host",
        "http.request.uri",
        "tls.handshake.extensions_server_name",
        "dns.qry.name",
        "dns.flags.response",
        "smtp.req.command",
        "smtp.req.parameter",
    ];
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(pcap);
    for d in DECODE_AS.iter().chain(decode_as) {
        cmd.args(["-d", d]);
    }
    // The last occurrence of a field is the innermost layer's.
    cmd.args(["-T", "fields", "-E", "separator=|", "-E", "occurrence=l"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r = Reference::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let c: Vec<&str> = line.split('|').collect();
        let chain: Vec<&str> = c[0].split(':').collect();
        // ICMP errors quote another packet's headers: not a packet of that session.
        if chain.iter().any(|p| p.starts_with("icmp")) {
            continue;
        }
        let last = |name: &str| chain.iter().rposition(|p| *p == name);
        // A frame whose innermost layer is not IP (ARP inside VXLAN) is no session.
        if last("eth") > last("ip").max(last("ipv6")) {
            continue;
        }
        let (src, dst) = match (last("ip"), last("ipv6")) {
            (Some(v4), Some(v6)) if v6 > v4 => (c[3], c[4]),
            (Some(_), _) => (c[1], c[2]),
            (None, Some(_)) => (c[3], c[4]),
            (None, None) => continue,
        };
        let (proto, sport, dport) = match (last("tcp"), last("udp")) {
            (Some(t), Some(u)) if u > t => ("udp", c[7], c[8]),
            (Some(_), _) => ("tcp", c[5], c[6]),
            (None, Some(_)) => ("udp", c[7], c[8]),
            (None, None) => continue,
        };
        let (Ok(sport), Ok(dport)) = (sport.parse::<u16>(), dport.parse::<u16>()) else {
            continue;
        };
        let t = tuple(proto, (src.to_owned(), sport), (dst.to_owned(), dport));
        r.sessions.insert(t.clone());
        if !c[9].is_empty() {
            r.urls
                .entry(t.clone())
                .or_default()
                .insert(format!("http://{}{}", c[9], c[10]));
        }
        if !c[11].is_empty() {
            r.urls
                .entry(t.clone())
                .or_default()
                .insert(format!("tls://{}", c[11]));
        }
        if !c[12].is_empty() && c[13] == "0" {
            r.urls
                .entry(t.clone())
                .or_default()
                .insert(format!("dns://{}", c[12]));
        }
        if c[14].eq_ignore_ascii_case("MAIL") {
            let sender = c[15]
                .split_once(':')
                .map(|(_, a)| {
                    a.trim()
                        .trim_start_matches('<')
                        .split('>')
                        .next()
                        .unwrap_or("")
                })
                .unwrap_or_default();
            // A session's sender is its first message's.
            r.senders.entry(t).or_insert_with(|| sender.to_owned());
        }
    }
    r
}

fn record_tuple(r: &Record) -> Tuple {
    let end = |(ip, port): (Option<std::net::IpAddr>, Option<u16>)| {
        (
            ip.map(|i| i.to_string()).unwrap_or_default(),
            port.unwrap_or_default(),
        )
    };
    let proto = serde_json::to_value(r.protocol).unwrap();
    tuple(
        proto.as_str().unwrap_or_default(),
        end(r.source()),
        end(r.destination()),
    )
}

/// Whether `r` is a TCP or UDP session.
fn ported(r: &Record) -> bool {
    matches!(r.protocol, Transport::Tcp | Transport::Udp)
}

/// The kind and id of each layer of `r`'s tunnel, outermost first.
fn layers_of(r: &Record) -> Vec<(&str, Option<u64>)> {
    r.tunnel.as_ref().map_or(Vec::new(), |t| {
        t.layers
            .iter()
            .map(|l| (&*l.kind, l.id.map(u64::from)))
            .collect()
    })
}

/// Every TCP and UDP session of `records` is one tshark finds, and the other way round; each
/// carries the fields tshark shows for it, and was found inside `layers`.
fn assert_agrees(what: &str, records: &[Record], pcap: &Path, layers: Layers) {
    // What tshark cannot know without the tunnel's signalling: the MPLS pseudowire carries
    // Ethernet after a control word, the L2TPv3 session carries Ethernet.
    let decode_as: &[&str] = match what {
        "mpls_pw" => &["mpls.label==300,pwethcw"],
        "l2tpv3" => &["l2tp.pw_type==0,eth"],
        _ => &[],
    };
    let want = reference(pcap, decode_as);
    assert!(
        want.sessions.len() >= 5,
        "{what}: tshark finds only {:?}",
        want.sessions
    );
    let got: BTreeMap<Tuple, &Record> = records
        .iter()
        .filter(|r| ported(r))
        .map(|r| (record_tuple(r), r))
        .collect();
    let got_set: BTreeSet<Tuple> = got.keys().cloned().collect();
    assert_eq!(
        got_set, want.sessions,
        "{what}: sessions differ from tshark's"
    );
    for (t, urls) in &want.urls {
        let r = got[t];
        assert!(
            !r.urls().is_empty() && r.urls().iter().all(|u| urls.contains(u.as_str())),
            "{what}: {t:?} has urls {:?} where tshark shows {urls:?}",
            r.urls()
        );
    }
    for (t, sender) in &want.senders {
        assert_eq!(
            got[t].email_sender(),
            Some(sender.as_str()),
            "{what}: {t:?}"
        );
    }
    assert!(
        want.urls.len() >= 4 && !want.senders.is_empty(),
        "{what}: tshark shows too few fields to compare: {want:?}"
    );
    for r in got.values() {
        assert_eq!(layers_of(r), layers, "{what}: the layers of {r:?}");
    }
}

fn analyze(pcap: &Path) -> Vec<Record> {
    analyze_records(pcap, None)
}

#[test]
fn sessions_inside_tunnels_agree_with_tshark() {
    require_root!("a VXLAN overlay between network namespaces and live captures");
    let pair = VethPair::create();
    let overlay = Overlay::vxlan(&pair, VNI);
    let s = Scratch::with_interfaces(&[&pair.host_if], "");
    s.authorize();
    let agent = s.start_agent();
    let _servers = Servers::start(|p| pair.in_ns(p), &overlay.ns_ip, &s.path("tls"));

    let carrier = Tcpdump::start(&pair.host_if, s.path("carrier.pcap"));
    let inner = Tcpdump::start(&overlay.host_if, s.path("inner.pcap"));
    let capture = agent.start_capture_ok(&json!({
        "interface": pair.host_if,
        "filter": "udp port 4789",
        "reason": "unknown_application",
        "limits": {"max_duration": "60s"}
    }));
    let id = capture["id"].as_str().unwrap().to_owned();
    run_clients(&overlay.ns_ip);
    let carrier = carrier.stop();
    let inner = inner.stop();
    agent.post_delete(&id);

    // VXLAN, live: the agent's own records of the carrier it captured.
    let live = s.session_records(&id);
    let pcap = s.decrypt(&s.segments(&id)[0]);

    assert_agrees(
        "live vxlan",
        &live,
        &pcap,
        &[("vxlan", Some(u64::from(VNI)))],
    );
    for r in &live {
        let outer = r
            .tunnel
            .as_ref()
            .and_then(|t| t.outer.as_ref())
            .unwrap_or_else(|| panic!("no carrier: {r:?}"));
        let ends = BTreeSet::from([
            outer.source_ip.map(|i| i.to_string()).unwrap_or_default(),
            outer
                .destination_ip
                .map(|i| i.to_string())
                .unwrap_or_default(),
        ]);
        assert_eq!(
            ends,
            BTreeSet::from([pair.host_ip.clone(), pair.ns_ip.clone()]),
            "{r:?}"
        );
        assert_eq!(outer.destination_port, Some(4789), "{r:?}");
    }
    // VXLAN, from the file tcpdump wrote of the same carrier.
    assert_agrees(
        "analyze vxlan",
        &analyze(&carrier),
        &carrier,
        &[("vxlan", Some(u64::from(VNI)))],
    );

    // Everything else, from the same clients' packets wrapped by scapy.
    let wrapped = s.path("wrapped");
    let out = run(Command::new("/usr/bin/python3")
        .arg(fixture("encapsulate.py"))
        .arg(&inner)
        .arg(&wrapped));
    assert!(
        out.status.success(),
        "encapsulate.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases: [(&str, Layers); 17] = [
        ("vxlan", &[("vxlan", Some(5001))]),
        ("geneve", &[("geneve", Some(7002))]),
        ("gretap", &[("gre", Some(42))]),
        ("ip6gretap", &[("gre", Some(43))]),
        ("gre_ip", &[("gre", None)]),
        ("erspan1", &[("erspan", None)]),
        ("erspan2", &[("erspan", Some(300))]),
        ("erspan3", &[("erspan", Some(301))]),
        ("ip6erspan", &[("erspan", Some(302))]),
        ("mpls", &[("mpls", Some(100)), ("mpls", Some(200))]),
        ("mpls_pw", &[("mpls", Some(300))]),
        ("ipip", &[("ipip", None)]),
        ("ip6tnl", &[("ipip", None)]),
        ("l2tpv2", &[("l2tp", Some(7))]),
        ("l2tpv3", &[("l2tp", Some(0x1001))]),
        ("pppoe", &[("pppoe", Some(0x1234))]),
        // VLAN tags are no tunnel: the sessions carry no tunnel.
        ("qinq", &[]),
    ];
    for (kind, layers) in cases {
        let file = wrapped.join(format!("{kind}.pcap"));
        assert_agrees(kind, &analyze(&file), &file, layers);
    }
}

#[test]
fn tunnel_settings_choose_inner_outer_or_both_sessions() {
    require_root!("a VXLAN overlay between network namespaces");
    let pair = VethPair::create();
    let overlay = Overlay::vxlan(&pair, VNI_SETTINGS);
    let s = Scratch::new("");
    let _servers = Servers::start(|p| pair.in_ns(p), &overlay.ns_ip, &s.path("tls"));
    let carrier = Tcpdump::start(&pair.host_if, s.path("carrier.pcap"));
    run_clients(&overlay.ns_ip);
    let carrier = carrier.stop();

    let with = |setting: &str| -> Vec<Record> {
        let config = s.path(&format!("{setting}.toml"));
        std::fs::write(
            &config,
            s.config_text("")
                + &format!(
                    "\n[sessions]\ntunnels = \"{setting}\"\n\n[sessions.virtual_systems]\n\"vni:{VNI_SETTINGS}\" = \"tenant-a\"\n"
                ),
        )
        .unwrap();
        analyze_records(&carrier, Some(&config))
    };
    let is_carrier = |r: &Record| r.destination().1 == Some(4789) || r.source().1 == Some(4789);
    // The sessions of TCP and UDP (the underlay's own neighbour discovery is ICMPv6).
    let ported =
        |records: Vec<Record>| -> Vec<Record> { records.into_iter().filter(ported).collect() };
    let inner = ported(with("inner"));
    let outer = ported(with("outer"));
    let both = ported(with("both"));
    assert!(
        inner.len() >= 5 && !inner.iter().any(is_carrier),
        "{inner:#?}"
    );
    // The VNI names the virtual system of the sessions inside it; the carrier's have none.
    assert!(
        inner
            .iter()
            .all(|r| r.virtual_system.get().cloned().flatten().as_deref() == Some("tenant-a")),
        "{inner:#?}"
    );
    assert!(
        !outer.is_empty()
            && outer.iter().all(|r| is_carrier(r)
                && r.tunnel.is_none()
                && r.virtual_system.get() == Some(&None)),
        "{outer:#?}"
    );
    let sessions = |records: &[Record]| records.iter().map(record_tuple).collect::<BTreeSet<_>>();
    assert_eq!(
        sessions(&both),
        sessions(&inner).union(&sessions(&outer)).cloned().collect(),
        "both is inner and outer together"
    );
}

/// Packets of `pcap` that tshark shows with the display filter `filter`.
fn count(pcap: &Path, filter: &str) -> usize {
    tshark_query(pcap, &[], filter, &["frame.number"]).len()
}

#[test]
fn a_capture_scoped_to_a_vni_keeps_what_its_filter_names_inside_it() {
    require_root!("two VXLAN overlays between network namespaces and a live capture");
    let pair = VethPair::create();
    let scoped = Overlay::nth(&pair, VNI_SCOPED, 0);
    let beside = Overlay::nth(&pair, VNI_BESIDE, 1);
    let s = Scratch::with_interfaces(&[&pair.host_if], "");
    s.authorize();
    let agent = s.start_agent();
    let _servers = Servers::start(|p| pair.in_ns(p), &scoped.ns_ip, &s.path("tls"));
    let request = |filter: &str, vni: u32| {
        json!({
            "interface": pair.host_if,
            "tunnel": {"kind": "vxlan", "id": vni},
            "filter": filter,
            "reason": "unknown_application",
            "limits": {"max_duration": "60s"}
        })
    };

    // A filter that does not compile for the frames inside is refused, naming the tunnel; a
    // VNI needs at most 24 bits.
    let bad = agent.start_capture(&request("tcp prot 1", VNI_SCOPED));
    let body = String::from_utf8_lossy(&bad.body).into_owned();
    assert_eq!(bad.status, 400, "{body}");
    assert!(
        body.contains("filter_invalid") && body.contains(&format!("inside vxlan:{VNI_SCOPED}")),
        "{body}"
    );
    let big = agent.start_capture(&request("", 1 << 24));
    let body = String::from_utf8_lossy(&big.body).into_owned();
    assert!(big.status == 400 && body.contains("24 bits"), "{body}");

    let carrier = Tcpdump::start(&pair.host_if, s.path("carrier.pcap"));
    let inside = format!("tcp port {TLS_PORT}");
    let capture = agent.start_capture_ok(&request(&inside, VNI_SCOPED));
    let id = capture["id"].as_str().unwrap().to_owned();
    let effective = capture["effective_filter"].as_str().unwrap_or_default();
    assert!(
        effective.contains(&format!("udp[12:4] >> 8 = {VNI_SCOPED}")),
        "{capture}"
    );
    assert_eq!(capture["inner_filter"], inside.as_str(), "{capture}");
    run_clients(&scoped.ns_ip);
    // The same port inside the other VNI (nothing listens there), and UDP inside both.
    for _ in 0..3 {
        let _ = port_open(&beside.ns_ip, TLS_PORT);
    }
    send_udp(&beside.ns_ip, 9999, 20, 64, 200);
    send_udp(&scoped.ns_ip, 9999, 20, 64, 200);
    let carrier = carrier.stop();
    let ended = agent.post_delete(&id);

    let wanted = format!("vxlan.vni == {VNI_SCOPED} && tcp.port == {TLS_PORT}");
    assert!(
        count(
            &carrier,
            &format!("vxlan.vni == {VNI_BESIDE} && tcp.port == {TLS_PORT}")
        ) > 0
            && count(
                &carrier,
                &format!("vxlan.vni == {VNI_SCOPED} && !({wanted})")
            ) > 0,
        "the carrier also held other traffic, inside the VNI and beside it"
    );
    let want = count(&carrier, &wanted);
    assert!(want >= 10, "only {want} packets of the TLS session");
    let pcap = s.decrypt(&s.segments(&id)[0]);
    assert_eq!(count(&pcap, &wanted), want, "every packet the filter names");
    assert_eq!(count(&pcap, &format!("!({wanted})")), 0, "and nothing else");
    assert_eq!(ended["stats"]["written"], want as u64, "{ended}");
    assert_eq!(ended["stats"]["received"], want as u64, "{ended}");

    let live = s.session_records(&id);
    assert!(!live.is_empty());
    for r in &live {
        assert_eq!(
            layers_of(r),
            [("vxlan", Some(u64::from(VNI_SCOPED)))],
            "{r:?}"
        );
        assert!(
            r.destination().1 == Some(TLS_PORT) || r.source().1 == Some(TLS_PORT),
            "{r:?}"
        );
    }
}

/// A SIP INVITE of `size` bytes or so for `uri`, from the test's own UDP socket to `to`.
fn send_invite(to: &str, uri: &str, size: usize) -> u16 {
    let padding = "x".repeat(size.saturating_sub(200));
    let invite = format!(
        "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\nFrom: <sip:alice@lab.example>;tag=1\r\nTo: <{uri}>\r\nCall-ID: frag-1@lab.example\r\nCSeq: 1 INVITE\r\nX-Padding: {padding}\r\nContent-Length: 0\r\n\r\n"
    );
    let sock = std::net::UdpSocket::bind(if to.contains(':') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    })
    .unwrap();
    sock.send_to(invite.as_bytes(), (to, 5060)).unwrap();
    sock.local_addr().unwrap().port()
}

#[test]
fn fragmented_datagrams_on_the_wire_and_inside_vxlan_are_reassembled_as_tshark_does() {
    require_root!("a veth pair and a VXLAN overlay with small MTUs, and a live capture");
    let pair = VethPair::create();
    let overlay = Overlay::vxlan(&pair, VNI);
    // Every path fragments: the veth at 1,280 bytes (IPv6's least), the overlay at 600 (its
    // fragments then travel inside VXLAN, each in a carrier of its own).
    ip(&["link", "set", "dev", &pair.host_if, "mtu", "1280"]);
    ip(&["link", "set", "dev", &overlay.host_if, "mtu", "600"]);
    ip(&[
        "addr",
        "add",
        "fd00:78::1/64",
        "dev",
        &pair.host_if,
        "nodad",
    ]);
    ip(&[
        "-n",
        &pair.ns,
        "addr",
        "add",
        "fd00:78::2/64",
        "dev",
        &pair.ns_if,
        "nodad",
    ]);
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
        "fd00:78::2",
        "lladdr",
        &ns_mac,
        "dev",
        &pair.host_if,
        "nud",
        "permanent",
    ]);
    let s = Scratch::with_interfaces(&[&pair.host_if], "");
    s.authorize();
    let agent = s.start_agent();
    let capture = agent.start_capture_ok(&json!({
        "interface": pair.host_if,
        "filter": "",
        "reason": "other",
        "limits": {"max_duration": "30s"}
    }));
    let id = capture["id"].as_str().unwrap().to_owned();
    let plain = send_invite(&pair.ns_ip, "sip:plain@lab.example", 1400);
    let inner = send_invite(&overlay.ns_ip, "sip:inner@lab.example", 1400);
    let v6 = send_invite("fd00:78::2", "sip:v6@lab.example", 3000);
    std::thread::sleep(Duration::from_millis(300));
    agent.post_delete(&id);
    let records = s.session_records(&id);
    let pcap = s.decrypt(&s.segments(&id)[0]);

    let fragments = tshark_query(
        &pcap,
        &[],
        "ip.flags.mf == 1 || ip.frag_offset > 0 || ipv6.fraghdr",
        &["frame.number"],
    );
    assert!(
        fragments.len() >= 7,
        "the datagrams were fragmented: {fragments:?}"
    );
    let last = |v: &str| v.rsplit(',').next().unwrap_or_default().to_owned();
    let rows = tshark_query(
        &pcap,
        &[],
        "sip.Method == \"INVITE\" && !icmp && !icmpv6",
        &[
            "ip.src",
            "udp.srcport",
            "ip.dst",
            "udp.dstport",
            "sip.r-uri",
            "vxlan.vni",
            "ipv6.src",
            "ipv6.dst",
        ],
    );
    assert_eq!(rows.len(), 3, "tshark reassembles every one: {rows:?}");
    for row in &rows {
        let v6_row = !row[6].is_empty();
        let (src, dst) = if v6_row {
            (last(&row[6]), last(&row[7]))
        } else {
            (last(&row[0]), last(&row[2]))
        };
        let sport = last(&row[1]);
        let r = records
            .iter()
            .find(|r| {
                r.source().0.map(|a| a.to_string()) == Some(src.clone())
                    && r.source().1.map(|p| p.to_string()) == Some(sport.clone())
                    && r.destination().0.map(|a| a.to_string()) == Some(dst.clone())
            })
            .unwrap_or_else(|| panic!("no session {src}:{sport} -> {dst}: {records:#?}"));
        assert_eq!(r.application(), Some(pcap_protocol::session::App::Sip));
        assert_eq!(r.urls(), [row[4].clone()]);
        assert!(r.packets.to_server >= 2, "every fragment counts: {r:?}");
        let in_vxlan = !row[5].is_empty();
        assert_eq!(r.tunnel.is_some(), in_vxlan, "{r:?}");
        let port: u16 = sport.parse().unwrap();
        let sent = match (in_vxlan, v6_row) {
            (true, _) => inner,
            (_, true) => v6,
            _ => plain,
        };
        assert_eq!(port, sent);
    }
}
