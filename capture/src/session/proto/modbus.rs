//! Modbus/TCP: an ADU with protocol id 0 and a length that matches what follows.

use pcap_protocol::session::App;

use super::{Protocol, Transports};

pub static MODBUS: Protocol = Protocol {
    app: App::Modbus,
    transports: Transports::Tcp,
    ports: &[502],
    probe: Some(|p| p.dir == super::Dir::ToServer && is_modbus(p.data)),
    parser: None,
};

/// A Modbus/TCP ADU: protocol id 0 and a length that matches what follows.
pub fn is_modbus(data: &[u8]) -> bool {
    data.len() >= 8
        && data[2..4] == [0, 0]
        && usize::from(u16::from_be_bytes([data[4], data[5]])) == data.len() - 6
        && (1..=127).contains(&(data[7] & 0x7f))
}
