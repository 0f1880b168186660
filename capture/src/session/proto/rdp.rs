//! RDP (TCP 3389): the user name of the `mstshash` cookie in the client's X.224 Connection
//! Request ([MS-RDPBCGR] 2.2.1.1), which clients fill with the login they were given, as
//! tshark's `rdp.rt_cookie`. Everything after the request is TLS or RDP's own encryption.

use pcap_protocol::session::App;

use super::frames::{ClientFrames, ClientMessages, Framing};
use super::{Dir, Found, List, Probe, Protocol, Transports, Wants, clean};

pub static RDP: Protocol = Protocol {
    app: App::Rdp,
    transports: Transports::Tcp,
    ports: &[3389],
    probe: Some(probe),
    parser: Some(|_| Box::<ClientFrames<ConnectionRequest>>::default()),
};

/// TPKT (RFC 1006): version 3, a reserved byte, a 2-byte big-endian length that counts the
/// header.
#[derive(Debug)]
pub struct Tpkt;

impl Framing for Tpkt {
    const HEADER: usize = 4;
    fn length(h: &[u8]) -> Option<u64> {
        (h[0] == 3 && h[1] == 0).then(|| u64::from(u16::from_be_bytes([h[2], h[3]])))
    }
}

/// The X.224 Connection Request code (upper nibble), and where its variable part starts in a
/// TPKT packet: the TPKT header, the length indicator, the code, two references and a class.
const CONNECTION_REQUEST: u8 = 0xe0;
const VARIABLE_PART: usize = 11;
const COOKIE: &[u8] = b"Cookie: mstshash=";

/// A TPKT packet carrying an X.224 Connection Request.
fn probe(p: &Probe<'_>) -> bool {
    let d = p.data;
    p.dir == Dir::ToServer
        && d.len() >= VARIABLE_PART
        && Tpkt::length(&d[..4]).is_some_and(|len| len >= VARIABLE_PART as u64)
        && usize::from(d[4]) + 5 == usize::from(u16::from_be_bytes([d[2], d[3]]))
        && d[5] & 0xf0 == CONNECTION_REQUEST
}

/// The client's connection request.
#[derive(Debug, Default)]
pub struct ConnectionRequest;

impl ClientMessages for ConnectionRequest {
    type Framing = Tpkt;
    const LIMIT: usize = 512;

    fn message(&mut self, msg: &[u8], _len: u64, found: &mut Found) -> Wants {
        if let Some(user) = cookie_user(msg) {
            found.add(List::Users, user);
        }
        Wants::Done
    }
}

/// The `mstshash` cookie's name in a connection request (TPKT header included).
fn cookie_user(msg: &[u8]) -> Option<String> {
    if msg.get(5)? & 0xf0 != CONNECTION_REQUEST {
        return None;
    }
    let rest = msg.get(VARIABLE_PART..)?.strip_prefix(COOKIE)?;
    let end = memchr::memmem::find(rest, b"\r\n")?;
    let user = &rest[..end];
    (!user.is_empty()).then(|| clean(user))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::session::proto::Inspect;

    /// A connection request with `cookie` and an RDP negotiation request.
    pub(crate) fn connection_request(cookie: &[u8]) -> Vec<u8> {
        let mut x224 = vec![0, CONNECTION_REQUEST, 0, 0, 0, 0, 0];
        x224.extend_from_slice(cookie);
        x224.extend_from_slice(&[1, 0, 8, 0, 3, 0, 0, 0]);
        x224[0] = (x224.len() - 1) as u8;
        let mut m = vec![3, 0];
        m.extend_from_slice(&((x224.len() + 4) as u16).to_be_bytes());
        m.extend_from_slice(&x224);
        m
    }

    #[test]
    fn the_cookie_names_the_user_and_a_routing_token_does_not() {
        let m = connection_request(b"Cookie: mstshash=jdoe\r\n");
        let mut found = Found::default();
        let mut parser = ClientFrames::<ConnectionRequest>::default();
        for piece in m.chunks(4) {
            parser.feed(Dir::ToServer, piece, &mut found);
        }
        assert_eq!(found.users, ["jdoe"]);
        let token = connection_request(b"Cookie: msts=3640205228.15629.0000\r\n");
        assert_eq!(cookie_user(&token), None);
        for cut in 0..m.len() {
            let _ = cookie_user(&m[..cut]);
        }
        let probe_of = |data: &[u8]| {
            probe(&Probe {
                data,
                dir: Dir::ToServer,
                transport: crate::session::packet::TCP,
                ports: (40000, 3390),
            })
        };
        assert!(probe_of(&m) && probe_of(&token));
        assert!(!probe_of(&[3, 0, 0, 19, 2, 0xf0, 0x80, 0x7f, 0x65, 0, 0]));
    }
}
