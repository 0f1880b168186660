//! NTP on port 123: 48 bytes or more, version 1 to 4, mode 1 to 5.

use pcap_protocol::session::App;

use super::{Protocol, Transports};

pub static NTP: Protocol = Protocol {
    app: App::Ntp,
    transports: Transports::Udp,
    ports: &[123],
    probe: Some(|p| p.port(123) && is_ntp(p.data)),
    parser: None,
};

/// An NTP message: 48 bytes or more, version 1 to 4, mode 1 to 5.
pub fn is_ntp(data: &[u8]) -> bool {
    data.len() >= 48
        && (1..=4).contains(&((data[0] >> 3) & 0x07))
        && (1..=5).contains(&(data[0] & 0x07))
}
