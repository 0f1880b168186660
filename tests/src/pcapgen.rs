//! Capture files built by the tests: pcap and pcapng writers and frame builders for the odd
//! cases (VLAN tags, IPv6 extension headers, fragments, tunnels, cooked captures).

use etherparse::PacketBuilder;

/// A pcap file (nanosecond timestamps) of `frames` with link type `linktype`.
pub fn pcap(linktype: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&linktype.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        out.extend_from_slice(&(i as u32 * 1000).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out.extend(std::iter::repeat_n(0, pad));
    out.extend_from_slice(&len.to_le_bytes());
}

/// A pcapng file with one interface per link type in `interfaces`, and `frames` as
/// (interface index, frame).
pub fn pcapng(interfaces: &[u32], frames: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    for lt in interfaces {
        let mut idb = Vec::new();
        idb.extend_from_slice(&(*lt as u16).to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&262_144u32.to_le_bytes());
        block(&mut out, 1, &idb);
    }
    for (i, (iface, f)) in frames.iter().enumerate() {
        let mut epb = Vec::new();
        let ts = 1_700_000_000_000_000u64 + i as u64;
        epb.extend_from_slice(&iface.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(f);
        block(&mut out, 6, &epb);
    }
    out
}

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// Ethernet/IPv4/UDP.
pub fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(src, dst, 64)
        .udp(sport, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("build");
    out
}

/// Ethernet/IPv4/TCP with `flags` (SYN 0x02, ACK 0x10, PSH 0x08) and sequence `seq`.
pub fn tcp4(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, seq, 65535);
    if flags & 0x02 != 0 {
        b = b.syn();
    }
    if flags & 0x10 != 0 {
        b = b.ack(1);
    }
    if flags & 0x08 != 0 {
        b = b.psh();
    }
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("build");
    out
}

/// Ethernet with 802.1Q and 802.1ad (QinQ) tags / IPv4 / UDP.
pub fn udp4_qinq(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .double_vlan(
            etherparse::VlanId::try_new(100).expect("vlan"),
            etherparse::VlanId::try_new(200).expect("vlan"),
        )
        .ipv4(src, dst, 64)
        .udp(sport, dport);
    let mut out = Vec::new();
    b.write(&mut out, b"qinq").expect("build");
    out
}

/// Ethernet/IPv6 with a hop-by-hop options header / UDP.
pub fn udp6_with_extension(sport: u16, dport: u16) -> Vec<u8> {
    let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let udp_len = 8 + 4;
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&((8 + udp_len) as u16).to_be_bytes());
    f.push(0); // next header: hop-by-hop
    f.push(64);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop: next UDP, PadN
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(b"ext6");
    f
}

/// The two fragments of one IPv4/UDP datagram (the first carries the ports).
pub fn udp4_fragments() -> [Vec<u8>; 2] {
    let whole = udp4([10, 1, 0, 1], [10, 1, 0, 2], 5000, 6000, &[0x61; 64]);
    let ip = &whole[14..];
    let payload = &ip[20..]; // UDP header + data, 72 bytes
    let frag = |offset_units: u16, more: bool, part: &[u8]| {
        let mut f = whole[..14].to_vec();
        let mut h = ip[..20].to_vec();
        let total = (20 + part.len()) as u16;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        let flags = if more { 0x2000 } else { 0 } | offset_units;
        h[6..8].copy_from_slice(&flags.to_be_bytes());
        h[10..12].copy_from_slice(&[0, 0]);
        f.extend_from_slice(&h);
        f.extend_from_slice(part);
        f
    };
    [
        frag(0, true, &payload[..40]),
        frag(5, false, &payload[40..]),
    ]
}

/// IPv4 GRE carrying IPv4/UDP (raw IP link type, so the frame starts at the outer IP header).
pub fn gre_raw() -> Vec<u8> {
    let inner = udp4([192, 168, 9, 1], [192, 168, 9, 2], 7000, 7001, b"inner");
    let inner_ip = &inner[14..];
    let b = PacketBuilder::ipv4([10, 2, 0, 1], [10, 2, 0, 2], 64);
    let mut gre = vec![0, 0, 0x08, 0x00];
    gre.extend_from_slice(inner_ip);
    let mut out = Vec::new();
    b.write(&mut out, etherparse::IpNumber(47), &gre)
        .expect("build");
    out
}

/// VXLAN (UDP 4789) carrying an Ethernet/IPv4/UDP frame.
pub fn vxlan() -> Vec<u8> {
    let inner = udp4([192, 168, 8, 1], [192, 168, 8, 2], 8000, 8001, b"vx");
    let mut payload = vec![0x08, 0, 0, 0, 0, 0, 0x64, 0];
    payload.extend_from_slice(&inner);
    udp4([10, 3, 0, 1], [10, 3, 0, 2], 49152, 4789, &payload)
}

/// A Linux cooked capture v2 frame (as `any` captures) holding IPv4/UDP.
pub fn sll2_udp() -> Vec<u8> {
    let eth = udp4([10, 4, 0, 1], [10, 4, 0, 2], 9100, 9200, b"sll2");
    let mut f = vec![0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 4, 6];
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&eth[14..]);
    f
}

/// The frames of a crafted flow that stays inspecting, flow `n` of a flood (its client address
/// and port from `n`, to port 80 of 198.18.0.1): a SYN, an HTTP request head cut before its
/// end (`head` bytes of it, in 1400-byte segments), and `ooo` segments past a hole that never
/// fills.
pub fn half_open_http_flow(n: u32, head: usize, ooo: usize) -> Vec<Vec<u8>> {
    let client = [198, 19, (n >> 8) as u8, n as u8];
    let (server, sport) = ([198, 18, 0, 1], 10_000 + (n >> 16) as u16);
    let mut frames = vec![tcp4(client, server, sport, 80, 1000, 0x02, b"")];
    let mut request = b"GET /a HTTP/1.1\r\nHost: lab\r\nX-Pad: ".to_vec();
    request.resize(head, b'a');
    let mut seq = 1001;
    for piece in request.chunks(1400) {
        frames.push(tcp4(client, server, sport, 80, seq, 0x18, piece));
        seq += piece.len() as u32;
    }
    for i in 0..ooo as u32 {
        frames.push(tcp4(
            client,
            server,
            sport,
            80,
            seq + 5000 + i * 1400,
            0x18,
            &[b'b'; 1400],
        ));
    }
    frames
}
