//! PostgreSQL (TCP 5432): the `user` of the client's startup message (protocol 3.0, the
//! frontend/backend protocol's section "StartupMessage"), as tshark's `pgsql.parameter_value`
//! of the parameter `user`. A client that asks for TLS first (`SSLRequest`) and is refused
//! sends its startup in the clear next; one that is accepted gives nothing more. Passwords
//! come in later messages, which are never read.

use pcap_protocol::session::App;

use super::frames::{ClientFrames, ClientMessages, Framing};
use super::{Dir, Found, List, Probe, Protocol, Transports, Wants, clean};

pub static POSTGRESQL: Protocol = Protocol {
    app: App::Postgresql,
    transports: Transports::Tcp,
    ports: &[5432],
    probe: Some(probe),
    parser: Some(|_| Box::<ClientFrames<Startup>>::default()),
};

/// The protocol version of a startup message, 3.0.
const V3: u32 = 0x0003_0000;
/// The codes in place of a version that ask for TLS or GSSAPI encryption, or cancel a query.
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;
/// The longest startup message a server accepts (its MAX_STARTUP_PACKET_LENGTH).
const MAX_STARTUP: u32 = 10_000;

/// The client's untyped first messages: a 4-byte big-endian length that counts itself.
#[derive(Debug)]
pub struct Untyped;

impl Framing for Untyped {
    const HEADER: usize = 4;
    fn length(h: &[u8]) -> Option<u64> {
        Some(u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]])))
    }
}

/// The length and code of an untyped message, if `msg` starts with one.
fn header(msg: &[u8]) -> Option<(u32, u32)> {
    let len = u32::from_be_bytes(msg.get(..4)?.try_into().ok()?);
    let code = u32::from_be_bytes(msg.get(4..8)?.try_into().ok()?);
    Some((len, code))
}

/// A startup message or a request for encryption opening the client's side.
fn probe(p: &Probe<'_>) -> bool {
    p.dir == Dir::ToServer
        && match header(p.data) {
            Some((8, SSL_REQUEST | GSSENC_REQUEST)) => true,
            // The parameters end with an empty name.
            Some((len, V3)) => (9..=MAX_STARTUP).contains(&len) && p.data.get(8) != Some(&0),
            _ => false,
        }
}

/// The client's first messages.
#[derive(Debug, Default)]
pub struct Startup {
    messages: u8,
}

impl ClientMessages for Startup {
    type Framing = Untyped;
    const LIMIT: usize = MAX_STARTUP as usize;

    fn message(&mut self, msg: &[u8], _len: u64, found: &mut Found) -> Wants {
        self.messages += 1;
        match header(msg) {
            // Refused, the client goes on in the clear; accepted, TLS follows and the next
            // "message" does not read as one.
            Some((8, SSL_REQUEST | GSSENC_REQUEST)) if self.messages < 3 => Wants::More,
            Some((_, V3)) => {
                for (name, value) in parameters(&msg[8..]) {
                    if name == b"user" {
                        found.add(List::Users, clean(value));
                    }
                }
                Wants::Done
            }
            Some((_, CANCEL_REQUEST)) | Some(_) | None => Wants::Done,
        }
    }
}

/// The `name\0value\0` pairs of a startup message, up to the empty name that ends them.
fn parameters(mut data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    std::iter::from_fn(move || {
        let name_end = memchr::memchr(0, data)?;
        let name = &data[..name_end];
        if name.is_empty() {
            return None;
        }
        let rest = &data[name_end + 1..];
        let value_end = memchr::memchr(0, rest)?;
        let value = &rest[..value_end];
        data = &rest[value_end + 1..];
        Some((name, value))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::session::proto::Inspect;

    /// A startup message with `params`.
    pub(crate) fn startup(params: &[(&str, &str)]) -> Vec<u8> {
        let mut body = V3.to_be_bytes().to_vec();
        for (k, v) in params {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut m = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        m.extend_from_slice(&body);
        m
    }

    fn users(stream: &[u8]) -> Vec<String> {
        let mut found = Found::default();
        let mut parser = ClientFrames::<Startup>::default();
        for piece in stream.chunks(3) {
            parser.feed(Dir::ToServer, piece, &mut found);
        }
        found.users.to_vec()
    }

    #[test]
    fn the_startup_user_is_read_after_a_refused_tls_request_too() {
        let m = startup(&[("user", "app_rw"), ("database", "orders")]);
        assert_eq!(users(&m), ["app_rw"]);
        let ssl = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        assert_eq!(users(&[&ssl[..], &m].concat()), ["app_rw"]);
        // Accepted: a TLS ClientHello follows, which gives nothing.
        assert!(users(&[&ssl[..], b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc"].concat()).is_empty());
        let probe_of = |data: &[u8]| {
            probe(&Probe {
                data,
                dir: Dir::ToServer,
                transport: crate::session::packet::TCP,
                ports: (40000, 5433),
            })
        };
        assert!(probe_of(&m) && probe_of(&ssl));
        assert!(!probe_of(b"GET / HTTP/1.1\r\n"));
        // Cut anywhere or with forged lengths: no panic, no user from a cut message.
        for cut in 0..m.len() {
            assert!(users(&m[..cut]).is_empty());
        }
        let mut forged = m.clone();
        forged[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        let _ = users(&forged);
    }
}
