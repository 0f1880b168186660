//! BPF filters: checked before a request is accepted, and combined with the agent's exclusions
//! so that a capture never contains the agent's own upload traffic.

use pcap::{BpfProgram, Capture, Linktype};
use pcap_protocol::{TunnelKind, TunnelScope};

use crate::session::packet;
use crate::session::tunnel::{Decap, Frame, Kind};

/// Longest accepted filter expression, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("the filter is {len} characters long; at most {MAX_FILTER_LEN} are allowed")]
    TooLong { len: usize },
    #[error(
        "the filter has a non-printable or non-ASCII character at position {position}; only printable ASCII is allowed"
    )]
    BadCharacter { position: usize },
    #[error("the filter {filter:?} does not compile: {message}")]
    Invalid { filter: String, message: String },
}

/// Checks `filter`: length, characters, and that libpcap compiles it for `linktype`.
pub fn validate(filter: &str, linktype: Linktype) -> Result<(), FilterError> {
    if filter.len() > MAX_FILTER_LEN {
        return Err(FilterError::TooLong { len: filter.len() });
    }
    if let Some(position) = filter.bytes().position(|b| !(0x20..=0x7e).contains(&b)) {
        return Err(FilterError::BadCharacter { position });
    }
    compile(filter, linktype)
}

/// Compiles `filter` with libpcap for `linktype`, without a device.
pub fn compile(filter: &str, linktype: Linktype) -> Result<(), FilterError> {
    let invalid = |message: String| FilterError::Invalid {
        filter: filter.chars().take(200).collect(),
        message,
    };
    let dead = Capture::dead(linktype).map_err(|e| invalid(e.to_string()))?;
    dead.compile(filter, true)
        .map(drop)
        .map_err(|e| invalid(message(e)))
}

/// libpcap's own text of an error.
pub fn message(e: pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m,
        other => other.to_string(),
    }
}

/// The BPF expression that selects the carrier packets of one tunnel on a link of `linktype`:
/// VXLAN or GENEVE with that VNI to one of `ports` (UDP destination), or GRE version 0 with that
/// key, over IPv4 or IPv6, untagged or (on Ethernet) under one VLAN tag.
///
/// libpcap 1.10 has no `vxlan` keyword and cannot index into GRE, so the tunnel header is read
/// at fixed offsets behind the outer header: behind an IPv6 header without extension headers,
/// and for GRE behind an IPv4 header without options. VXLAN and GENEVE over IPv4 use `udp[]`,
/// which follows the IPv4 header's length and skips later fragments.
pub fn carrier(scope: &TunnelScope, ports: &[u16], link: Linktype) -> Result<String, String> {
    let id = scope.id;
    let one = match scope.kind {
        TunnelKind::Vxlan | TunnelKind::Geneve => {
            if ports.is_empty() {
                return Err(format!(
                    "sessions.{}_ports is empty: the agent knows no UDP port of {}",
                    scope.kind.as_str(),
                    scope.kind.as_str()
                ));
            }
            // VXLAN: the I flag; GENEVE: version 0. The VNI is the top 24 bits of the
            // header's second word in both.
            let (flag4, flag6) = match scope.kind {
                TunnelKind::Vxlan => ("udp[8] & 0x08 != 0", "ip6[48] & 0x08 != 0"),
                _ => ("udp[8] & 0xc0 = 0", "ip6[48] & 0xc0 = 0"),
            };
            let dst4: Vec<String> = ports.iter().map(|p| format!("udp dst port {p}")).collect();
            let dst6: Vec<String> = ports.iter().map(|p| format!("ip6[42:2] = {p}")).collect();
            format!(
                "(ip and ({}) and {flag4} and udp[12:4] >> 8 = {id}) or \
                 (ip6 and ip6[6] = 17 and ({}) and {flag6} and ip6[52:4] >> 8 = {id})",
                dst4.join(" or "),
                dst6.join(" or "),
            )
        }
        // Flags and version: K set, R and version 0; the key follows the checksum word when
        // C is set.
        TunnelKind::Gre => format!(
            "(ip and ip[9] = 47 and ip[0] & 0x0f = 5 and ip[6:2] & 0x1fff = 0 and \
             ((ip[20:2] & 0xe007 = 0x2000 and ip[24:4] = {id}) or \
             (ip[20:2] & 0xe007 = 0xa000 and ip[28:4] = {id}))) or \
             (ip6 and ip6[6] = 47 and \
             ((ip6[40:2] & 0xe007 = 0x2000 and ip6[44:4] = {id}) or \
             (ip6[40:2] & 0xe007 = 0xa000 and ip6[48:4] = {id})))"
        ),
    };
    Ok(if link == Linktype::ETHERNET {
        format!("({one}) or (vlan and ({one}))")
    } else {
        one
    })
}

/// A capture request's filter applied to the frames inside its tunnel, in the agent: the
/// kernel's filter selects the tunnel's carrier packets ([`carrier`]), and this program, compiled
/// by libpcap for the inner frame's link type, decides which of them are captured. VXLAN, GRE
/// with transparent Ethernet bridging and ERSPAN carry Ethernet; GRE and GENEVE may carry IP.
pub struct InnerFilter {
    scope: TunnelScope,
    decap: Decap,
    /// For inner Ethernet frames, and for inner IP packets; `None` where the filter does not
    /// compile for that link type (`ether host ...` cannot match a bare IP packet).
    ethernet: Option<BpfProgram>,
    ip: Option<BpfProgram>,
}

impl std::fmt::Debug for InnerFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InnerFilter")
            .field("scope", &self.scope)
            .field("ethernet", &self.ethernet.is_some())
            .field("ip", &self.ip.is_some())
            .finish()
    }
}

/// DLT_RAW as libpcap numbers it on Linux (the file format's LINKTYPE_RAW is 101).
const DLT_RAW: Linktype = Linktype(12);

impl InnerFilter {
    /// Compiles `filter` for the frames inside `scope`'s tunnel; the error is the Ethernet
    /// compilation's when it compiles for neither.
    pub fn new(scope: TunnelScope, filter: &str, decap: Decap) -> Result<Self, FilterError> {
        validate(filter, Linktype::ETHERNET)
            .or_else(|e| validate(filter, DLT_RAW).map_err(|_| e))?;
        Ok(InnerFilter {
            scope,
            decap,
            ethernet: program(filter, Linktype::ETHERNET),
            ip: program(filter, DLT_RAW),
        })
    }

    /// Whether the frame inside the tunnel of a carrier packet `data` (of `link`) matches.
    /// A packet that is not that tunnel's carrier does not.
    pub fn matches(&self, link: u32, data: &[u8]) -> bool {
        let Some((layer, inner)) = packet::first_tunnel(link, data, &self.decap) else {
            return false;
        };
        let ours = match (self.scope.kind, layer.kind) {
            (TunnelKind::Vxlan, Kind::Vxlan)
            | (TunnelKind::Geneve, Kind::Geneve)
            | (TunnelKind::Gre, Kind::Gre) => layer.id == Some(self.scope.id),
            // ERSPAN's GRE header: its key was matched by the kernel's filter.
            (TunnelKind::Gre, Kind::Erspan) => true,
            _ => false,
        };
        if !ours {
            return false;
        }
        let (program, bytes) = match inner {
            Frame::Ethernet(b) => (&self.ethernet, b),
            Frame::Ip(b) => (&self.ip, b),
            Frame::EtherType(..) => return false,
        };
        program.as_ref().is_some_and(|p| p.filter(bytes))
    }
}

fn program(filter: &str, link: Linktype) -> Option<BpfProgram> {
    Capture::dead(link).ok()?.compile(filter, true).ok()
}

/// The filter actually installed: `not (<exclusions>) and (<requested>)`, or the parts that
/// exist.
pub fn effective(requested: &str, exclusions: &[String]) -> String {
    let requested = requested.trim();
    let excluded: Vec<String> = exclusions
        .iter()
        .filter(|e| !e.trim().is_empty())
        .map(|e| format!("({})", e.trim()))
        .collect();
    match (excluded.is_empty(), requested.is_empty()) {
        (true, _) => requested.to_owned(),
        (false, true) => format!("not ({})", excluded.join(" or ")),
        (false, false) => format!("not ({}) and ({requested})", excluded.join(" or ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_filters_compile_and_invalid_ones_carry_libpcaps_message() {
        assert!(validate("udp and host 10.1.2.3", Linktype::ETHERNET).is_ok());
        assert!(validate("", Linktype::ETHERNET).is_ok());
        let err = validate("udp and hots 10.1.2.3", Linktype::ETHERNET).unwrap_err();
        assert!(matches!(err, FilterError::Invalid { .. }), "{err}");
        assert!(
            err.to_string().contains("syntax error") || err.to_string().contains("hots"),
            "{err}"
        );
        assert_eq!(
            validate(&"a".repeat(5000), Linktype::ETHERNET),
            Err(FilterError::TooLong { len: 5000 })
        );
        assert_eq!(
            validate("udp\nor tcp", Linktype::ETHERNET),
            Err(FilterError::BadCharacter { position: 3 })
        );
    }

    #[test]
    fn the_effective_filter_excludes_the_agents_own_traffic() {
        let excl = vec![
            "host 127.0.0.1 and tcp port 9000".to_owned(),
            "port 22".to_owned(),
        ];
        assert_eq!(
            effective("udp", &excl),
            "not ((host 127.0.0.1 and tcp port 9000) or (port 22)) and (udp)"
        );
        assert_eq!(
            effective("", &excl),
            "not ((host 127.0.0.1 and tcp port 9000) or (port 22))"
        );
        assert_eq!(effective("udp", &[]), "udp");
        assert!(validate(&effective("udp", &excl), Linktype::ETHERNET).is_ok());
    }

    /// Ethernet, IPv4 or IPv6 (under a VLAN tag if `vlan`) carrying `transport`: UDP if it
    /// starts with the source port 40000, else GRE.
    fn carrier_packet(v6: bool, vlan: bool, transport: &[u8]) -> Vec<u8> {
        let mut p = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        if vlan {
            p.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        }
        let proto = if transport.starts_with(&40000u16.to_be_bytes()) {
            17
        } else {
            47
        };
        if v6 {
            p.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            p.extend_from_slice(&(transport.len() as u16).to_be_bytes());
            p.extend_from_slice(&[proto, 64]);
            p.extend_from_slice(&[0xfd; 16]);
            p.extend_from_slice(&[0xfe; 16]);
        } else {
            p.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            p.extend_from_slice(&(20 + transport.len() as u16).to_be_bytes());
            p.extend_from_slice(&[0, 1, 0, 0, 64, proto, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
        }
        p.extend_from_slice(transport);
        p
    }

    /// An inner Ethernet frame: IPv4 TCP from 10.9.0.1:40000 to `dst`:80.
    fn inner_frame(dst: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 3, 0x02, 0, 0, 0, 0, 4, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 9, 0, 1]);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&[
            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
        ]);
        f.extend_from_slice(&[0, 0, 0, 0]);
        f
    }

    fn udp(dport: u16, tunnel_header: [u8; 8], inner: &[u8]) -> Vec<u8> {
        let mut u = 40000u16.to_be_bytes().to_vec();
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&((16 + inner.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(&tunnel_header);
        u.extend_from_slice(inner);
        u
    }

    fn vxlan(vni: u32) -> [u8; 8] {
        let v = (vni << 8).to_be_bytes();
        [0x08, 0, 0, 0, v[0], v[1], v[2], 0]
    }

    fn gre(key: u32, checksum: bool, inner: &[u8]) -> Vec<u8> {
        let mut g = vec![if checksum { 0xa0 } else { 0x20 }, 0, 0x65, 0x58];
        if checksum {
            g.extend_from_slice(&[0, 0, 0, 0]);
        }
        g.extend_from_slice(&key.to_be_bytes());
        g.extend_from_slice(inner);
        g
    }

    fn kernel(scope: &str) -> BpfProgram {
        let scope: TunnelScope = scope.parse().unwrap();
        let text = carrier(&scope, &[4789, 8472], Linktype::ETHERNET).unwrap();
        program(&text, Linktype::ETHERNET).unwrap_or_else(|| panic!("{text} does not compile"))
    }

    #[test]
    fn the_carrier_filter_selects_one_vni_or_key_over_ipv4_ipv6_and_vlan() {
        let inner = inner_frame([10, 9, 0, 2]);
        let vni = kernel("vxlan:5001");
        for v6 in [false, true] {
            for vlan in [false, true] {
                let at = |port, vni| carrier_packet(v6, vlan, &udp(port, vxlan(vni), &inner));
                let what = format!("v6 {v6} vlan {vlan}");
                assert!(vni.filter(&at(4789, 5001)), "{what}");
                assert!(vni.filter(&at(8472, 5001)), "{what}: the second port");
                assert!(!vni.filter(&at(4789, 5002)), "{what}: another VNI");
                assert!(!vni.filter(&at(4790, 5001)), "{what}: another port");
                let mut no_flag = udp(4789, vxlan(5001), &inner);
                no_flag[8] = 0;
                assert!(
                    !vni.filter(&carrier_packet(v6, vlan, &no_flag)),
                    "{what}: no I flag"
                );
            }
        }
        let key = kernel("gre:42");
        for v6 in [false, true] {
            for checksum in [false, true] {
                let what = format!("v6 {v6} checksum {checksum}");
                assert!(
                    key.filter(&carrier_packet(v6, false, &gre(42, checksum, &inner))),
                    "{what}"
                );
                assert!(
                    key.filter(&carrier_packet(v6, true, &gre(42, checksum, &inner))),
                    "{what}"
                );
                assert!(
                    !key.filter(&carrier_packet(v6, false, &gre(43, checksum, &inner))),
                    "{what}"
                );
            }
        }
        assert!(!key.filter(&carrier_packet(false, false, &udp(4789, vxlan(42), &inner))));
        // Every link type a capture may run on compiles it.
        let scope: TunnelScope = "geneve:7".parse().unwrap();
        for link in [Linktype::ETHERNET, Linktype(113), Linktype(276), DLT_RAW] {
            assert!(validate(&carrier(&scope, &[6081], link).unwrap(), link).is_ok());
        }
        assert!(
            carrier(&scope, &[], Linktype::ETHERNET)
                .unwrap_err()
                .contains("geneve_ports")
        );
    }

    #[test]
    fn the_inner_filter_sees_the_frame_inside_the_tunnel() {
        let scope: TunnelScope = "vxlan:5001".parse().unwrap();
        let f = InnerFilter::new(
            scope,
            "tcp dst port 80 and host 10.9.0.2",
            Decap::standard(),
        )
        .unwrap();
        let to = |dst, vni| carrier_packet(false, false, &udp(4789, vxlan(vni), &inner_frame(dst)));
        assert!(f.matches(1, &to([10, 9, 0, 2], 5001)));
        assert!(
            !f.matches(1, &to([10, 9, 0, 3], 5001)),
            "another inner host"
        );
        assert!(!f.matches(1, &to([10, 9, 0, 2], 5002)), "another VNI");
        // The outer addresses are not what the filter is about.
        let outer = InnerFilter::new(scope, "host 192.0.2.1", Decap::standard()).unwrap();
        assert!(!outer.matches(1, &to([10, 9, 0, 2], 5001)));
        // GRE: the Ethernet frame inside the key's tunnel; an IP-only filter also reads IP.
        let gre_scope: TunnelScope = "gre:42".parse().unwrap();
        let g =
            InnerFilter::new(gre_scope, "ether src 02:00:00:00:00:04", Decap::standard()).unwrap();
        assert!(g.matches(
            1,
            &carrier_packet(true, true, &gre(42, true, &inner_frame([10, 9, 0, 2])))
        ));
        assert!(!g.matches(
            1,
            &carrier_packet(true, true, &gre(41, true, &inner_frame([10, 9, 0, 2])))
        ));
        let mut ip_inside = gre(42, false, &inner_frame([10, 9, 0, 2])[14..]);
        ip_inside[2..4].copy_from_slice(&[0x08, 0x00]);
        let ip_filter =
            InnerFilter::new(gre_scope, "dst host 10.9.0.2", Decap::standard()).unwrap();
        assert!(ip_filter.matches(1, &carrier_packet(false, false, &ip_inside)));
        assert!(
            !g.matches(1, &carrier_packet(false, false, &ip_inside)),
            "no Ethernet header inside"
        );
        // Truncated carriers match nothing and do not panic.
        let whole = to([10, 9, 0, 2], 5001);
        for cut in 0..whole.len() {
            let _ = f.matches(1, &whole[..cut]);
        }
        assert!(InnerFilter::new(scope, "hots 1", Decap::standard()).is_err());
    }
}
