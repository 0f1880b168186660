//! CoAP (RFC 7252) on its ports: version 1, a token length of at most 8, a request or response code.

use pcap_protocol::session::App;

use super::{Protocol, Transports};

pub static COAP: Protocol = Protocol {
    app: App::Coap,
    transports: Transports::Udp,
    ports: &[5683, 5684],
    probe: Some(|p| (p.port(5683) || p.port(5684)) && is_coap(p.data)),
    parser: None,
};

/// A CoAP message: version 1, token length at most 8, a request or response code class.
pub fn is_coap(data: &[u8]) -> bool {
    data.len() >= 4
        && data[0] >> 6 == 1
        && data[0] & 0x0f <= 8
        && (data[1] == 0 || matches!(data[1] >> 5, 0 | 2 | 4 | 5))
}
