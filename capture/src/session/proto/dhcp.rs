//! DHCP: a BOOTP message with the DHCP magic cookie.

use pcap_protocol::session::App;

use super::{Protocol, Transports};

pub static DHCP: Protocol = Protocol {
    app: App::Dhcp,
    transports: Transports::Udp,
    ports: &[67, 68],
    probe: Some(|p| is_dhcp(p.data)),
    parser: None,
};

/// A BOOTP/DHCP message with the DHCP magic cookie.
pub fn is_dhcp(data: &[u8]) -> bool {
    data.len() >= 240 && matches!(data[0], 1 | 2) && data[236..240] == [99, 130, 83, 99]
}
