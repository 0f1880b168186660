//! Kerberos 5 (RFC 4120) on UDP and TCP 88: the client principal of AS-REQ, AS-REP, TGS-REP
//! and KRB-ERROR, where it travels in the clear, as `name@REALM` (tshark's `CNameString` and
//! realm). A TGS-REQ names its client only inside the encrypted authenticator: it gives
//! nothing. Tickets and encrypted parts are never read. Messages are decoded by
//! `kerberos-parser` (the rusticata parser Suricata uses).

use der_parser::asn1_rs::FromDer;
use kerberos_parser::krb5::{KrbError, PrincipalName, Realm};
use kerberos_parser::krb5_parser::{parse_as_rep, parse_as_req, parse_tgs_rep};
use pcap_protocol::session::App;

use super::frames::{Frames, Framing};
use super::{Dir, Found, Inspect, List, Probe, Protocol, Transports, Wants, clean};
use crate::session::packet::TCP;

pub static KERBEROS: Protocol = Protocol {
    app: App::Kerberos,
    transports: Transports::Both,
    ports: &[88],
    probe: Some(probe),
    parser: Some(|transport| {
        Box::new(Parser {
            tcp: transport == TCP,
            ..Parser::default()
        })
    }),
};

/// Bytes of a message read at most: a request or reply with its ticket.
const MESSAGE_LIMIT: usize = 16 * 1024;
/// Messages read from a session at most (a client asks for a few tickets).
const MAX_MESSAGES: u32 = 32;

/// The first bytes of each message type: its APPLICATION tag.
const AS_REQ: u8 = 0x6a;
const AS_REP: u8 = 0x6b;
const TGS_REQ: u8 = 0x6c;
const TGS_REP: u8 = 0x6d;
const KRB_ERROR: u8 = 0x7e;

/// Kerberos over TCP: a 4-byte big-endian length before each message, its top bit reserved.
struct RecordMark;

impl Framing for RecordMark {
    const HEADER: usize = 4;
    fn length(h: &[u8]) -> Option<u64> {
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        (len & 0x8000_0000 == 0).then_some(4 + u64::from(len))
    }
}

/// A Kerberos message opening a direction: one that decodes, with the TCP length first on TCP.
/// A message longer than what a probe sees (a TGS-REQ with its ticket, past the 512 bytes a
/// session's first bytes are kept for) is taken by its shape: a KDC message's tag, and a DER
/// length that fills the record mark's length exactly.
fn probe(p: &Probe<'_>) -> bool {
    if p.transport != TCP {
        return is_message(p.data);
    }
    let Some(record) = p.data.get(..4).and_then(RecordMark::length) else {
        return false;
    };
    let msg = &p.data[4..];
    if msg.len() as u64 >= record - 4 {
        return is_message(&msg[..(record - 4) as usize]);
    }
    matches!(
        msg.first(),
        Some(&(AS_REQ | TGS_REQ | AS_REP | TGS_REP | KRB_ERROR))
    ) && der_length(msg).is_some_and(|len| len == record - 4)
}

/// The whole length (header included) of the DER element `msg` starts with, from its header.
fn der_length(msg: &[u8]) -> Option<u64> {
    match *msg.get(1)? {
        n @ 0..=0x7f => Some(2 + u64::from(n)),
        n @ 0x81..=0x84 => {
            let count = usize::from(n & 0x7f);
            let bytes = msg.get(2..2 + count)?;
            let len = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            Some(2 + count as u64 + len)
        }
        _ => None,
    }
}

/// Whether `msg` decodes as one of the messages a KDC exchange starts with or answers.
pub fn is_message(msg: &[u8]) -> bool {
    match msg.first() {
        Some(&AS_REQ) => parse_as_req(msg).is_ok(),
        Some(&TGS_REQ) => kerberos_parser::krb5_parser::parse_tgs_req(msg).is_ok(),
        Some(&AS_REP) => parse_as_rep(msg).is_ok(),
        Some(&TGS_REP) => parse_tgs_rep(msg).is_ok(),
        Some(&KRB_ERROR) => KrbError::from_der(msg).is_ok(),
        _ => false,
    }
}

/// The client principal a message names in the clear, `name@REALM`.
pub fn client_principal(msg: &[u8]) -> Option<String> {
    let (name, realm) = match *msg.first()? {
        AS_REQ => {
            let (_, req) = parse_as_req(msg).ok()?;
            // In an AS-REQ the body's realm is the client's too.
            (req.req_body.cname?, req.req_body.realm)
        }
        AS_REP => {
            let (_, rep) = parse_as_rep(msg).ok()?;
            (rep.cname, rep.crealm)
        }
        TGS_REP => {
            let (_, rep) = parse_tgs_rep(msg).ok()?;
            (rep.cname, rep.crealm)
        }
        KRB_ERROR => {
            let (_, err) = KrbError::from_der(msg).ok()?;
            (err.cname?, err.crealm?)
        }
        _ => return None,
    };
    principal(&name, &realm)
}

fn principal(name: &PrincipalName, realm: &Realm) -> Option<String> {
    let name = clean(name.name_string.join("/").as_bytes());
    let realm = clean(realm.0.as_bytes());
    match (name.is_empty(), realm.is_empty()) {
        (true, _) => None,
        (false, true) => Some(name),
        (false, false) => Some(format!("{name}@{realm}")),
    }
}

/// Both directions of a Kerberos session, message by message.
#[derive(Debug, Default)]
struct Parser {
    tcp: bool,
    frames: [Frames; 2],
    messages: u32,
}

impl Parser {
    fn message(&mut self, msg: &[u8], found: &mut Found) {
        self.messages += 1;
        if let Some(user) = client_principal(msg) {
            found.add(List::Users, user);
        }
    }
}

impl Inspect for Parser {
    fn feed(&mut self, dir: Dir, data: &[u8], found: &mut Found) -> Wants {
        if !self.tcp {
            self.message(data, found);
        } else {
            let mut frames = std::mem::take(&mut self.frames[dir.index()]);
            let framed = frames.feed::<RecordMark>(data, MESSAGE_LIMIT, |msg, len| {
                // A message longer than what is kept cannot be decoded.
                if msg.len() as u64 == len {
                    self.message(&msg[4..], found);
                }
            });
            self.frames[dir.index()] = frames;
            if !framed {
                return Wants::Done;
            }
        }
        if self.messages >= MAX_MESSAGES {
            Wants::Done
        } else {
            Wants::More
        }
    }

    fn gap(&mut self, dir: Dir, len: u64) -> Wants {
        if self.frames[dir.index()].gap(len) {
            Wants::More
        } else {
            Wants::Done
        }
    }

    fn buffered(&self) -> usize {
        self.frames.iter().map(Frames::heap_bytes).sum()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// DER: a tag, a length, the content.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n @ 0..=127 => out.push(n as u8),
            n @ 128..=255 => out.extend_from_slice(&[0x81, n as u8]),
            n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(content);
        out
    }

    fn int(v: u8) -> Vec<u8> {
        tlv(0x02, &[v])
    }

    fn ctx(n: u8, content: &[u8]) -> Vec<u8> {
        tlv(0xa0 + n, content)
    }

    fn general_string(s: &str) -> Vec<u8> {
        tlv(0x1b, s.as_bytes())
    }

    fn principal_name(kind: u8, parts: &[&str]) -> Vec<u8> {
        let names: Vec<u8> = parts.iter().flat_map(|p| general_string(p)).collect();
        tlv(
            0x30,
            &[ctx(0, &int(kind)), ctx(1, &tlv(0x30, &names))].concat(),
        )
    }

    /// An AS-REQ for `user@realm`, as kinit sends it (no pre-authentication).
    pub(crate) fn as_req(user: &str, realm: &str) -> Vec<u8> {
        let body = tlv(
            0x30,
            &[
                ctx(0, &tlv(0x03, &[0, 0x50, 0, 0, 0])),
                ctx(1, &principal_name(1, &[user])),
                ctx(2, &general_string(realm)),
                ctx(3, &principal_name(2, &["krbtgt", realm])),
                ctx(5, &tlv(0x18, b"20370913024805Z")),
                ctx(7, &tlv(0x02, &[0x12, 0x34, 0x56, 0x78])),
                ctx(8, &tlv(0x30, &[int(18), int(17)].concat())),
            ]
            .concat(),
        );
        let req = tlv(
            0x30,
            &[ctx(1, &int(5)), ctx(2, &int(10)), ctx(4, &body)].concat(),
        );
        tlv(AS_REQ, &req)
    }

    #[test]
    fn an_as_req_gives_its_client_principal_on_udp_and_tcp() {
        let msg = as_req("alice", "EXAMPLE.TEST");
        assert_eq!(
            client_principal(&msg).as_deref(),
            Some("alice@EXAMPLE.TEST")
        );
        let udp = Probe {
            data: &msg,
            dir: Dir::ToServer,
            transport: crate::session::packet::UDP,
            ports: (40000, 88),
        };
        assert!(probe(&udp));

        let mut framed = (msg.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&msg);
        for chunk in [1, 5, framed.len()] {
            let mut parser = (KERBEROS.parser.unwrap())(TCP);
            let mut found = Found::default();
            for piece in framed.chunks(chunk) {
                parser.feed(Dir::ToServer, piece, &mut found);
            }
            assert_eq!(found.users, ["alice@EXAMPLE.TEST"], "chunks of {chunk}");
        }
    }

    #[test]
    fn cut_and_mangled_messages_give_nothing_and_never_panic() {
        let msg = as_req("bob", "R");
        for cut in 0..msg.len() {
            assert!(client_principal(&msg[..cut]).is_none());
        }
        for i in 0..msg.len() {
            let mut bad = msg.clone();
            bad[i] ^= 0xff;
            let _ = client_principal(&bad);
            let _ = is_message(&bad);
        }
        assert!(!is_message(b"GET / HTTP/1.1\r\n"));
    }

    /// A message longer than the bytes a probe sees is known on TCP by its tag and length.
    #[test]
    fn a_long_message_on_tcp_is_known_by_its_first_bytes() {
        // An AS-REQ padded past 512 bytes by a long realm.
        let msg = as_req("carol", &"R".repeat(600));
        let mut framed = (msg.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&msg);
        let tcp = |data: &[u8]| {
            probe(&Probe {
                data,
                dir: Dir::ToServer,
                transport: TCP,
                ports: (40000, 88),
            })
        };
        assert!(tcp(&framed[..512]));
        assert!(tcp(&framed));
        let mut wrong = framed[..512].to_vec();
        wrong[3] ^= 1;
        assert!(!tcp(&wrong), "a length the message does not fill");
        assert!(!tcp(&[0, 0, 0, 4, 0x30, 2, 1, 1]));
    }
}
