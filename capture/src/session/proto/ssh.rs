//! SSH: recognised by its version banner (`SSH-2.0-...`), from either side; the rest is encrypted.

use pcap_protocol::session::App;

use super::{Protocol, Transports};

pub static SSH: Protocol = Protocol {
    app: App::Ssh,
    transports: Transports::Tcp,
    ports: &[22],
    probe: Some(|p| is_ssh(p.data)),
    parser: None,
};

pub fn is_ssh(data: &[u8]) -> bool {
    data.starts_with(b"SSH-")
}
