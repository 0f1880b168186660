//! SSDP (UPnP discovery): `M-SEARCH` and `NOTIFY` requests over UDP.

use pcap_protocol::session::App;

use super::{Protocol, Transports};

pub static SSDP: Protocol = Protocol {
    app: App::Ssdp,
    transports: Transports::Udp,
    ports: &[1900],
    probe: Some(|p| is_ssdp(p.data)),
    parser: None,
};

pub fn is_ssdp(data: &[u8]) -> bool {
    data.starts_with(b"M-SEARCH * HTTP/1.1") || data.starts_with(b"NOTIFY * HTTP/1.1")
}
