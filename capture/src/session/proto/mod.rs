//! The protocol parsers and their registry. Each protocol is one file exporting one
//! [`Protocol`] descriptor (its [`App`], transports, the server ports it is known by, a probe
//! on the first bytes of either direction, and the constructor of its per-session parser), the
//! way every Suricata protocol registers one `RustParser`. [`REGISTRY`] lists them; detection
//! is a loop over it (payload probes first, ports second), and the flow table knows no
//! protocol by name.
//!
//! A parser ([`Inspect`]) takes the bytes of either direction as they come, in order, keeps
//! only what it still needs, fills [`Found`] and says when it is done, so the session stops
//! paying for inspection. Every parser is bounded and never panics on any input.

pub mod bacnet;
pub mod coap;
pub mod dcerpc;
pub mod dhcp;
pub mod dhcpv6;
pub mod dns;
pub mod frames;
pub mod ftp;
pub mod http;
pub mod imap;
pub mod imf;
pub mod kerberos;
pub mod ldap;
pub mod lines;
pub mod modbus;
pub mod mqtt;
pub mod mysql;
pub mod ntlmssp;
pub mod ntp;
pub mod pop3;
pub mod postgres;
pub mod radius;
pub mod rdp;
pub mod sasl;
pub mod smb;
pub mod smtp;
pub mod ssdp;
pub mod ssh;
pub mod tds;
pub mod tftp;
pub mod tls;
pub mod values;

pub use values::{Bounds, Found, List, MAX_VALUE_LEN, clean, clean_into, clean_utf16le};

use std::sync::LazyLock;

use pcap_protocol::session::App;

use super::packet::{TCP, UDP};

/// Which way bytes travel, relative to the session's initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ToServer,
    ToClient,
}

impl Dir {
    /// The index of the direction in per-direction arrays.
    pub const fn index(self) -> usize {
        match self {
            Dir::ToServer => 0,
            Dir::ToClient => 1,
        }
    }
}

/// What a parser wants after the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wants {
    More,
    /// Nothing more to find: the session stops being inspected.
    Done,
}

/// A side of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// A connection a session announced (FTP's data connection, TFTP's transfer): the port one
/// of its sides will be reached on, so that the flow table names the session that comes to
/// it; with the file it carries, once the announcing session says (an FTP `RETR` after its
/// `PASV`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub app: App,
    /// The side of the announcing session whose address the new session reaches, and the
    /// port there (0: that side's port in the announcing session, as a TFTP client's).
    pub side: Side,
    pub port: u16,
    pub file: Option<String>,
}

/// A protocol's parser for one session.
pub trait Inspect: std::fmt::Debug + Send {
    /// The next in-order bytes of `dir` (TCP), or one datagram (UDP).
    fn feed(&mut self, dir: Dir, data: &[u8], found: &mut Found) -> Wants;

    /// Whether the parser still reads `dir` (a direction it is done with may be counted
    /// without being decoded).
    fn wants(&self, _dir: Dir) -> bool {
        true
    }

    /// `len` bytes of `dir` are missing (never captured, or given up on as out of order): the
    /// next bytes fed come after them. A parser that can find its way on says so; by default
    /// it cannot, and the session stops being inspected (it keeps what it found).
    fn gap(&mut self, _dir: Dir, _len: u64) -> Wants {
        Wants::Done
    }

    /// Heap bytes the parser holds besides its own size (its buffers), for the flow table's
    /// memory budget.
    fn buffered(&self) -> usize {
        0
    }
}

/// The transports a protocol runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transports {
    Tcp,
    Udp,
    Both,
}

impl Transports {
    fn carries(self, proto: u8) -> bool {
        matches!(
            (self, proto),
            (Transports::Both, TCP | UDP) | (Transports::Tcp, TCP) | (Transports::Udp, UDP)
        )
    }
}

/// What a probe looks at: the first bytes of one direction (TCP, as far as they have come) or
/// one datagram (UDP).
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    pub data: &'a [u8],
    pub dir: Dir,
    /// The IP protocol: TCP or UDP.
    pub transport: u8,
    /// The ports of the packet's source and destination.
    pub ports: (u16, u16),
}

impl Probe<'_> {
    /// Whether either port is `port`.
    pub fn port(&self, port: u16) -> bool {
        self.ports.0 == port || self.ports.1 == port
    }
}

/// A protocol as the registry knows it.
#[derive(Debug)]
pub struct Protocol {
    pub app: App,
    pub transports: Transports,
    /// The server ports it is known by when no payload says otherwise.
    pub ports: &'static [u16],
    /// Whether a direction's first bytes are this protocol's; `None`: known by port only.
    pub probe: Option<fn(&Probe<'_>) -> bool>,
    /// The parser of a session of it over a transport (TCP or UDP); `None`: its name is all
    /// it gives.
    pub parser: Option<fn(u8) -> Box<dyn Inspect>>,
}

/// Every protocol, in the order probes are tried: the most telling signatures first.
pub static REGISTRY: &[&Protocol] = &[
    &tls::TLS,
    &ssh::SSH,
    &ssdp::SSDP,
    &http::HTTP,
    &http::RTSP,
    &http::SIP,
    &smtp::SMTP,
    &ftp::FTP,
    &mqtt::MQTT,
    &smb::SMB,
    &dcerpc::DCERPC,
    &kerberos::KERBEROS,
    &postgres::POSTGRESQL,
    &mysql::MYSQL,
    &tds::TDS,
    &rdp::RDP,
    &pop3::POP3,
    &imap::IMAP,
    &ldap::LDAP,
    &radius::RADIUS,
    &dhcp::DHCP,
    &dhcpv6::DHCPV6,
    &bacnet::BACNET,
    &dns::DNS,
    &dns::MDNS,
    &ntp::NTP,
    &coap::COAP,
    &modbus::MODBUS,
    &tftp::TFTP,
];

/// The first protocol of the registry whose probe takes `probe`.
pub fn detect(probe: &Probe<'_>) -> Option<&'static Protocol> {
    REGISTRY
        .iter()
        .copied()
        .find(|p| p.transports.carries(probe.transport) && p.probe.is_some_and(|take| take(probe)))
}

/// The protocol a server port of `transport` suggests, when no payload said otherwise: the
/// first of the registry that lists it. Asked for every new session, so read from a table
/// indexed by port (made once: one byte per port and transport, the protocol's place in the
/// registry plus one) rather than by a walk of every protocol's ports.
pub fn by_port(transport: u8, port: u16) -> Option<&'static Protocol> {
    static PORTS: LazyLock<Box<[[u8; 2]]>> = LazyLock::new(|| {
        let mut ports = vec![[0u8; 2]; 1 << 16].into_boxed_slice();
        for (i, p) in REGISTRY.iter().enumerate().rev() {
            let place = u8::try_from(i + 1).unwrap_or(0);
            for (t, transport) in [TCP, UDP].into_iter().enumerate() {
                if p.transports.carries(transport) {
                    for &port in p.ports {
                        ports[usize::from(port)][t] = place;
                    }
                }
            }
        }
        ports
    });
    let t = match transport {
        TCP => 0,
        UDP => 1,
        _ => return None,
    };
    let place = PORTS[usize::from(port)][t];
    REGISTRY.get(usize::from(place).checked_sub(1)?).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(data: &[u8], dir: Dir, server_port: u16) -> Option<App> {
        let probe = Probe {
            data,
            dir,
            transport: TCP,
            ports: (40000, server_port),
        };
        detect(&probe).map(|p| p.app)
    }

    #[test]
    fn a_payload_signature_wins_over_the_port() {
        assert_eq!(
            tcp(b"GET / HTTP/1.1\r\n", Dir::ToServer, 8081),
            Some(App::Http)
        );
        assert_eq!(
            tcp(b"SSH-2.0-OpenSSH_9.2\r\n", Dir::ToClient, 443),
            Some(App::Ssh)
        );
        assert_eq!(
            tcp(b"220 mx ESMTP\r\n", Dir::ToClient, 2525),
            Some(App::Smtp)
        );
        assert_eq!(
            tcp(b"\x16\x03\x01\x02\x00\x01", Dir::ToServer, 8443),
            Some(App::Tls)
        );
        assert_eq!(by_port(TCP, 443).map(|p| p.app), Some(App::Tls));
        assert_eq!(by_port(UDP, 53).map(|p| p.app), Some(App::Dns));
        assert_eq!(by_port(TCP, 53).map(|p| p.app), Some(App::Dns));
        assert!(by_port(UDP, 9).is_none());
    }

    #[test]
    fn datagram_signatures_hold_on_real_shapes() {
        let mut dhcp = vec![0u8; 300];
        dhcp[0] = 1;
        dhcp[236..240].copy_from_slice(&[99, 130, 83, 99]);
        assert!(dhcp::is_dhcp(&dhcp));
        let mut ntp = vec![0u8; 48];
        ntp[0] = 0x23; // v4, client
        assert!(ntp::is_ntp(&ntp));
        assert!(bacnet::is_bacnet(&[0x81, 0x0b, 0x00, 0x06, 0x01, 0x20]));
        assert!(modbus::is_modbus(&[0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1]));
        assert!(coap::is_coap(&[0x40, 0x01, 0x12, 0x34]));
        assert!(!coap::is_coap(&[0x00, 0x01, 0x12, 0x34]), "version 0");
        assert!(!coap::is_coap(&[0x4f, 0x01, 0x12, 0x34]), "token length 15");
    }

    #[test]
    fn every_protocol_is_registered_once_and_known_some_way() {
        let mut apps = std::collections::HashSet::new();
        for p in REGISTRY {
            assert!(apps.insert(p.app), "{} twice", p.app);
            assert!(
                p.probe.is_some() || !p.ports.is_empty(),
                "{} cannot be recognised",
                p.app
            );
        }
    }
}
