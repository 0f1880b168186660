//! The session extractor on hostile input: random and mutated frames of every link type, every
//! parser of the registry on its own traffic mangled (cut, flipped, reordered, lost, repeated),
//! IP fragments in any order, and more sessions than the table may hold. No panic, and memory
//! stays bounded.

use std::time::Duration;

use pcap_capture::session::packet::linktype;
use pcap_capture::session::proto::{Protocol, REGISTRY, Transports};
use pcap_capture::session::{RecordContext, SessionTable, record};
use pcap_config::Sharing;
use pcap_protocol::session::App;
use proptest::prelude::*;

const LINKTYPES: [u32; 6] = [
    linktype::ETHERNET,
    linktype::RAW,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::IPV4,
    linktype::IPV6,
];

/// A plausible Ethernet/IPv4/TCP frame carrying `payload` from port 40000 to `dport`.
fn tcp_frame(dport: u16, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00];
    let total = (20 + 20 + payload.len()) as u16;
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        6,
        0,
        0,
        10,
        0,
        0,
        1,
        10,
        0,
        0,
        2,
    ]);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

fn records_of(table: SessionTable) -> usize {
    let sharing = Sharing::default();
    let ctx = RecordContext {
        sharing: &sharing,
        virtual_system: None,
        virtual_systems: None,
        users: None,
        community_id_seed: 0,
    };
    let sessions = table.finish();
    for s in &sessions {
        let r = record(s, &ctx);
        assert!(serde_json::to_string(&r).is_ok());
    }
    sessions.len()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_frames_never_panic(lt in prop::sample::select(&LINKTYPES[..]), frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..20)) {
        let mut table = SessionTable::new(64, Duration::from_secs(60));
        for (i, f) in frames.iter().enumerate() {
            table.packet(lt, i as u64 * 1_000_000, f, f.len() as u32);
        }
        prop_assert!(table.len() <= 64);
        records_of(table);
    }

    #[test]
    fn mutated_tcp_frames_never_panic(
        payload in prop::sample::select(vec![
            b"GET /a HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YTpi\r\n\r\n".to_vec(),
            b"\x16\x03\x01\x00\x40\x01\x00\x00\x3c\x03\x03".to_vec(),
            b"220 mx ESMTP\r\n".to_vec(),
            b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: =?UTF-8?B?w4k=?=\r\n\r\nx\r\n.\r\n".to_vec(),
            b"\x10\x17\x00\x04MQTT\x04\xc2\x00\x3c\x00\x02c1\x00\x03dev\x00\x02pw".to_vec(),
            b"SSH-2.0-x\r\n".to_vec(),
        ]),
        dport in prop::sample::select(vec![21u16, 25, 80, 443, 502, 1883, 8081]),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut frame = tcp_frame(dport, 0x18, 1000, &payload);
        for (i, b) in &flips {
            let at = i.index(frame.len());
            frame[at] = *b;
        }
        let cut = cut.index(frame.len() + 1);
        let mut table = SessionTable::new(16, Duration::from_secs(60));
        table.packet(linktype::ETHERNET, 0, &tcp_frame(dport, 0x02, 999, b""), 54);
        table.packet(linktype::ETHERNET, 1, &frame[..cut], frame.len() as u32);
        table.packet(linktype::ETHERNET, 2, &frame, frame.len() as u32);
        records_of(table);
    }

    /// The fixed-offset read of a plain frame gives what the general decode gives, or leaves
    /// the frame to it: over TCP segments and UDP datagrams (tunnel ports among them) with
    /// bytes changed anywhere in their headers, options and cuts.
    #[test]
    fn the_quick_decode_is_the_general_decode(
        udp in any::<bool>(),
        port in prop::sample::select(vec![53u16, 80, 1701, 3544, 4789, 6081, 9999]),
        options in 0usize..3,
        payload in prop::collection::vec(any::<u8>(), 0..64),
        flips in prop::collection::vec((0usize..64, any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        trailer in 0usize..6,
    ) {
        let builder = eth().ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64);
        let mut frame = if udp {
            let b = builder.udp(40000, port);
            let mut f = Vec::with_capacity(b.size(payload.len()));
            b.write(&mut f, &payload).unwrap();
            f
        } else {
            let b = builder.tcp(40000, port, 7, 1024).psh().ack(3);
            let mut f = Vec::with_capacity(b.size(payload.len()));
            b.write(&mut f, &payload).unwrap();
            f
        };
        // IPv4 options (no-ops), the header length and total length grown to hold them.
        if options > 0 {
            let extra = options * 4;
            frame.splice(34..34, std::iter::repeat_n(1u8, extra));
            frame[14] = 0x45 + options as u8;
            let total = u16::from_be_bytes([frame[16], frame[17]]) + extra as u16;
            frame[16..18].copy_from_slice(&total.to_be_bytes());
        }
        // Padding after the IP packet, as short Ethernet frames carry.
        frame.extend(std::iter::repeat_n(0u8, trailer));
        for (at, b) in &flips {
            let at = (*at).min(frame.len() - 1);
            frame[at] = *b;
        }
        let frame = &frame[..cut.index(frame.len() + 1)];
        let decap = pcap_capture::session::tunnel::Decap::standard();
        if let Some(quick) = pcap_capture::session::packet::quick_decode(frame, &decap) {
            let full = pcap_capture::session::packet::decode_with(linktype::ETHERNET, frame, &decap);
            prop_assert_eq!(Some(quick), full);
        }
    }
}

#[test]
fn the_table_stays_bounded_and_records_every_session() {
    let mut table = SessionTable::new(1000, Duration::from_secs(3600));
    for port in 0..5000u16 {
        let f = tcp_frame(port, 0x02, 1, b"");
        table.packet(linktype::ETHERNET, u64::from(port), &f, f.len() as u32);
        assert!(table.len() <= 1000);
    }
    assert_eq!(table.stats.sessions, 5000);
    assert!(table.stats.evicted_full >= 4000);
    assert_eq!(
        records_of(table),
        5000,
        "evicted sessions are recorded, not lost"
    );
}

#[test]
fn idle_sessions_leave_the_table() {
    let mut table = SessionTable::new(1000, Duration::from_secs(10));
    table.packet(linktype::ETHERNET, 0, &tcp_frame(80, 0x02, 1, b""), 54);
    table.packet(
        linktype::ETHERNET,
        30_000_000_000,
        &tcp_frame(81, 0x02, 1, b""),
        54,
    );
    assert_eq!(table.stats.evicted_idle, 1);
    assert_eq!(table.take_finished().len(), 1);
    assert_eq!(table.len(), 1);
}

/// What each protocol of the registry sends first: the client's bytes, then the server's.
/// Every registered protocol has one; a protocol added without one fails the test below.
fn sample(app: App) -> (Vec<u8>, Vec<u8>) {
    let text = |c: &str, s: &str| (c.as_bytes().to_vec(), s.as_bytes().to_vec());
    let hex = |h: &str| {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    match app {
        // An SMB2 SESSION_SETUP carrying an NTLMSSP AUTHENTICATE (LAB\alice), framed as on 445.
        App::Smb => (
            hex(
                "000000eafe534d42400000000000000001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000580092000000000000000000a182010030814e544c4d53535000030000001800180048000000180018006000000006000600780000000a000a007e0000000400040088000000000000008c0000000100080000000000000000000000000000000000000000000000000000000000000000000101010101010101010101010101010101010101010101014c004100420061006c0069006300650057005300",
            ),
            Vec::new(),
        ),
        // An AS-REQ for alice@LAB.TEST.
        App::Kerberos => (
            hex(
                "6a7d307ba103020105a20302010aa46f306da00703050050000000a1123010a003020101a10930071b05616c696365a20a1b084c41422e54455354a31d301ba003020102a11430121b066b72627467741b084c41422e54455354a511180f32303337303931333032343830355aa706020412345678a8083006020112020111",
            ),
            Vec::new(),
        ),
        App::Tls => (client_hello("device.lab"), Vec::new()),
        App::Ssh => text("SSH-2.0-OpenSSH_9.2\r\n", "SSH-2.0-dropbear\r\n"),
        App::Ssdp => text(
            "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nST: ssdp:all\r\n\r\n",
            "HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.2:49152/desc.xml\r\n\r\n",
        ),
        App::Http => text(
            "GET /fw.bin HTTP/1.1\r\nHost: lab\r\nAuthorization: Basic YTpi\r\n\r\nPOST /up HTTP/1.1\r\nHost: lab\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 60\r\n\r\n--x\r\nContent-Disposition: form-data; filename=\"a.txt\"\r\n\r\nhi\r\n--x--\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Disposition: attachment; filename*=UTF-8''f%C3%BC.bin\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        ),
        App::Rtsp => text(
            "DESCRIBE rtsp://cam.lab/stream RTSP/1.0\r\nCSeq: 1\r\n\r\n",
            "RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 0\r\n\r\n",
        ),
        App::Sip => text(
            "INVITE sip:bob@lab SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1\r\nContent-Length: 0\r\n\r\n",
            "SIP/2.0 180 Ringing\r\nContent-Length: 0\r\n\r\n",
        ),
        App::Smtp => text(
            "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: =?UTF-8?B?w4k=?=\r\n\r\nx\r\n.\r\n",
            "220 mx ESMTP\r\n",
        ),
        App::Ftp => text("USER anna\r\nRETR fw.bin\r\n", "220 (vsFTPd 3.0.3)\r\n"),
        App::Mqtt => (
            b"\x10\x17\x00\x04MQTT\x04\xc2\x00\x3c\x00\x02c1\x00\x03dev\x00\x02pw".to_vec(),
            b"\x20\x02\x00\x00".to_vec(),
        ),
        App::Dhcp => {
            let mut d = vec![0u8; 300];
            d[0] = 1;
            d[236..240].copy_from_slice(&[99, 130, 83, 99]);
            (d, Vec::new())
        }
        App::Dhcpv6 => (
            vec![1, 0x12, 0x34, 0x56, 0, 1, 0, 4, 0, 1, 0, 1],
            Vec::new(),
        ),
        App::Bacnet => (vec![0x81, 0x0b, 0x00, 0x06, 0x01, 0x20], Vec::new()),
        App::Dns | App::Mdns => (dns_query("device.lab"), Vec::new()),
        App::Ntp => {
            let mut n = vec![0u8; 48];
            n[0] = 0x23;
            (n, Vec::new())
        }
        App::Coap => (vec![0x40, 0x01, 0x12, 0x34], Vec::new()),
        App::Modbus => (
            vec![0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1],
            vec![0, 1, 0, 0, 0, 5, 1, 3, 2, 0, 7],
        ),
        App::Postgresql => (
            [&[0, 0, 0, 21, 0, 3, 0, 0][..], b"user\0app_rw\0\0"].concat(),
            b"R\0\0\0\x08\0\0\0\0".to_vec(),
        ),
        App::Mysql => (
            [
                &[32, 0, 0, 1, 0x05, 0xa6, 0x0f, 0, 0, 0, 0, 1, 45][..],
                &[0; 23],
                b"report_ro\0",
            ]
            .concat(),
            [
                &[46, 0, 0, 0, 0x0a][..],
                b"11.4.2-MariaDB\0",
                &[5, 0, 0, 0],
                &[0x61; 8],
                &[0, 0xfe, 0xf7, 8, 2, 0, 0xff, 0x81, 21],
                &[0; 10],
            ]
            .concat(),
        ),
        App::Rdp => (
            [
                &[3, 0, 0, 42, 37, 0xe0, 0, 0, 0, 0, 0][..],
                b"Cookie: mstshash=jdoe\r\n",
                &[1, 0, 8, 0, 3, 0, 0, 0],
            ]
            .concat(),
            Vec::new(),
        ),
        App::Radius => (
            [
                &[1, 7, 0, 31][..],
                &[0x11; 16],
                &[1, 5, b'b', b'o', b'b'],
                &[4, 6, 127, 0, 0, 1],
            ]
            .concat(),
            Vec::new(),
        ),
        App::Tftp => (b"\0\x01fw.bin\0octet\0".to_vec(), Vec::new()),
        App::Pop3 => text("USER anna\r\nRETR 1\r\n", "+OK Dovecot ready.\r\n"),
        App::Imap => text(
            "a1 LOGIN anna pw\r\n",
            "* OK [CAPABILITY IMAP4rev1] ready\r\n",
        ),
        // A bind to the LSA interface, little-endian, no verifier.
        App::Dcerpc => (
            [
                &[5, 0, 11, 3, 0x10, 0, 0, 0, 72, 0, 0, 0, 1, 0, 0, 0][..],
                &[0xb8, 0x10, 0xb8, 0x10, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0],
                &[
                    0x78, 0x57, 0x34, 0x12, 0x34, 0x12, 0xcd, 0xab, 0xef, 0, 1, 0x23, 0x45, 0x67,
                    0x89, 0xab,
                ],
                &[0, 0, 0, 0],
                &[
                    0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0, 0x2b,
                    0x10, 0x48, 0x60,
                ],
                &[2, 0, 0, 0],
            ]
            .concat(),
            Vec::new(),
        ),
        // A pre-login: VERSION, ENCRYPTION (off), end.
        App::Tds => (
            vec![
                0x12, 1, 0, 27, 0, 0, 1, 0, 0, 0, 11, 0, 6, 1, 0, 17, 0, 1, 0xff, 16, 0, 0, 0, 0,
                0, 0,
            ],
            Vec::new(),
        ),
        // A simple bind as cn=a with an empty password.
        App::Ldap => (
            [
                &[0x30, 0x10, 2, 1, 1, 0x60, 0x0b, 2, 1, 3, 4, 4][..],
                b"cn=a",
                &[0x80, 0],
            ]
            .concat(),
            Vec::new(),
        ),
        other => panic!("{other} is registered but has no sample here: add one"),
    }
}

/// A TLS record holding a ClientHello with the server name `sni`.
fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut sni_ext = Vec::new();
    sni_ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    sni_ext.push(0);
    sni_ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni_ext.extend_from_slice(name);
    let mut ext = vec![0, 0];
    ext.extend_from_slice(&(sni_ext.len() as u16).to_be_bytes());
    ext.extend_from_slice(&sni_ext);
    let mut hello = vec![3, 3];
    hello.extend_from_slice(&[7; 32]);
    hello.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    hello.extend_from_slice(&ext);
    let mut handshake = vec![1, 0];
    handshake.extend_from_slice(&(hello.len() as u16).to_be_bytes());
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// A DNS query for `name`, type A.
fn dns_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

fn eth() -> etherparse::PacketBuilderStep<etherparse::Ethernet2Header> {
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
}

/// The frames of one session of `protocol` on server port `port`: a handshake for TCP, then the
/// client's bytes and the server's in segments of `piece` bytes (one datagram each for UDP).
fn session_frames(protocol: &Protocol, tcp: bool, port: u16, piece: usize) -> Vec<Vec<u8>> {
    let (mut client, server) = sample(protocol.app);
    if tcp && matches!(protocol.app, App::Dns | App::Mdns) {
        // DNS over TCP: each message after its length.
        let len = (client.len() as u16).to_be_bytes();
        client.splice(0..0, len);
    }
    if tcp && protocol.app == App::Kerberos {
        // Kerberos over TCP: each message after its 4-byte length.
        let len = (client.len() as u32).to_be_bytes();
        client.splice(0..0, len);
    }
    let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let mut frames = Vec::new();
    let mut frame = |to_server: bool, seq: u32, syn: bool, payload: &[u8]| {
        let ip = if to_server {
            eth().ipv4(c, s, 64)
        } else {
            eth().ipv4(s, c, 64)
        };
        let ports = if to_server {
            (40000, port)
        } else {
            (port, 40000)
        };
        let mut f = Vec::new();
        if tcp {
            let b = ip.tcp(ports.0, ports.1, seq, 65535);
            let b = if syn { b.syn() } else { b.ack(1).psh() };
            b.write(&mut f, payload).unwrap();
        } else {
            ip.udp(ports.0, ports.1).write(&mut f, payload).unwrap();
        }
        frames.push(f);
    };
    if tcp {
        frame(true, 99, true, b"");
        frame(false, 499, true, b"");
        // The server speaks first in greeting protocols: its bytes go first when the client
        // has none to begin with, as SMTP's and FTP's do.
        let server_first = matches!(protocol.app, App::Smtp | App::Ftp);
        let mut sides = [(true, 100u32, &client), (false, 500u32, &server)];
        if server_first {
            sides.swap(0, 1);
        }
        for (to_server, start, bytes) in sides {
            let mut seq = start;
            for part in bytes.chunks(piece.max(1)) {
                frame(to_server, seq, false, part);
                seq += part.len() as u32;
            }
        }
    } else {
        for (to_server, bytes) in [(true, &client), (false, &server)] {
            if !bytes.is_empty() {
                frame(to_server, 0, false, bytes);
            }
        }
    }
    frames
}

fn transports(protocol: &Protocol) -> Vec<bool> {
    match protocol.transports {
        Transports::Tcp => vec![true],
        Transports::Udp => vec![false],
        Transports::Both => vec![true, false],
    }
}

#[test]
fn every_registered_protocol_is_recognised_from_its_sample() {
    for protocol in REGISTRY {
        for tcp in transports(protocol) {
            // Known by payload on any port; a weak signature only on its own ports.
            let weak = matches!(protocol.app, App::Coap | App::Dhcpv6 | App::Ntp | App::Mdns);
            let port = match protocol.probe {
                Some(_) if !weak => 47_000,
                _ => protocol.ports[0],
            };
            let mut table = SessionTable::new(16, Duration::from_secs(60));
            for (i, f) in session_frames(protocol, tcp, port, 7).iter().enumerate() {
                table.packet(linktype::ETHERNET, i as u64, f, f.len() as u32);
            }
            let sessions = table.finish();
            assert_eq!(sessions.len(), 1, "{}", protocol.app);
            assert_eq!(
                sessions[0].application(),
                protocol.app,
                "{} over {} on port {port}",
                protocol.app,
                if tcp { "TCP" } else { "UDP" }
            );
        }
    }
}

/// An IPv4 fragment of a UDP datagram (`whole`: the UDP header and payload).
fn fragment_v4(whole: &[u8], id: u16, offset: usize, len: usize, more: bool) -> Vec<u8> {
    let part = &whole[offset.min(whole.len())..(offset + len).min(whole.len())];
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (20 + part.len()) as u16;
    let flags_offset = ((offset / 8) as u16) | if more { 0x2000 } else { 0 };
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&flags_offset.to_be_bytes());
    f.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend_from_slice(part);
    f
}

/// An IPv6 fragment of a UDP datagram.
fn fragment_v6(whole: &[u8], id: u32, offset: usize, len: usize, more: bool) -> Vec<u8> {
    let part = &whole[offset.min(whole.len())..(offset + len).min(whole.len())];
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&((8 + part.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[44, 64]);
    f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    let offset_flags = ((offset / 8) as u16) << 3 | u16::from(more);
    f.extend_from_slice(&[17, 0]);
    f.extend_from_slice(&offset_flags.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(part);
    f
}

/// A UDP datagram (header and payload) from port 40000 to 53 carrying a DNS query padded to
/// `len` bytes of payload.
fn dns_datagram(len: usize) -> Vec<u8> {
    let mut payload = dns_query("fragmented.lab");
    payload.resize(len.max(payload.len()), 0);
    let mut d = Vec::new();
    d.extend_from_slice(&40000u16.to_be_bytes());
    d.extend_from_slice(&53u16.to_be_bytes());
    d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(&payload);
    d
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Every parser of the registry on its own traffic, cut at any place, bytes flipped,
    /// segments reordered, dropped or repeated: no panic, and records written.
    #[test]
    fn every_parser_survives_its_own_traffic_mangled(
        which in any::<prop::sample::Index>(),
        udp in any::<bool>(),
        piece in 1usize..300,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>()), 0..6),
        order in prop::collection::vec(any::<prop::sample::Index>(), 0..24),
    ) {
        let protocol = REGISTRY[which.index(REGISTRY.len())];
        let choices = transports(protocol);
        let tcp = choices[usize::from(udp) % choices.len()];
        let mut frames = session_frames(protocol, tcp, protocol.ports.first().copied().unwrap_or(9), piece);
        for (f, at, b) in &flips {
            let frame = f.index(frames.len());
            let at = at.index(frames[frame].len());
            frames[frame][at] = *b;
        }
        // Frames in a shuffled order with repeats and losses, or in order.
        let sequence: Vec<usize> = if order.is_empty() {
            (0..frames.len()).collect()
        } else {
            order.iter().map(|i| i.index(frames.len())).collect()
        };
        let mut table = SessionTable::new(16, Duration::from_secs(60));
        for (t, i) in sequence.into_iter().enumerate() {
            let f = &frames[i];
            table.packet(linktype::ETHERNET, t as u64, f, f.len() as u32);
        }
        records_of(table);
    }

    /// Fragments of a datagram in any order, with repeats, of any size, over IPv4 and IPv6:
    /// put together when they all came and do not overlap, given up otherwise; never a panic.
    #[test]
    fn fragments_in_any_order_come_whole_or_are_given_up(
        v6 in any::<bool>(),
        len in 20usize..3000,
        size in 1usize..200,
        order in prop::collection::vec(any::<prop::sample::Index>(), 1..40),
        overlap in any::<bool>(),
    ) {
        let whole = dns_datagram(len);
        let step = size * 8;
        let offsets: Vec<usize> = (0..whole.len()).step_by(step).collect();
        let frame = |i: usize| {
            let offset = offsets[i];
            let more = offset + step < whole.len();
            // An overlapping fragment rewrites bytes another one carried.
            let (offset, len) = if overlap && i == offsets.len() / 2 && offset >= 8 {
                (offset - 8, step + 8)
            } else {
                (offset, step)
            };
            if v6 {
                fragment_v6(&whole, 7, offset, len, more)
            } else {
                fragment_v4(&whole, 7, offset, len, more)
            }
        };
        let mut table = SessionTable::new(16, Duration::from_secs(60));
        let mut sent = std::collections::BTreeSet::new();
        for (t, i) in order.iter().map(|i| i.index(offsets.len())).enumerate() {
            let f = frame(i);
            sent.insert(i);
            table.packet(linktype::ETHERNET, t as u64, &f, f.len() as u32);
        }
        table.end_fragments();
        let stats = table.stats.reassembly;
        let sessions = table.finish();
        let middle = offsets.len() / 2;
        let overlapped = overlap && offsets[middle] >= 8 && sent.contains(&middle);
        if sent.len() == offsets.len() && !overlapped {
            prop_assert_eq!(sessions.len(), 1);
            prop_assert_eq!(sessions[0].application(), App::Dns);
            prop_assert_eq!(&sessions[0].found().urls, &["dns://fragmented.lab".to_owned()]);
        } else if sent.len() < offsets.len() {
            prop_assert!(sessions.is_empty(), "an incomplete datagram is no packet");
            prop_assert!(stats.fragments_given_up > 0);
        }
    }
}
