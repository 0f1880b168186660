//! Tunnels and mirrored traffic: the encapsulations a sensor receives copies of traffic in
//! (VXLAN from cloud traffic mirroring, GENEVE, GRE and ERSPAN from switches, MPLS, IP in IP,
//! L2TP, PPPoE, Teredo, the service chains' NSH), taken off before the flow table so that its
//! sessions are the inner ones.
//!
//! Every header is read with bounds checks from the captured bytes; a header that is not what
//! its layer says (a VXLAN header without its VNI flag, a GRE version other than 0, a GENEVE
//! header longer than the packet) is no tunnel, and the packet stays the session of its outer
//! headers. The depth is bounded by [`Decap::max_depth`].

use std::net::IpAddr;

/// The encapsulation of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Vxlan,
    Geneve,
    Gre,
    /// ERSPAN type I, II or III (the version is in [`Layer::version`]).
    Erspan,
    Mpls,
    /// IPv4 or IPv6 directly inside IPv4 or IPv6 (protocol 4 or 41).
    IpInIp,
    L2tp,
    Pppoe,
    /// IPv6 in UDP 3544 (RFC 4380).
    Teredo,
    /// The Network Service Header of service function chaining (RFC 8300); its id is the
    /// service path.
    Nsh,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Vxlan => "vxlan",
            Kind::Geneve => "geneve",
            Kind::Gre => "gre",
            Kind::Erspan => "erspan",
            Kind::Mpls => "mpls",
            Kind::IpInIp => "ipip",
            Kind::L2tp => "l2tp",
            Kind::Pppoe => "pppoe",
            Kind::Teredo => "teredo",
            Kind::Nsh => "nsh",
        }
    }
}

/// One layer a packet was found inside: its kind and identifier (the VNI of VXLAN and GENEVE,
/// the GRE key, the ERSPAN session, the MPLS label, the L2TP or PPPoE session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layer {
    pub kind: Kind,
    pub id: Option<u32>,
    /// ERSPAN's type (1, 2 or 3), L2TP's version (2 or 3); 0 for the others.
    pub version: u8,
}

/// The carrier: the outermost IP header's addresses, protocol and ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outer {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

/// Most layers kept for a packet (an MPLS label stack counts one layer per label).
pub const MAX_LAYERS: usize = 8;

/// The layers around a packet, outermost first, and its carrier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tunnels {
    layers: [Option<Layer>; MAX_LAYERS],
    len: u8,
    pub outer: Option<Outer>,
}

impl Tunnels {
    pub fn layers(&self) -> impl Iterator<Item = &Layer> {
        self.layers[..usize::from(self.len)].iter().flatten()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, layer: Layer) {
        if usize::from(self.len) < MAX_LAYERS {
            self.layers[usize::from(self.len)] = Some(layer);
            self.len += 1;
        }
    }

    /// These layers, then `inner`'s (a packet found inside these, itself carrying tunnels);
    /// the carrier is the outermost known.
    pub fn then(&self, inner: &Tunnels) -> Tunnels {
        let mut all = *self;
        inner.layers().for_each(|l| all.push(*l));
        all.outer = self.outer.or(inner.outer);
        all
    }

    /// What separates sessions with the same addresses and ports: the VNIs of VXLAN and
    /// GENEVE (network segments whose address spaces may overlap). Labels, keys and session
    /// ids are left out: they differ between the two directions of one session.
    pub fn segment(&self) -> u32 {
        self.layers()
            .filter(|l| matches!(l.kind, Kind::Vxlan | Kind::Geneve))
            .filter_map(|l| l.id)
            // 24-bit VNIs; a second one (nested segments) folds in.
            .fold(0, |acc, vni| acc.rotate_left(11) ^ vni_segment(vni))
    }
}

/// The segment of one VXLAN or GENEVE VNI (never 0, the segment outside tunnels).
pub fn vni_segment(vni: u32) -> u32 {
    vni + 1
}

/// What is decapsulated, from the `[sessions]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decap {
    /// Encapsulation layers taken off at most (0: none, the outer headers are the session).
    pub max_depth: u8,
    pub vxlan_ports: Vec<u16>,
    pub geneve_ports: Vec<u16>,
}

impl Decap {
    /// The default: 4 layers, VXLAN on 4789, GENEVE on 6081.
    pub fn standard() -> Self {
        Decap {
            max_depth: 4,
            vxlan_ports: vec![4789],
            geneve_ports: vec![6081],
        }
    }

    /// Whether a UDP datagram between these ports may carry a tunnel taken off here.
    pub fn may_carry(&self, sport: u16, dport: u16) -> bool {
        self.max_depth > 0
            && (self.vxlan_ports.contains(&dport)
                || self.geneve_ports.contains(&dport)
                || dport == L2TP_PORT
                || sport == L2TP_PORT
                || dport == TEREDO_PORT
                || sport == TEREDO_PORT)
    }

    /// No decapsulation.
    pub fn off() -> Self {
        Decap {
            max_depth: 0,
            vxlan_ports: Vec::new(),
            geneve_ports: Vec::new(),
        }
    }
}

impl From<&pcap_config::TunnelSettings> for Decap {
    fn from(t: &pcap_config::TunnelSettings) -> Self {
        Decap {
            max_depth: match t.mode {
                pcap_config::TunnelMode::Outer => 0,
                _ => t.max_depth,
            },
            vxlan_ports: t.vxlan_ports.clone(),
            geneve_ports: t.geneve_ports.clone(),
        }
    }
}

impl Default for Decap {
    fn default() -> Self {
        Decap::standard()
    }
}

/// Where a frame's next header starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// An Ethernet header (with any VLAN tags).
    Ethernet(&'a [u8]),
    /// The payload of an Ethernet header or tag with this EtherType.
    EtherType(u16, &'a [u8]),
    /// An IPv4 or IPv6 header.
    Ip(&'a [u8]),
}

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_MPLS: u16 = 0x8847;
pub const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
pub const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_TEB: u16 = 0x6558;
const ETHERTYPE_ERSPAN_2: u16 = 0x88be;
const ETHERTYPE_ERSPAN_3: u16 = 0x22eb;

const PROTO_IPIP: u8 = 4;
const PROTO_IPV6: u8 = 41;
const PROTO_GRE: u8 = 47;
const PROTO_L2TP: u8 = 115;
const PROTO_UDP: u8 = 17;
const L2TP_PORT: u16 = 1701;
const TEREDO_PORT: u16 = 3544;
const ETHERTYPE_NSH: u16 = 0x894f;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The frame inside a link-level encapsulation (MPLS, PPPoE) of `ether_type`, with its layers.
pub fn link_inner<'a>(ether_type: u16, payload: &'a [u8], t: &mut Tunnels) -> Option<Frame<'a>> {
    match ether_type {
        ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => mpls(payload, t),
        ETHERTYPE_NSH => nsh(payload, t),
        ETHERTYPE_PPPOE_SESSION => {
            // version/type 0x11, code 0 (session data), session id, length, PPP protocol.
            if *payload.first()? != 0x11 || *payload.get(1)? != 0 {
                return None;
            }
            let session = be16(payload, 2)?;
            let inner = ppp(payload.get(6..)?)?;
            t.push(Layer {
                kind: Kind::Pppoe,
                id: Some(u32::from(session)),
                version: 0,
            });
            Some(inner)
        }
        _ => None,
    }
}

/// A PPP frame's payload by its protocol. The address and control bytes are optional, and
/// the protocol may be compressed to one byte (an odd first byte, RFC 1661 PFC).
fn ppp(b: &[u8]) -> Option<Frame<'_>> {
    let b = if b.starts_with(&[0xff, 0x03]) {
        &b[2..]
    } else {
        b
    };
    let (protocol, at) = match *b.first()? {
        short if short & 1 == 1 => (u16::from(short), 1),
        _ => (be16(b, 0)?, 2),
    };
    match protocol {
        0x0021 | 0x0057 => Some(Frame::Ip(b.get(at..)?)),
        _ => None,
    }
}

/// An MPLS label stack: one layer per label, then IPv4, IPv6 (by the first nibble) or, after a
/// pseudowire control word (first nibble 0), Ethernet.
fn mpls<'a>(b: &'a [u8], t: &mut Tunnels) -> Option<Frame<'a>> {
    let mut at = 0;
    let mut labels = [0u32; MAX_LAYERS];
    let mut n = 0;
    loop {
        let entry = be32(b, at)?;
        *labels.get_mut(n)? = entry >> 12;
        n += 1;
        at += 4;
        if entry & 0x100 != 0 {
            break;
        }
    }
    let rest = b.get(at..)?;
    let inner = match rest.first()? >> 4 {
        4 | 6 => Frame::Ip(rest),
        0 => Frame::Ethernet(rest.get(4..)?),
        _ => return None,
    };
    for &label in &labels[..n] {
        t.push(Layer {
            kind: Kind::Mpls,
            id: Some(label),
            version: 0,
        });
    }
    Some(inner)
}

/// The packet inside an IP packet of protocol `proto` with ports `sport`/`dport` (UDP) and IP
/// payload `payload` (the transport header included), if it is a tunnel `t` knows.
pub fn ip_inner<'a>(
    proto: u8,
    dport: u16,
    sport: u16,
    payload: &'a [u8],
    decap: &Decap,
    t: &mut Tunnels,
) -> Option<Frame<'a>> {
    let (layer, inner) = match proto {
        PROTO_UDP => {
            let udp = payload.get(8..)?;
            if decap.vxlan_ports.contains(&dport) {
                vxlan(udp)?
            } else if decap.geneve_ports.contains(&dport) {
                geneve(udp)?
            } else if dport == L2TP_PORT || sport == L2TP_PORT {
                l2tp_udp(udp)?
            } else if dport == TEREDO_PORT || sport == TEREDO_PORT {
                teredo(udp)?
            } else {
                return None;
            }
        }
        PROTO_GRE => return gre(payload, t),
        PROTO_IPIP | PROTO_IPV6 => (
            Layer {
                kind: Kind::IpInIp,
                id: None,
                version: 0,
            },
            Frame::Ip(payload),
        ),
        PROTO_L2TP => {
            // L2TPv3 over IP: session id 0 is a control message; data carries Ethernet
            // (no cookie, no sublayer: the Linux default).
            let session = be32(payload, 0)?;
            if session == 0 {
                return None;
            }
            (
                Layer {
                    kind: Kind::L2tp,
                    id: Some(session),
                    version: 3,
                },
                Frame::Ethernet(payload.get(4..)?),
            )
        }
        _ => return None,
    };
    t.push(layer);
    Some(inner)
}

/// The frame inside VXLAN carried by an untagged Ethernet IPv4 UDP datagram that is not a
/// fragment, read at fixed offsets (the layer and the carrier go into `t`); `None` for anything
/// else, which the general path reads.
pub fn plain_vxlan<'a>(data: &'a [u8], decap: &Decap, t: &mut Tunnels) -> Option<Frame<'a>> {
    const ETH: usize = 14;
    if data.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = data.get(ETH..ETH + 20)?;
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(ip, 2)?);
    if ip[0] >> 4 != 4 || ihl < 20 || ip[9] != PROTO_UDP || be16(ip, 6)? & 0x3fff != 0 {
        return None;
    }
    let udp = data.get(ETH + ihl..ETH + ihl + 8)?;
    let (sport, dport) = (be16(udp, 0)?, be16(udp, 2)?);
    if !decap.vxlan_ports.contains(&dport) {
        return None;
    }
    // The IP total length bounds the datagram (Ethernet padding is not part of it).
    let end = (ETH + total).min(data.len());
    let (layer, inner) = vxlan(data.get(ETH + ihl + 8..end)?)?;
    t.push(layer);
    carrier(
        t,
        Outer {
            src: IpAddr::from([ip[12], ip[13], ip[14], ip[15]]),
            dst: IpAddr::from([ip[16], ip[17], ip[18], ip[19]]),
            proto: PROTO_UDP,
            sport,
            dport,
        },
    );
    Some(inner)
}

/// VXLAN (RFC 7348): flags with the I bit, 24-bit VNI, then Ethernet.
fn vxlan(b: &[u8]) -> Option<(Layer, Frame<'_>)> {
    if b.first()? & 0x08 == 0 {
        return None;
    }
    let vni = be32(b, 4)? >> 8;
    Some((
        Layer {
            kind: Kind::Vxlan,
            id: Some(vni),
            version: 0,
        },
        Frame::Ethernet(b.get(8..)?),
    ))
}

/// GENEVE (RFC 8926): version 0, options length in 4-byte words, protocol type, VNI.
fn geneve(b: &[u8]) -> Option<(Layer, Frame<'_>)> {
    let first = *b.first()?;
    if first >> 6 != 0 {
        return None;
    }
    let len = 8 + usize::from(first & 0x3f) * 4;
    let vni = be32(b, 4)? >> 8;
    let inner = b.get(len..)?;
    let frame = match be16(b, 2)? {
        ETHERTYPE_TEB => Frame::Ethernet(inner),
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Frame::Ip(inner),
        _ => return None,
    };
    Some((
        Layer {
            kind: Kind::Geneve,
            id: Some(vni),
            version: 0,
        },
        frame,
    ))
}

/// GRE (RFC 2784/2890): checksum, key and sequence number when flagged; then by protocol type:
/// transparent Ethernet bridging, IP, MPLS, or ERSPAN type I/II (0x88BE) and III (0x22EB).
fn gre<'a>(b: &'a [u8], t: &mut Tunnels) -> Option<Frame<'a>> {
    let flags = be16(b, 0)?;
    // Version 0 only (1 is PPTP's); no routing (deprecated).
    if flags & 0x0007 != 0 || flags & 0x4000 != 0 {
        return None;
    }
    let protocol = be16(b, 2)?;
    let mut at = 4;
    if flags & 0x8000 != 0 {
        at += 4;
    }
    let key = if flags & 0x2000 != 0 {
        let k = be32(b, at)?;
        at += 4;
        Some(k)
    } else {
        None
    };
    let sequenced = flags & 0x1000 != 0;
    if sequenced {
        at += 4;
    }
    let rest = b.get(at..)?;
    let gre = Layer {
        kind: Kind::Gre,
        id: key,
        version: 0,
    };
    match protocol {
        ETHERTYPE_TEB => {
            t.push(gre);
            Some(Frame::Ethernet(rest))
        }
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => {
            t.push(gre);
            Some(Frame::Ip(rest))
        }
        ETHERTYPE_NSH => {
            let mut inner = Tunnels::default();
            let frame = nsh(rest, &mut inner)?;
            t.push(gre);
            inner.layers().for_each(|l| t.push(*l));
            Some(frame)
        }
        ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => {
            let mut inner = Tunnels::default();
            let frame = mpls(rest, &mut inner)?;
            t.push(gre);
            inner.layers().for_each(|l| t.push(*l));
            Some(frame)
        }
        // Type I has no sequence number and no ERSPAN header; type II has both.
        ETHERTYPE_ERSPAN_2 if !sequenced => {
            t.push(Layer {
                kind: Kind::Erspan,
                id: None,
                version: 1,
            });
            Some(Frame::Ethernet(rest))
        }
        ETHERTYPE_ERSPAN_2 => {
            let word = be16(rest, 0)?;
            if word >> 12 != 1 {
                return None;
            }
            let session = be16(rest, 2)? & 0x03ff;
            t.push(Layer {
                kind: Kind::Erspan,
                id: Some(u32::from(session)),
                version: 2,
            });
            Some(Frame::Ethernet(rest.get(8..)?))
        }
        ETHERTYPE_ERSPAN_3 => {
            let word = be16(rest, 0)?;
            if word >> 12 != 2 {
                return None;
            }
            let session = be16(rest, 2)? & 0x03ff;
            // The O bit: an 8-byte platform specific subheader follows the 12-byte header.
            let optional = be16(rest, 10)? & 0x0001 != 0;
            let len = if optional { 20 } else { 12 };
            t.push(Layer {
                kind: Kind::Erspan,
                id: Some(u32::from(session)),
                version: 3,
            });
            Some(Frame::Ethernet(rest.get(len..)?))
        }
        _ => None,
    }
}

/// Teredo (UDP 3544): an IPv6 packet, after an optional authentication indicator and an
/// optional origin indication.
fn teredo(b: &[u8]) -> Option<(Layer, Frame<'_>)> {
    let mut at = 0;
    if b.get(..2)? == [0x00, 0x01] {
        // Client id and authentication value lengths, both, then a nonce and a confirmation.
        let (id, auth) = (usize::from(*b.get(2)?), usize::from(*b.get(3)?));
        at += 4 + id + auth + 9;
    }
    if b.get(at..at + 2)? == [0x00, 0x00] {
        at += 8;
    }
    let ip = b.get(at..)?;
    if ip.len() < 40 || ip[0] >> 4 != 6 {
        return None;
    }
    Some((
        Layer {
            kind: Kind::Teredo,
            id: None,
            version: 0,
        },
        Frame::Ip(ip),
    ))
}

/// The Network Service Header (RFC 8300): version 0, its length in 4-byte words, the next
/// protocol (IPv4, IPv6, Ethernet, MPLS), the service path (the layer's id) and index.
fn nsh<'a>(b: &'a [u8], t: &mut Tunnels) -> Option<Frame<'a>> {
    let version = b.first()? >> 6;
    let len = usize::from(b.get(1)? & 0x3f) * 4;
    if version != 0 || len < 8 {
        return None;
    }
    let path = be32(b, 4)? >> 8;
    let rest = b.get(len..)?;
    let mut labels = Tunnels::default();
    let inner = match *b.get(3)? {
        1 | 2 => Frame::Ip(rest),
        3 => Frame::Ethernet(rest),
        5 => mpls(rest, &mut labels)?,
        _ => return None,
    };
    t.push(Layer {
        kind: Kind::Nsh,
        id: Some(path),
        version: 0,
    });
    labels.layers().for_each(|l| t.push(*l));
    Some(inner)
}

/// L2TP over UDP (port 1701): version 2 data messages carry PPP; version 3 data messages carry
/// Ethernet after the session id (no cookie). Control messages (T bit) carry no session.
fn l2tp_udp(b: &[u8]) -> Option<(Layer, Frame<'_>)> {
    let flags = be16(b, 0)?;
    if flags & 0x8000 != 0 {
        return None;
    }
    match flags & 0x000f {
        2 => {
            let mut at = 2;
            if flags & 0x4000 != 0 {
                at += 2; // length
            }
            at += 2; // tunnel id
            let session = be16(b, at)?;
            at += 2;
            if flags & 0x0800 != 0 {
                at += 4; // Ns, Nr
            }
            if flags & 0x0200 != 0 {
                let offset = usize::from(be16(b, at)?);
                at += 2 + offset;
            }
            Some((
                Layer {
                    kind: Kind::L2tp,
                    id: Some(u32::from(session)),
                    version: 2,
                },
                ppp(b.get(at..)?)?,
            ))
        }
        3 => {
            let session = be32(b, 4)?;
            Some((
                Layer {
                    kind: Kind::L2tp,
                    id: Some(session),
                    version: 3,
                },
                Frame::Ethernet(b.get(8..)?),
            ))
        }
        _ => None,
    }
}

/// Records `outer` as the carrier if none is yet.
pub fn carrier(t: &mut Tunnels, outer: Outer) {
    if t.outer.is_none() {
        t.outer = Some(outer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vxlan_needs_its_flag_and_gives_the_vni() {
        let mut b = vec![0x08, 0, 0, 0, 0x00, 0x13, 0x88, 0];
        b.extend_from_slice(&[0u8; 14]);
        let (layer, frame) = vxlan(&b).unwrap();
        assert_eq!(layer.id, Some(5000));
        assert_eq!(frame, Frame::Ethernet(&[0u8; 14]));
        b[0] = 0;
        assert!(vxlan(&b).is_none());
        for cut in 0..8 {
            assert!(vxlan(&b[..cut]).is_none() || cut >= 8);
        }
    }

    #[test]
    fn gre_reads_key_and_sequence_and_knows_erspan() {
        // K and S set, protocol ERSPAN type II, ERSPAN header version 1, session 300.
        let mut b = vec![0x30, 0x00, 0x88, 0xbe, 0, 0, 0, 42, 0, 0, 0, 7];
        b.extend_from_slice(&[0x10, 0x00, 0x01, 0x2c, 0, 0, 0, 0]);
        b.extend_from_slice(&[0xaa; 14]);
        let mut t = Tunnels::default();
        let frame = gre(&b, &mut t).unwrap();
        assert_eq!(frame, Frame::Ethernet(&[0xaa; 14]));
        let layers: Vec<_> = t.layers().copied().collect();
        assert_eq!(
            layers,
            [Layer {
                kind: Kind::Erspan,
                id: Some(300),
                version: 2
            }]
        );
        // Version 1 (PPTP) is no tunnel of ours; nor is a cut header.
        let mut pptp = b.clone();
        pptp[1] = 0x01;
        assert!(gre(&pptp, &mut Tunnels::default()).is_none());
        for cut in 0..20 {
            assert!(gre(&b[..cut], &mut Tunnels::default()).is_none(), "{cut}");
        }
    }

    #[test]
    fn an_mpls_stack_gives_a_layer_per_label_and_guesses_the_payload() {
        // Labels 100 and 200 (bottom of stack), then IPv4.
        let b = [
            0x00, 0x06, 0x40, 0x40, 0x00, 0x0c, 0x81, 0x40, 0x45, 0, 0, 20,
        ];
        let mut t = Tunnels::default();
        assert_eq!(mpls(&b, &mut t), Some(Frame::Ip(&b[8..])));
        let labels: Vec<_> = t.layers().map(|l| l.id.unwrap()).collect();
        assert_eq!(labels, [100, 200]);
        // A stack that never ends is refused.
        assert!(mpls(&[0u8; 64], &mut Tunnels::default()).is_none());
    }

    #[test]
    fn the_fixed_offset_vxlan_read_is_the_general_one() {
        let mut inner = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1, 1000)
            .write(&mut inner, b"GET / HTTP/1.1")
            .unwrap();
        let mut payload = vec![0x08, 0, 0, 0, 0, 0, 0x2a, 0];
        payload.extend_from_slice(&inner);
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0, 4])
            .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .udp(50000, 4789)
            .write(&mut frame, &payload)
            .unwrap();
        let mut quick = Tunnels::default();
        let fast = plain_vxlan(&frame, &Decap::standard(), &mut quick).unwrap();
        // The general path, from the outer IP packet.
        let mut general = Tunnels::default();
        let slow = ip_inner(
            17,
            4789,
            50000,
            &frame[34..],
            &Decap::standard(),
            &mut general,
        );
        assert_eq!(Some(fast), slow);
        assert_eq!(
            quick.layers().collect::<Vec<_>>(),
            general.layers().collect::<Vec<_>>()
        );
        assert_eq!(quick.outer.unwrap().sport, 50000);
        for cut in 0..50 {
            assert!(
                plain_vxlan(&frame[..cut], &Decap::standard(), &mut Tunnels::default()).is_none()
            );
        }
    }

    #[test]
    fn ppp_protocols_long_and_compressed() {
        let ip = [0x45u8, 0, 0, 20];
        for framed in [
            [&[0xffu8, 0x03, 0x00, 0x21][..], &ip].concat(),
            [&[0x00u8, 0x21][..], &ip].concat(),
            [&[0x21u8][..], &ip].concat(),
        ] {
            assert_eq!(ppp(&framed), Some(Frame::Ip(&ip)), "{framed:?}");
        }
        // LCP is no packet of a session.
        assert_eq!(ppp(&[0xc0, 0x21, 1, 2]), None);
    }

    #[test]
    fn segments_are_the_vnis_only() {
        let mut a = Tunnels::default();
        a.push(Layer {
            kind: Kind::Mpls,
            id: Some(16),
            version: 0,
        });
        let mut b = Tunnels::default();
        b.push(Layer {
            kind: Kind::Mpls,
            id: Some(17),
            version: 0,
        });
        assert_eq!(a.segment(), b.segment());
        let mut v = Tunnels::default();
        v.push(Layer {
            kind: Kind::Vxlan,
            id: Some(100),
            version: 0,
        });
        let mut w = Tunnels::default();
        w.push(Layer {
            kind: Kind::Vxlan,
            id: Some(101),
            version: 0,
        });
        assert_ne!(v.segment(), w.segment());
        assert_ne!(v.segment(), a.segment());
    }
}
