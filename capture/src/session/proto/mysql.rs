//! MySQL and MariaDB (TCP 3306): the user of the client's handshake response (the client/server
//! protocol's `HandshakeResponse41`, and the older `HandshakeResponse320`), as tshark's
//! `mysql.user`. Recognised by the server's greeting (`Protocol::HandshakeV10`). A client that
//! asks for TLS (`SSLRequest`, the response cut before the user) gives nothing more; the auth
//! response that follows the user is a password hash and is never read.

use pcap_protocol::session::App;

use super::frames::{ClientFrames, ClientMessages, Framing};
use super::{Dir, Found, List, Probe, Protocol, Transports, Wants, clean};

pub static MYSQL: Protocol = Protocol {
    app: App::Mysql,
    transports: Transports::Tcp,
    ports: &[3306],
    probe: Some(probe),
    parser: Some(|_| Box::<ClientFrames<Handshake>>::default()),
};

/// Capability flags: the 4.1 protocol, and a request for TLS.
const CLIENT_PROTOCOL_41: u32 = 0x0200;
const CLIENT_SSL: u32 = 0x0800;
/// The greeting's protocol version.
const HANDSHAKE_V10: u8 = 0x0a;

/// A packet: a 3-byte little-endian payload length and a sequence number.
#[derive(Debug)]
pub struct Packet;

impl Framing for Packet {
    const HEADER: usize = 4;
    fn length(h: &[u8]) -> Option<u64> {
        Some(4 + u64::from(u32::from_le_bytes([h[0], h[1], h[2], 0])))
    }
}

/// A server greeting: packet 0, protocol 10, a printable version string ending in a NUL.
fn probe(p: &Probe<'_>) -> bool {
    let d = p.data;
    if p.dir != Dir::ToClient || d.len() < 10 || d[3] != 0 || d[4] != HANDSHAKE_V10 {
        return false;
    }
    let len = u32::from_le_bytes([d[0], d[1], d[2], 0]);
    let version = &d[5..d.len().min(5 + 64)];
    (40..=1024).contains(&len)
        && version.first().is_some_and(u8::is_ascii_digit)
        && memchr::memchr(0, version)
            .is_some_and(|end| version[..end].iter().all(|b| (0x20..0x7f).contains(b)))
}

/// The client's handshake response.
#[derive(Debug, Default)]
pub struct Handshake;

impl ClientMessages for Handshake {
    type Framing = Packet;
    const LIMIT: usize = 1024;

    fn message(&mut self, msg: &[u8], _len: u64, found: &mut Found) -> Wants {
        if let Some(user) = response_user(msg) {
            found.add(List::Users, user);
        }
        Wants::Done
    }
}

/// The user of a handshake response packet (header included); `None` for an SSLRequest.
fn response_user(msg: &[u8]) -> Option<String> {
    let payload = msg.get(4..)?;
    let caps = u32::from(u16::from_le_bytes(payload.get(..2)?.try_into().ok()?));
    let user_at = if caps & CLIENT_PROTOCOL_41 != 0 {
        // Capabilities (4), max packet size (4), character set (1), 23 reserved bytes.
        let caps = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?);
        if caps & CLIENT_SSL != 0 && payload.len() <= 32 {
            return None;
        }
        32
    } else {
        // Capabilities (2), max packet size (3).
        5
    };
    let rest = payload.get(user_at..)?;
    let user = &rest[..memchr::memchr(0, rest)?];
    (!user.is_empty()).then(|| clean(user))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::session::proto::Inspect;

    /// A 4.1 handshake response for `user`.
    pub(crate) fn response(user: &str) -> Vec<u8> {
        let mut p = (CLIENT_PROTOCOL_41 | 0x8000 | 0x0008_0000)
            .to_le_bytes()
            .to_vec();
        p.extend_from_slice(&(1u32 << 24).to_le_bytes());
        p.push(45);
        p.extend_from_slice(&[0; 23]);
        p.extend_from_slice(user.as_bytes());
        p.push(0);
        p.push(20);
        p.extend_from_slice(&[0xaa; 20]);
        p.extend_from_slice(b"mysql_native_password\0");
        let mut m = (p.len() as u32).to_le_bytes()[..3].to_vec();
        m.push(1);
        m.extend_from_slice(&p);
        m
    }

    #[test]
    fn the_handshake_user_is_read_and_a_tls_request_gives_none() {
        let mut found = Found::default();
        let mut parser = ClientFrames::<Handshake>::default();
        let m = response("report_ro");
        for piece in m.chunks(5) {
            parser.feed(Dir::ToServer, piece, &mut found);
        }
        assert_eq!(found.users, ["report_ro"]);
        let mut ssl = response("x")[..36].to_vec();
        ssl[..3].copy_from_slice(&[32, 0, 0]);
        ssl[4] |= 0x08;
        assert_eq!(response_user(&ssl), None);
        // Pre-4.1: 2 capability bytes, 3 of packet size, the user.
        let old = [&[12, 0, 0, 1, 0x05, 0x00, 0, 0, 0][..], b"root\0\0\0"].concat();
        assert_eq!(response_user(&old).as_deref(), Some("root"));
        for cut in 0..m.len() {
            let _ = response_user(&m[..cut]);
        }
        let greeting = b"\x4a\0\0\0\x0a11.4.2-MariaDB\0\x05\0\0\0";
        let probe_of = |data: &[u8], dir| {
            probe(&Probe {
                data,
                dir,
                transport: crate::session::packet::TCP,
                ports: (3306, 40000),
            })
        };
        assert!(probe_of(greeting, Dir::ToClient));
        assert!(!probe_of(greeting, Dir::ToServer));
        assert!(!probe_of(b"\x4a\0\0\0\x0aHTTP/1.1 200", Dir::ToClient));
    }
}
