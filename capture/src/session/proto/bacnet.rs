//! BACnet/IP: a BVLC header whose length matches the datagram.

use pcap_protocol::session::App;

use super::{Protocol, Transports};

pub static BACNET: Protocol = Protocol {
    app: App::Bacnet,
    transports: Transports::Udp,
    ports: &[47808],
    probe: Some(|p| is_bacnet(p.data)),
    parser: None,
};

/// A BACnet/IP BVLC header whose length matches the datagram.
pub fn is_bacnet(data: &[u8]) -> bool {
    data.len() >= 4
        && data[0] == 0x81
        && data[1] <= 0x0c
        && usize::from(u16::from_be_bytes([data[2], data[3]])) == data.len()
}
