//! Decoding a captured frame down to what the session table needs: addresses, protocol, ports,
//! TCP flags and sequence, and the transport payload. Link types: Ethernet (with 802.1Q and
//! QinQ tags), Linux cooked capture v1 and v2, and raw IP. Truncated frames (snaplen) decode as
//! far as their bytes go; nothing here can panic on input.

use std::net::IpAddr;

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket};

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
}

/// IP protocol numbers the table distinguishes.
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP: u8 = 1;
pub const ICMPV6: u8 = 58;

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
    /// The transport payload present in the capture (possibly cut by the snaplen).
    pub payload: &'a [u8],
}

/// Decodes `data` of link type `linktype`; `None` for non-IP frames, unknown link types and
/// frames too short to hold an IP header, and for IP fragments other than an IPv4 first
/// fragment (no ports in them).
pub fn decode(linktype: u32, data: &[u8]) -> Option<Decoded<'_>> {
    let sliced = match linktype {
        linktype::ETHERNET => LaxSlicedPacket::from_ethernet(data).ok()?,
        linktype::RAW | linktype::RAW_ALT | linktype::IPV4 | linktype::IPV6 => {
            LaxSlicedPacket::from_ip(data).ok()?
        }
        linktype::LINUX_SLL => {
            // packet type (2), ARPHRD (2), address length (2), address (8), protocol (2)
            let proto = u16::from_be_bytes([*data.get(14)?, *data.get(15)?]);
            LaxSlicedPacket::from_ether_type(EtherType(proto), data.get(16..)?)
        }
        linktype::LINUX_SLL2 => {
            // protocol (2), reserved (2), ifindex (4), ARPHRD (2), packet type (1),
            // address length (1), address (8)
            let proto = u16::from_be_bytes([*data.first()?, *data.get(1)?]);
            LaxSlicedPacket::from_ether_type(EtherType(proto), data.get(20..)?)
        }
        _ => return None,
    };
    let (src, dst, payload) = match sliced.net.as_ref()? {
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
    if payload.fragmented && !is_first_fragment(&sliced) {
        return None;
    }
    let mut decoded = Decoded {
        src,
        dst,
        proto,
        sport: 0,
        dport: 0,
        tcp: None,
        payload: &[],
    };
    match proto {
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
    Some(decoded)
}

/// Whether a fragmented packet is the first fragment (offset 0), the one with the ports.
fn is_first_fragment(sliced: &LaxSlicedPacket<'_>) -> bool {
    match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => v4.header().fragments_offset().value() == 0,
        // IPv6 fragments are rare in captures; none is assigned to a session.
        _ => false,
    }
}
