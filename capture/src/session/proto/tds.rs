//! MS-SQL's TDS (TCP 1433, [MS-TDS] 2.2.6.4): the user name of a LOGIN7 message sent in the
//! clear (a client and server that agree on no encryption, or an old client), as tshark's
//! `tds.7login.username`. A login inside TLS (the usual case, even with encryption off for
//! the data) gives nothing; the password, obfuscated in the message, is never read.

use pcap_protocol::session::App;

use super::frames::{ClientFrames, ClientMessages, Framing};
use super::{Dir, Found, List, Probe, Protocol, Transports, Wants, clean_utf16le};

pub static TDS: Protocol = Protocol {
    app: App::Tds,
    transports: Transports::Tcp,
    ports: &[1433],
    probe: Some(probe),
    parser: Some(|_| Box::<ClientFrames<Login>>::default()),
};

/// Packet types: a TDS 7 login, and the pre-login that comes before it.
const LOGIN7: u8 = 0x10;
const PRELOGIN: u8 = 0x12;
/// The packet header's length.
const HEADER: usize = 8;
/// Where a LOGIN7 message's user name offset and length (in characters) are.
const USER_NAME: usize = 40;

/// A packet: type, status, a 2-byte big-endian length that counts the header.
#[derive(Debug)]
pub struct Packet;

impl Framing for Packet {
    const HEADER: usize = HEADER;
    fn length(h: &[u8]) -> Option<u64> {
        let len = u16::from_be_bytes([h[2], h[3]]);
        (usize::from(len) >= HEADER).then_some(u64::from(len))
    }
}

/// A pre-login (its first option a VERSION token) or a login opening the client's side.
fn probe(p: &Probe<'_>) -> bool {
    let d = p.data;
    p.dir == Dir::ToServer
        && d.len() > HEADER
        && d[1] & !0x1b == 0
        && Packet::length(&d[..HEADER]).is_some_and(|len| len > HEADER as u64)
        && match d[0] {
            // The VERSION token: type 0, a small offset, 6 bytes long.
            PRELOGIN => d
                .get(HEADER..HEADER + 5)
                .is_some_and(|t| t[0] == 0 && t[1] == 0 && t[3] == 0 && t[4] == 6),
            // A login's own length fills the packet, and its TDS version is 7.0 to 7.4
            // (little-endian: the major version in its last byte).
            LOGIN7 => {
                d.len() >= HEADER + USER_NAME + 4
                    && u32::from_le_bytes([d[8], d[9], d[10], d[11]])
                        == u32::from(u16::from_be_bytes([d[2], d[3]])) - HEADER as u32
                    && (0x70..=0x74).contains(&d[15])
            }
            _ => false,
        }
}

/// The client's packets up to its login.
#[derive(Debug, Default)]
pub struct Login {
    read: u8,
}

impl ClientMessages for Login {
    type Framing = Packet;
    const LIMIT: usize = 4096;

    fn message(&mut self, packet: &[u8], _len: u64, found: &mut Found) -> Wants {
        self.read += 1;
        match packet[0] {
            LOGIN7 => {
                if let Some(user) = login_user(&packet[HEADER..]) {
                    found.add(List::Users, user);
                }
                Wants::Done
            }
            PRELOGIN if self.read < 4 => Wants::More,
            _ => Wants::Done,
        }
    }
}

/// The user name of a LOGIN7 message (after the packet header).
fn login_user(login: &[u8]) -> Option<String> {
    let at = |i: usize| {
        Some(usize::from(u16::from_le_bytes(
            login.get(i..i + 2)?.try_into().ok()?,
        )))
    };
    let (offset, chars) = (at(USER_NAME)?, at(USER_NAME + 2)?);
    let name = login.get(offset..offset.checked_add(chars * 2)?)?;
    let user = clean_utf16le(name);
    (!user.is_empty()).then_some(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::proto::Inspect;

    /// A LOGIN7 packet for `user` from host `WS1`.
    fn login7(user: &str) -> Vec<u8> {
        let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
        let mut body = vec![0u8; 94];
        let mut data = Vec::new();
        let mut field = |at: usize, text: &[u8], chars: usize, body: &mut Vec<u8>| {
            let offset = 94 + data.len();
            body[at..at + 2].copy_from_slice(&(offset as u16).to_le_bytes());
            body[at + 2..at + 4].copy_from_slice(&(chars as u16).to_le_bytes());
            data.extend_from_slice(text);
        };
        field(36, &utf16("WS1"), 3, &mut body);
        field(USER_NAME, &utf16(user), user.len(), &mut body);
        field(44, &[0xa5; 8], 4, &mut body);
        body.extend_from_slice(&data);
        let len = (body.len() as u32).to_le_bytes();
        body[..4].copy_from_slice(&len);
        body[4..8].copy_from_slice(&0x7400_0004u32.to_le_bytes());
        let mut p = vec![LOGIN7, 1];
        p.extend_from_slice(&((body.len() + HEADER) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0, 1, 0]);
        p.extend_from_slice(&body);
        p
    }

    #[test]
    fn a_clear_login_gives_its_user() {
        let p = login7("sa");
        let mut found = Found::default();
        let mut parser = ClientFrames::<Login>::default();
        for piece in p.chunks(7) {
            parser.feed(Dir::ToServer, piece, &mut found);
        }
        assert_eq!(found.users, ["sa"]);
        for cut in 0..p.len() {
            let _ = login_user(&p[HEADER..cut.max(HEADER)]);
        }
        let probe_of = |data: &[u8]| {
            probe(&Probe {
                data,
                dir: Dir::ToServer,
                transport: crate::session::packet::TCP,
                ports: (40000, 14330),
            })
        };
        assert!(probe_of(&p));
        let prelogin = [
            0x12, 1, 0, 0x2f, 0, 0, 1, 0, 0, 0, 0x1a, 0, 6, 1, 0, 0x20, 0, 1, 0xff,
        ];
        assert!(probe_of(&prelogin));
        assert!(!probe_of(b"\x16\x03\x01\x00\x2f\x01\x00\x00\x2b"));
        // A packet of type 0x10 that is not a login (an MQTT CONNECT starts so too).
        let mut other = p.clone();
        other[15] = 0x05;
        assert!(!probe_of(&other));
        let mut short = p.clone();
        short[8] ^= 1;
        assert!(
            !probe_of(&short),
            "a login length that does not fill the packet"
        );
    }
}
