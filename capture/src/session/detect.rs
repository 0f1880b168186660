//! Which application a session carries: a payload signature when one matches (HTTP on port
//! 8081 is HTTP; "TLS" on 443 that greets with `SSH-2.0` is SSH), else the server's port.

use super::packet::{TCP, UDP};
use super::proto::{binary, dns, http, mail, tls};

/// The application names, as they appear in records.
pub mod app {
    pub const DNS: &str = "dns";
    pub const MDNS: &str = "mdns";
    pub const HTTP: &str = "http";
    pub const TLS: &str = "tls";
    pub const SSH: &str = "ssh";
    pub const SMTP: &str = "smtp";
    pub const FTP: &str = "ftp";
    pub const MQTT: &str = "mqtt";
    pub const COAP: &str = "coap";
    pub const SSDP: &str = "ssdp";
    pub const DHCP: &str = "dhcp";
    pub const NTP: &str = "ntp";
    pub const RTSP: &str = "rtsp";
    pub const SIP: &str = "sip";
    pub const MODBUS: &str = "modbus";
    pub const BACNET: &str = "bacnet";
    pub const ICMP: &str = "icmp";
    pub const UNKNOWN: &str = "unknown";
}

/// The first bytes of one direction of a TCP session; `to_server` says which direction.
pub fn tcp_signature(data: &[u8], to_server: bool, server_port: u16) -> Option<&'static str> {
    if tls::looks_like_tls(data) {
        return Some(app::TLS);
    }
    if binary::is_ssh(data) {
        return Some(app::SSH);
    }
    if let Some(flavor) = http::flavor(data) {
        return Some(match flavor {
            http::Flavor::Http => app::HTTP,
            http::Flavor::Rtsp => app::RTSP,
            http::Flavor::Sip => app::SIP,
        });
    }
    if !to_server {
        let line_end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
        return mail::greeting(&data[..line_end]);
    }
    if binary::mqtt_connect(data).is_some() {
        return Some(app::MQTT);
    }
    if server_port == 53 && dns::question_name_tcp(data).is_some() {
        return Some(app::DNS);
    }
    if binary::is_modbus(data) {
        return Some(app::MODBUS);
    }
    None
}

/// One UDP datagram.
pub fn udp_signature(data: &[u8], sport: u16, dport: u16) -> Option<&'static str> {
    let port = |p: u16| sport == p || dport == p;
    if binary::is_ssdp(data) {
        return Some(app::SSDP);
    }
    if binary::is_dhcp(data) {
        return Some(app::DHCP);
    }
    if let Some(http::Flavor::Sip) = http::flavor(data) {
        return Some(app::SIP);
    }
    if binary::is_bacnet(data) {
        return Some(app::BACNET);
    }
    if dns::looks_like_dns(data) && (port(53) || port(5353) || port(5355)) {
        return Some(if port(5353) { app::MDNS } else { app::DNS });
    }
    if port(123) && binary::is_ntp(data) {
        return Some(app::NTP);
    }
    if (port(5683) || port(5684)) && binary::is_coap(data) {
        return Some(app::COAP);
    }
    None
}

/// The application a server port suggests, when no payload said otherwise.
pub fn by_port(proto: u8, port: u16) -> Option<&'static str> {
    Some(match (proto, port) {
        (_, 53) => app::DNS,
        (UDP, 5353) => app::MDNS,
        (TCP, 80 | 8080 | 8000) => app::HTTP,
        (TCP, 443 | 8443) => app::TLS,
        (TCP, 22) => app::SSH,
        (TCP, 25 | 465 | 587) => app::SMTP,
        (TCP, 21) => app::FTP,
        (TCP, 1883 | 8883) => app::MQTT,
        (UDP, 5683 | 5684) => app::COAP,
        (UDP, 1900) => app::SSDP,
        (UDP, 67 | 68) => app::DHCP,
        (UDP, 123) => app::NTP,
        (_, 554) => app::RTSP,
        (_, 5060 | 5061) => app::SIP,
        (TCP, 502) => app::MODBUS,
        (UDP, 47808) => app::BACNET,
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
            Some(app::HTTP)
        );
        assert_eq!(
            tcp_signature(b"SSH-2.0-OpenSSH_9.2\r\n", false, 443),
            Some(app::SSH)
        );
        assert_eq!(
            tcp_signature(b"220 mx ESMTP\r\n", false, 2525),
            Some(app::SMTP)
        );
        assert_eq!(
            tcp_signature(b"\x16\x03\x01\x02\x00\x01", true, 8443),
            Some(app::TLS)
        );
        assert_eq!(by_port(TCP, 443), Some(app::TLS));
        assert_eq!(by_port(UDP, 9), None);
    }
}
