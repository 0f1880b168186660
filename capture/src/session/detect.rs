//! Which application a session carries: a payload signature when one matches (HTTP on port
//! 8081 is HTTP; "TLS" on 443 that greets with `SSH-2.0` is SSH), else the server's port.

use pcap_protocol::session::App;

use super::packet::{TCP, UDP};
use super::proto::{binary, dns, http, mail, tls};

/// The first bytes of one direction of a TCP session; `to_server` says which direction.
pub fn tcp_signature(data: &[u8], to_server: bool, server_port: u16) -> Option<App> {
    if tls::looks_like_tls(data) {
        return Some(App::Tls);
    }
    if binary::is_ssh(data) {
        return Some(App::Ssh);
    }
    if let Some(flavor) = http::flavor(data) {
        return Some(match flavor {
            http::Flavor::Http => App::Http,
            http::Flavor::Rtsp => App::Rtsp,
            http::Flavor::Sip => App::Sip,
        });
    }
    if !to_server {
        let line_end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
        return mail::greeting(&data[..line_end]);
    }
    if binary::mqtt_connect(data).is_some() {
        return Some(App::Mqtt);
    }
    if server_port == 53 && dns::question_name_tcp(data).is_some() {
        return Some(App::Dns);
    }
    if binary::is_modbus(data) {
        return Some(App::Modbus);
    }
    None
}

/// One UDP datagram.
pub fn udp_signature(data: &[u8], sport: u16, dport: u16) -> Option<App> {
    let port = |p: u16| sport == p || dport == p;
    if binary::is_ssdp(data) {
        return Some(App::Ssdp);
    }
    if binary::is_dhcp(data) {
        return Some(App::Dhcp);
    }
    if let Some(http::Flavor::Sip) = http::flavor(data) {
        return Some(App::Sip);
    }
    if binary::is_bacnet(data) {
        return Some(App::Bacnet);
    }
    if dns::looks_like_dns(data) && (port(53) || port(5353) || port(5355)) {
        return Some(if port(5353) { App::Mdns } else { App::Dns });
    }
    if port(123) && binary::is_ntp(data) {
        return Some(App::Ntp);
    }
    if (port(5683) || port(5684)) && binary::is_coap(data) {
        return Some(App::Coap);
    }
    None
}

/// The application a server port suggests, when no payload said otherwise.
pub fn by_port(proto: u8, port: u16) -> Option<App> {
    Some(match (proto, port) {
        (_, 53) => App::Dns,
        (UDP, 5353) => App::Mdns,
        (TCP, 80 | 8080 | 8000) => App::Http,
        (TCP, 443 | 8443) => App::Tls,
        (TCP, 22) => App::Ssh,
        (TCP, 25 | 465 | 587) => App::Smtp,
        (TCP, 21) => App::Ftp,
        (TCP, 1883 | 8883) => App::Mqtt,
        (UDP, 5683 | 5684) => App::Coap,
        (UDP, 1900) => App::Ssdp,
        (UDP, 67 | 68) => App::Dhcp,
        (UDP, 123) => App::Ntp,
        (_, 554) => App::Rtsp,
        (_, 5060 | 5061) => App::Sip,
        (TCP, 502) => App::Modbus,
        (UDP, 47808) => App::Bacnet,
        _ => return None,
    })
}

/// Whether `port` is one a server listens on (so the other side is the client).
pub fn is_service_port(proto: u8, port: u16) -> bool {
    by_port(proto, port).is_some() || port < 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_signature_wins_over_the_port() {
        assert_eq!(
            tcp_signature(b"GET / HTTP/1.1\r\n", true, 8081),
            Some(App::Http)
        );
        assert_eq!(
            tcp_signature(b"SSH-2.0-OpenSSH_9.2\r\n", false, 443),
            Some(App::Ssh)
        );
        assert_eq!(
            tcp_signature(b"220 mx ESMTP\r\n", false, 2525),
            Some(App::Smtp)
        );
        assert_eq!(
            tcp_signature(b"\x16\x03\x01\x02\x00\x01", true, 8443),
            Some(App::Tls)
        );
        assert_eq!(by_port(TCP, 443), Some(App::Tls));
        assert_eq!(by_port(UDP, 9), None);
    }
}
