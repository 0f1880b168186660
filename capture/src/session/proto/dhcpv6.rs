//! DHCPv6 (RFC 8415): client and relay messages on UDP 546 and 547, told by their message type.

use pcap_protocol::session::App;

use super::{Protocol, Transports};

pub static DHCPV6: Protocol = Protocol {
    app: App::Dhcpv6,
    transports: Transports::Udp,
    ports: &[546, 547],
    probe: Some(|p| (p.port(546) || p.port(547)) && is_dhcpv6(p.data)),
    parser: None,
};

/// A DHCPv6 message: a known message type (SOLICIT 1 to RELAY-REPL 13, and the leasequery
/// and bulk types up to 23) and its transaction id, or a relay header (34 bytes at least).
pub fn is_dhcpv6(data: &[u8]) -> bool {
    match data.first() {
        Some(12 | 13) => data.len() >= 34,
        Some(1..=23) => data.len() >= 4,
        _ => false,
    }
}
