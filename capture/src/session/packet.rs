//! Decoding a captured frame down to what the session table needs: addresses, protocol, ports,
//! TCP flags and sequence, and the transport payload, inside any tunnels ([`super::tunnel`]).
//! Link types: Ethernet (with 802.1Q and QinQ tags), Linux cooked capture v1 and v2, raw IP,
//! BSD and OpenBSD loopback, NFLOG, and IEEE 802.11 data frames (with or without radiotap).
//! Truncated frames (snaplen) decode as far as their bytes go; nothing here can panic on input.

use std::net::IpAddr;

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket};

use super::tunnel::{self, Decap, Frame, Outer, Tunnels};

/// Link types the decoder understands (the pcap LINKTYPE_ values).
pub mod linktype {
    pub const ETHERNET: u32 = 1;
    pub const RAW: u32 = 101;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
    /// DLT_RAW on some platforms.
    pub const RAW_ALT: u32 = 12;
    /// BSD loopback: the address family in host byte order, then the packet.
    pub const NULL: u32 = 0;
    /// OpenBSD loopback: the address family in network byte order.
    pub const LOOP: u32 = 108;
    pub const IEEE802_11: u32 = 105;
    pub const IEEE802_11_RADIOTAP: u32 = 127;
    /// Linux NFLOG (iptables/nftables `log group`): TLVs, the packet in NFULA_PAYLOAD.
    pub const NFLOG: u32 = 239;

    /// Whether the decoder reads frames of `linktype` (others are counted apart).
    pub fn known(linktype: u32) -> bool {
        matches!(
            linktype,
            ETHERNET
                | RAW
                | RAW_ALT
                | IPV4
                | IPV6
                | LINUX_SLL
                | LINUX_SLL2
                | NULL
                | LOOP
                | IEEE802_11
                | IEEE802_11_RADIOTAP
                | NFLOG
        )
    }
}

/// IP protocol numbers the table distinguishes.
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP: u8 = 1;
pub const ICMPV6: u8 = 58;
pub const SCTP: u8 = 132;

/// TCP flag bits.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

/// The transport view of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    /// Ports for TCP and UDP; 0 otherwise (or when the header was cut off).
    pub sport: u16,
    pub dport: u16,
    /// TCP flags and sequence number, when the TCP header is complete.
    pub tcp: Option<(u8, u32)>,
    /// The type and code of an ICMP or ICMPv6 message.
    pub icmp: Option<(u8, u8)>,
    /// The transport payload present in the capture (possibly cut by the snaplen).
    pub payload: &'a [u8],
    /// The encapsulations the packet was found inside, outermost first (none for most).
    pub tunnels: Tunnels,
}

impl Decoded<'_> {
    /// A packet between `src` and `dst` of protocol `proto`, its transport not read yet.
    fn bare(src: IpAddr, dst: IpAddr, proto: u8) -> Self {
        Decoded {
            src,
            dst,
            proto,
            sport: 0,
            dport: 0,
            tcp: None,
            icmp: None,
            payload: &[],
            tunnels: Tunnels::default(),
        }
    }
}

/// A fragment of an IP packet (not an atomic one), for [`super::reassembly`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The protocol of the whole datagram's payload.
    pub proto: u8,
    pub id: u32,
    /// Where the fragment's payload goes in the datagram, in bytes.
    pub offset: u16,
    /// Whether more fragments follow this one.
    pub more: bool,
    pub payload: &'a [u8],
    /// The encapsulations the fragment was found inside.
    pub tunnels: Tunnels,
}

/// A frame decoded: a packet, or a fragment of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decode<'a> {
    Packet(Decoded<'a>),
    Fragment(Fragment<'a>),
}

/// Decodes `data` of link type `linktype`, taking off the tunnels [`Decap::standard`] knows;
/// see [`decode_with`].
pub fn decode(linktype: u32, data: &[u8]) -> Option<Decoded<'_>> {
    decode_with(linktype, data, &Decap::standard())
}

/// Decodes `data` of link type `linktype` down to its innermost IP packet, taking off at most
/// `decap.max_depth` encapsulations. `None` for non-IP frames (also inside a tunnel: ARP in
/// VXLAN is no session), unknown link types, frames too short to hold an IP header, and IP
/// fragments ([`decode_frame`] gives those). A tunnel header that is not what its layer says
/// leaves the packet in the session of its outer headers.
pub fn decode_with<'a>(linktype: u32, data: &'a [u8], decap: &Decap) -> Option<Decoded<'a>> {
    match decode_frame(linktype, data, decap)? {
        Decode::Packet(d) => Some(d),
        Decode::Fragment(_) => None,
    }
}

/// As [`decode_with`], giving an IP fragment found at any depth as it is, for reassembly.
pub fn decode_frame<'a>(linktype: u32, data: &'a [u8], decap: &Decap) -> Option<Decode<'a>> {
    let mut frame = link_frame(linktype, data)?;
    let mut tunnels = Tunnels::default();
    let mut first = 0;
    // Traffic mirroring's usual carrier, read at fixed offsets; the inner frame then takes the
    // general path.
    if decap.max_depth > 0
        && let Frame::Ethernet(bytes) = frame
        && let Some(inner) = tunnel::plain_vxlan(bytes, decap, &mut tunnels)
    {
        frame = inner;
        first = 1;
    }
    for depth in first..=decap.max_depth {
        let may_decap = depth < decap.max_depth;
        let mut inner = tunnels;
        match step(frame, may_decap, &mut inner) {
            Some(Step::Inner(next)) => {
                tunnels = inner;
                frame = next;
            }
            Some(Step::Fragment(mut f)) => {
                f.tunnels = tunnels;
                return Some(Decode::Fragment(f));
            }
            Some(Step::Packet(mut d, ip_payload)) => {
                d.tunnels = tunnels;
                if !may_decap {
                    return Some(Decode::Packet(d));
                }
                let mut inner = tunnels;
                match tunnel::ip_inner(d.proto, d.dport, d.sport, ip_payload, decap, &mut inner) {
                    Some(next) => {
                        tunnel::carrier(
                            &mut inner,
                            Outer {
                                src: d.src,
                                dst: d.dst,
                                proto: d.proto,
                                sport: d.sport,
                                dport: d.dport,
                            },
                        );
                        tunnels = inner;
                        frame = next;
                    }
                    None => return Some(Decode::Packet(d)),
                }
            }
            None => return None,
        }
    }
    None
}

/// The first tunnel at the IP level of `data` (beneath any VLAN tags, MPLS or PPPoE): its layer
/// and the frame inside it. `None` when the frame carries no tunnel `decap` takes off.
pub fn first_tunnel<'a>(
    linktype: u32,
    data: &'a [u8],
    decap: &Decap,
) -> Option<(tunnel::Layer, Frame<'a>)> {
    let mut frame = link_frame(linktype, data)?;
    // Link-level layers (an MPLS stack counts one per label) before the IP header.
    for _ in 0..tunnel::MAX_LAYERS {
        let mut link = Tunnels::default();
        match step(frame, true, &mut link)? {
            Step::Inner(next) => frame = next,
            Step::Fragment(_) => return None,
            Step::Packet(d, ip_payload) => {
                let mut inside = Tunnels::default();
                let inner =
                    tunnel::ip_inner(d.proto, d.dport, d.sport, ip_payload, decap, &mut inside)?;
                return Some((*inside.layers().next()?, inner));
            }
        }
    }
    None
}

/// Where the network layer of a frame of `linktype` starts.
fn link_frame(linktype: u32, data: &[u8]) -> Option<Frame<'_>> {
    Some(match linktype {
        linktype::ETHERNET => Frame::Ethernet(data),
        linktype::RAW | linktype::RAW_ALT | linktype::IPV4 | linktype::IPV6 => Frame::Ip(data),
        linktype::LINUX_SLL => {
            // packet type (2), ARPHRD (2), address length (2), address (8), protocol (2)
            let proto = u16::from_be_bytes([*data.get(14)?, *data.get(15)?]);
            Frame::EtherType(proto, data.get(16..)?)
        }
        linktype::LINUX_SLL2 => {
            // protocol (2), reserved (2), ifindex (4), ARPHRD (2), packet type (1),
            // address length (1), address (8)
            let proto = u16::from_be_bytes([*data.first()?, *data.get(1)?]);
            Frame::EtherType(proto, data.get(20..)?)
        }
        linktype::NULL | linktype::LOOP => {
            let family: [u8; 4] = data.get(..4)?.try_into().ok()?;
            // NULL is in the capturing host's byte order: either.
            let ip = [u32::from_be_bytes(family), u32::from_le_bytes(family)]
                .iter()
                .any(|f| matches!(f, 2 | 10 | 24 | 28 | 30));
            if !ip {
                return None;
            }
            Frame::Ip(data.get(4..)?)
        }
        linktype::NFLOG => nflog(data)?,
        linktype::IEEE802_11_RADIOTAP => {
            let len = usize::from(u16::from_le_bytes([*data.get(2)?, *data.get(3)?]));
            dot11(data.get(len..)?)?
        }
        linktype::IEEE802_11 => dot11(data)?,
        _ => return None,
    })
}

/// The packet of an NFLOG record: family (1), version (1), resource id (2), then TLVs of a
/// length and type in host byte order (little-endian here), padded to 4 bytes; the payload
/// is type 9.
fn nflog(data: &[u8]) -> Option<Frame<'_>> {
    let mut at = 4;
    loop {
        let len = usize::from(u16::from_le_bytes([*data.get(at)?, *data.get(at + 1)?]));
        let kind = u16::from_le_bytes([*data.get(at + 2)?, *data.get(at + 3)?]);
        if len < 4 {
            return None;
        }
        if kind == 9 {
            return Some(Frame::Ip(data.get(at + 4..at + len)?));
        }
        at += len.div_ceil(4) * 4;
    }
}

/// The payload of an IEEE 802.11 data frame (not protected, not null data) with an LLC/SNAP
/// header, by its EtherType.
fn dot11(f: &[u8]) -> Option<Frame<'_>> {
    let (fc, flags) = (*f.first()?, *f.get(1)?);
    let (kind, subtype) = ((fc >> 2) & 0x3, fc >> 4);
    if kind != 2 || subtype & 0x4 != 0 || flags & 0x40 != 0 {
        return None;
    }
    let mut len = 24;
    if flags & 0x03 == 0x03 {
        len += 6; // the fourth address
    }
    if subtype & 0x8 != 0 {
        len += 2; // QoS control
        if flags & 0x80 != 0 {
            len += 4; // HT control
        }
    }
    let llc = f.get(len..len + 8)?;
    if llc[..3] != [0xaa, 0xaa, 0x03] {
        return None;
    }
    Some(Frame::EtherType(
        u16::from_be_bytes([llc[6], llc[7]]),
        f.get(len + 8..)?,
    ))
}

/// What one header layer gave: an IP packet (with its IP payload, transport header included),
/// or the frame inside a link-level encapsulation (MPLS, PPPoE).
enum Step<'a> {
    Packet(Decoded<'a>, &'a [u8]),
    Fragment(Fragment<'a>),
    Inner(Frame<'a>),
}

fn step<'a>(frame: Frame<'a>, may_decap: bool, tunnels: &mut Tunnels) -> Option<Step<'a>> {
    let sliced = match frame {
        Frame::Ethernet(b) => LaxSlicedPacket::from_ethernet(b).ok()?,
        Frame::EtherType(ether_type, b) => {
            if may_decap && let Some(inner) = tunnel::link_inner(ether_type, b, tunnels) {
                return Some(Step::Inner(inner));
            }
            LaxSlicedPacket::from_ether_type(EtherType(ether_type), b)
        }
        Frame::Ip(b) => LaxSlicedPacket::from_ip(b).ok()?,
    };
    let Some(net) = sliced.net.as_ref() else {
        // Ethernet (after any VLAN tags) carrying MPLS or PPPoE.
        let ether = sliced.ether_payload().filter(|_| may_decap)?;
        return tunnel::link_inner(ether.ether_type.0, ether.payload, tunnels).map(Step::Inner);
    };
    let (src, dst, payload) = match net {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            (
                IpAddr::from(h.source_addr()),
                IpAddr::from(h.destination_addr()),
                v4.payload(),
            )
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            (
                IpAddr::from(h.source_addr()),
                IpAddr::from(h.destination_addr()),
                v6.payload(),
            )
        }
        LaxNetSlice::Arp(_) => return None,
    };
    let proto = payload.ip_number.0;
    let bytes = payload.payload;
    // IPv6's fragment header is read here (etherparse 0.19 reads its offset and M bit in
    // another order, so its `fragmented` misjudges some fragments): a fragment at offset 0
    // without more to come is an atomic one, a packet (RFC 6946).
    let fragmented = match net {
        LaxNetSlice::Ipv6(_) => {
            let f = fragment(net, src, dst, proto, bytes);
            if let Some(f) = f.filter(|f| f.offset != 0 || f.more) {
                return Some(Step::Fragment(f));
            }
            false
        }
        _ => payload.fragmented,
    };
    if fragmented {
        return fragment(net, src, dst, proto, bytes).map(Step::Fragment);
    }
    let mut decoded = Decoded::bare(src, dst, proto);
    transport(&mut decoded, bytes);
    Some(Step::Packet(decoded, bytes))
}

/// The ports, TCP flags and sequence number, ICMP type and code and payload of `decoded`'s
/// transport header in `bytes` (the IP payload).
#[inline]
fn transport<'a>(decoded: &mut Decoded<'a>, bytes: &'a [u8]) {
    let proto = decoded.proto;
    match proto {
        ICMP | ICMPV6 if bytes.len() >= 2 => decoded.icmp = Some((bytes[0], bytes[1])),
        TCP | UDP if bytes.len() >= 4 => {
            decoded.sport = u16::from_be_bytes([bytes[0], bytes[1]]);
            decoded.dport = u16::from_be_bytes([bytes[2], bytes[3]]);
            if proto == UDP {
                decoded.payload = bytes.get(8..).unwrap_or(&[]);
            } else if bytes.len() >= 20 {
                let offset = usize::from(bytes[12] >> 4) * 4;
                let seq = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
                decoded.tcp = Some((bytes[13], seq));
                decoded.payload = if offset >= 20 {
                    bytes.get(offset..).unwrap_or(&[])
                } else {
                    &[]
                };
            }
        }
        _ => {}
    }
}

/// The IPv4 header of a plain frame, read at fixed offsets: untagged Ethernet, IPv4 that is
/// not a fragment and whose total length holds at least a UDP header, TCP or UDP. The header's
/// first 20 bytes, its length and the packet's total length.
#[inline]
pub fn plain_ipv4(data: &[u8]) -> Option<(&[u8], usize, usize)> {
    if data.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = data.get(ETHERNET_HEADER..ETHERNET_HEADER + 20)?;
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff;
    let plain = ip[0] >> 4 == 4
        && ihl >= 20
        && total >= ihl + 8
        && fragment == 0
        && matches!(ip[9], TCP | UDP);
    plain.then_some((ip, ihl, total))
}

/// Bytes of an Ethernet header without tags.
pub const ETHERNET_HEADER: usize = 14;

/// The decode of a plain frame ([`plain_ipv4`]) carrying TCP or a UDP datagram no tunnel could
/// be in (`decap`): what [`decode_with`] gives for it, without the general parse; `None` for
/// anything else.
pub fn quick_decode<'a>(data: &'a [u8], decap: &Decap) -> Option<Decoded<'a>> {
    let (ip, ihl, total) = plain_ipv4(data)?;
    // The payload as the total length bounds it, or what the capture kept of it.
    let end = (ETHERNET_HEADER + total).min(data.len());
    let bytes = data.get(ETHERNET_HEADER + ihl..end)?;
    let mut decoded = Decoded::bare(
        IpAddr::from([ip[12], ip[13], ip[14], ip[15]]),
        IpAddr::from([ip[16], ip[17], ip[18], ip[19]]),
        ip[9],
    );
    transport(&mut decoded, bytes);
    if decoded.proto == UDP && decap.may_carry(decoded.sport, decoded.dport) || bytes.len() < 4 {
        return None;
    }
    Some(decoded)
}

/// The 8 bytes of the Fragment header among the IPv6 extension headers `exts`, whose first
/// header is `first`. Walked here in safe code over the bytes etherparse kept: its extension
/// iterator (0.19) reads past the end of a chain that a lax parse cut short (a hop-by-hop
/// header after the first, or a header longer than the packet), which the fuzz corpus found.
fn ipv6_fragment_header(first: u8, exts: &[u8]) -> Option<&[u8]> {
    const HOP_BY_HOP: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAGMENT: u8 = 44;
    const AUTH: u8 = 51;
    const DEST_OPTIONS: u8 = 60;
    let (mut next, mut rest) = (first, exts);
    // A chain holds each kind of header at most twice (RFC 8200 section 4.1).
    for _ in 0..12 {
        let len = match next {
            FRAGMENT => 8,
            HOP_BY_HOP | ROUTING | DEST_OPTIONS => (usize::from(*rest.get(1)?) + 1) * 8,
            AUTH => (usize::from(*rest.get(1)?) + 2) * 4,
            _ => return None,
        };
        let header = rest.get(..len)?;
        if next == FRAGMENT {
            return Some(header);
        }
        next = header[0];
        rest = &rest[len..];
    }
    None
}

/// The fragment an IPv4 or IPv6 header says `payload` is.
fn fragment<'a>(
    net: &LaxNetSlice<'a>,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: &'a [u8],
) -> Option<Fragment<'a>> {
    let (id, offset, more) = match net {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            (
                u32::from(h.identification()),
                h.fragments_offset().value(),
                h.more_fragments(),
            )
        }
        // The fragment header's raw bytes (RFC 8200 section 4.5: the offset in the high 13
        // bits of bytes 2 and 3, the M flag in the lowest; etherparse 0.19 reads these bits
        // in another order, so they are read here).
        LaxNetSlice::Ipv6(v6) => {
            let ext = v6.extensions();
            let b = ipv6_fragment_header(ext.first_header()?.0, ext.slice())?;
            let field = u16::from_be_bytes([b[2], b[3]]);
            (
                u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                field >> 3,
                field & 1 == 1,
            )
        }
        LaxNetSlice::Arp(_) => return None,
    };
    Some(Fragment {
        src,
        dst,
        proto,
        id,
        offset: offset.checked_mul(8)?,
        more,
        payload,
        tunnels: Tunnels::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 UDP packet 10.0.0.1:1111 -> 10.0.0.2:53.
    fn ip_packet() -> Vec<u8> {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1111, 53)
            .write(&mut out, b"query")
            .unwrap();
        out
    }

    fn ends(d: &Decoded<'_>) -> (String, u16, String, u16) {
        (d.src.to_string(), d.sport, d.dst.to_string(), d.dport)
    }

    fn want() -> (String, u16, String, u16) {
        ("10.0.0.1".into(), 1111, "10.0.0.2".into(), 53)
    }

    /// An IPv6 UDP packet from fd00::1:1111 to fd00::2:53 with `payload`, behind a fragment
    /// header of `offset` (bytes) and `more` (the UDP header only in the first fragment).
    fn ipv6_fragment(id: u32, offset: u16, more: bool, part: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&((8 + part.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[44, 64]);
        p.extend_from_slice(&"fd00::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(&"fd00::2".parse::<std::net::Ipv6Addr>().unwrap().octets());
        p.extend_from_slice(&[UDP, 0]);
        // The offset in bytes is a multiple of 8: the 13-bit unit field shifted by 3.
        p.extend_from_slice(&(offset | u16::from(more)).to_be_bytes());
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(part);
        p
    }

    fn udp_header(len: usize) -> Vec<u8> {
        let mut h = 1111u16.to_be_bytes().to_vec();
        h.extend_from_slice(&53u16.to_be_bytes());
        h.extend_from_slice(&((8 + len) as u16).to_be_bytes());
        h.extend_from_slice(&[0, 0]);
        h
    }

    #[test]
    fn an_ipv6_atomic_fragment_is_a_whole_packet_and_real_fragments_are_fragments() {
        let mut whole = udp_header(5);
        whole.extend_from_slice(b"query");
        let atomic = ipv6_fragment(9, 0, false, &whole);
        let d = decode(linktype::RAW, &atomic).expect("an atomic fragment is whole (RFC 6946)");
        assert_eq!((d.sport, d.dport, d.payload), (1111, 53, &b"query"[..]));
        let first = ipv6_fragment(9, 0, true, &whole[..8]);
        match decode_frame(linktype::RAW, &first, &Decap::standard()) {
            Some(Decode::Fragment(f)) => {
                assert_eq!((f.id, f.offset, f.more, f.proto), (9, 0, true, UDP));
            }
            other => panic!("{other:?}"),
        }
        assert!(decode(linktype::RAW, &first).is_none());
    }

    #[test]
    fn teredo_and_nsh_are_taken_off() {
        // Teredo: IPv4/UDP 3544 carrying the IPv6 packet, after an origin indication.
        let mut inner = udp_header(5);
        inner.extend_from_slice(b"query");
        let ipv6 = ipv6_fragment(1, 0, false, &inner);
        let mut teredo = vec![0, 0, 0x12, 0x34, 1, 2, 3, 4];
        teredo.extend_from_slice(&ipv6);
        let mut carrier = Vec::new();
        etherparse::PacketBuilder::ipv4([192, 0, 2, 1], [198, 51, 100, 1], 64)
            .udp(40000, 3544)
            .write(&mut carrier, &teredo)
            .unwrap();
        let d = decode(linktype::RAW, &carrier).unwrap();
        assert_eq!((d.src.to_string(), d.dport), ("fd00::1".to_owned(), 53));
        assert_eq!(
            d.tunnels.layers().next().unwrap().kind,
            tunnel::Kind::Teredo
        );
        // NSH on Ethernet: MD type 2, two words, next protocol IPv4, service path 0x123.
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x89, 0x4f, 0x00, 0x02, 0x02, 0x01, 0x00, 0x01, 0x23, 0xff]);
        frame.extend_from_slice(&ip_packet());
        let d = decode(linktype::ETHERNET, &frame).unwrap();
        assert_eq!(ends(&d), want());
        let layer = d.tunnels.layers().next().unwrap();
        assert_eq!((layer.kind, layer.id), (tunnel::Kind::Nsh, Some(0x123)));
    }

    #[test]
    fn loopback_links_in_either_byte_order() {
        for (linktype, family) in [
            (linktype::NULL, 2u32.to_le_bytes()),
            (linktype::NULL, 2u32.to_be_bytes()),
            (linktype::LOOP, 2u32.to_be_bytes()),
            (linktype::NULL, 30u32.to_le_bytes()),
        ] {
            let frame = [&family[..], &ip_packet()].concat();
            let d = decode(linktype, &frame).expect("decoded");
            assert_eq!(ends(&d), want());
        }
        // An address family that is not IP is no session.
        let frame = [&7u32.to_le_bytes()[..], &ip_packet()].concat();
        assert!(decode(linktype::NULL, &frame).is_none());
    }

    #[test]
    fn nflog_records_give_their_payload_tlv() {
        let ip = ip_packet();
        let mut frame = vec![2, 0, 0, 1];
        // NFULA_PREFIX "x\0" (type 10), padded to 8 bytes; then the payload (type 9).
        frame.extend_from_slice(&6u16.to_le_bytes());
        frame.extend_from_slice(&10u16.to_le_bytes());
        frame.extend_from_slice(b"x\0\0\0");
        frame.extend_from_slice(&((ip.len() + 4) as u16).to_le_bytes());
        frame.extend_from_slice(&9u16.to_le_bytes());
        frame.extend_from_slice(&ip);
        assert_eq!(ends(&decode(linktype::NFLOG, &frame).unwrap()), want());
        for cut in 0..frame.len() - ip.len() {
            assert!(decode(linktype::NFLOG, &frame[..cut]).is_none(), "{cut}");
        }
    }

    #[test]
    fn wifi_data_frames_under_radiotap_give_their_ip_packet() {
        // A QoS data frame from the distribution system, LLC/SNAP, IPv4.
        let mut dot11 = vec![0x88, 0x02, 0, 0];
        dot11.extend_from_slice(&[0x11; 18]); // three addresses
        dot11.extend_from_slice(&[0, 0]); // sequence control
        dot11.extend_from_slice(&[0, 0]); // QoS control
        dot11.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        dot11.extend_from_slice(&ip_packet());
        let radiotap = [0u8, 0, 8, 0, 0, 0, 0, 0];
        let frame = [&radiotap[..], &dot11].concat();
        assert_eq!(
            ends(&decode(linktype::IEEE802_11_RADIOTAP, &frame).unwrap()),
            want()
        );
        assert_eq!(ends(&decode(linktype::IEEE802_11, &dot11).unwrap()), want());
        // Protected (encrypted) and management frames carry nothing readable.
        let mut protected = dot11.clone();
        protected[1] |= 0x40;
        assert!(decode(linktype::IEEE802_11, &protected).is_none());
        let mut beacon = dot11;
        beacon[0] = 0x80;
        assert!(decode(linktype::IEEE802_11, &beacon).is_none());
    }

    /// The fragment header is found behind other extension headers, and a chain that ends
    /// before its headers do (cut by the capture, or naming a header it does not hold) gives
    /// none rather than a read past its end.
    #[test]
    fn ipv6_fragment_header_is_found_in_a_chain_and_never_read_past_its_end() {
        // Destination options (8 bytes, next: fragment), then the fragment header.
        let mut chain = vec![44, 0, 1, 4, 0, 0, 0, 0];
        chain.extend([17, 0, 0x00, 0x11, 0xde, 0xad, 0xbe, 0xef]);
        let f = ipv6_fragment_header(60, &chain).unwrap();
        assert_eq!(f, &chain[8..]);
        for cut in 0..chain.len() {
            assert_eq!(
                ipv6_fragment_header(60, &chain[..cut]),
                None,
                "cut at {cut}"
            );
        }
        // A chain that names a hop-by-hop header it does not hold, and one that loops.
        assert_eq!(ipv6_fragment_header(0, &[]), None);
        assert_eq!(ipv6_fragment_header(60, &[60, 0, 0, 0, 0, 0, 0, 0]), None);
        let looping: Vec<u8> = [60u8, 0, 0, 0, 0, 0, 0, 0].repeat(20);
        assert_eq!(ipv6_fragment_header(60, &looping), None);
        // Not IPv6 extension headers at all.
        assert_eq!(ipv6_fragment_header(17, &chain), None);
    }
}
