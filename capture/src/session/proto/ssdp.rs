//! SSDP (UPnP discovery): `M-SEARCH` and `NOTIFY` requests over UDP, and the devices' unicast
//! answers from port 1900. Their messages are HTTP-shaped: the request's URL as tshark gives it
//! (`http://239.255.255.250:1900*`), and the `LOCATION` of each announcement or answer, where
//! the device describes itself.

use pcap_protocol::session::App;

use super::{Probe, Protocol, Transports};

pub static SSDP: Protocol = Protocol {
    app: App::Ssdp,
    transports: Transports::Udp,
    ports: &[1900],
    probe: Some(probe),
    parser: Some(|_| super::http::ssdp_parser()),
};

fn probe(p: &Probe<'_>) -> bool {
    is_ssdp(p.data) || (p.port(1900) && p.data.starts_with(b"HTTP/1.1 200"))
}

pub fn is_ssdp(data: &[u8]) -> bool {
    data.starts_with(b"M-SEARCH * HTTP/1.1") || data.starts_with(b"NOTIFY * HTTP/1.1")
}

#[cfg(test)]
mod tests {
    use crate::session::proto::{Dir, Found};

    #[test]
    fn the_request_uri_and_every_location_are_urls() {
        let mut parser = super::super::http::ssdp_parser();
        let mut found = Found::default();
        parser.feed(
            Dir::ToServer,
            b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n",
            &mut found,
        );
        parser.feed(
            Dir::ToServer,
            b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nLOCATION: http://192.168.1.20:49152/desc.xml\r\nNTS: ssdp:alive\r\n\r\n",
            &mut found,
        );
        parser.feed(
            Dir::ToClient,
            b"HTTP/1.1 200 OK\r\nLOCATION: http://192.168.1.30:80/rootDesc.xml\r\nST: upnp:rootdevice\r\n\r\n",
            &mut found,
        );
        assert_eq!(
            found.urls,
            [
                "http://239.255.255.250:1900*",
                "http://192.168.1.20:49152/desc.xml",
                "http://192.168.1.30:80/rootDesc.xml"
            ]
        );
        assert!(found.filenames.is_empty());
    }
}
