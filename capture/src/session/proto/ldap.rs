//! LDAP (RFC 4511, TCP 389): the users of bind requests: a simple bind's DN (tshark's
//! `ldap.name`), and a SASL bind's NTLMSSP AUTHENTICATE `DOMAIN\user` (`NTLM`, `GSS-SPNEGO`:
//! tshark's `ntlmssp.auth.username`). Messages are decoded by `ldap-parser` (the rusticata
//! parser Suricata uses). A simple bind's password and SASL responses are never kept;
//! everything after `StartTLS` is TLS and gives nothing.

use ldap_parser::FromBer;
use ldap_parser::ldap::{AuthenticationChoice, LdapMessage, ProtocolOp};
use pcap_protocol::session::App;

use super::frames::{ClientFrames, ClientMessages, Framing};
use super::{Dir, Found, List, Probe, Protocol, Transports, Wants, clean, ntlmssp};

pub static LDAP: Protocol = Protocol {
    app: App::Ldap,
    transports: Transports::Tcp,
    ports: &[389, 3268],
    probe: Some(probe),
    parser: Some(|_| Box::<ClientFrames<Requests>>::default()),
};

/// Messages read from a session at most: binds come first.
const MAX_MESSAGES: u32 = 64;
/// A BER SEQUENCE.
const SEQUENCE: u8 = 0x30;
/// The APPLICATION tags of the requests a client opens with: bind, search, extended
/// (StartTLS).
const BIND_REQUEST: u8 = 0x60;
const SEARCH_REQUEST: u8 = 0x63;
const EXTENDED_REQUEST: u8 = 0x77;

/// A BER SEQUENCE's definite length: short form, or long form of up to 4 bytes. Every LDAP
/// message is longer than the 6 bytes this reads first.
#[derive(Debug)]
pub struct Ber;

impl Framing for Ber {
    const HEADER: usize = 6;
    fn length(h: &[u8]) -> Option<u64> {
        if h[0] != SEQUENCE {
            return None;
        }
        match h[1] {
            n @ 0..=0x7f => Some(2 + u64::from(n)),
            0x81..=0x84 => {
                let count = usize::from(h[1] & 0x7f);
                let len = h[2..2 + count]
                    .iter()
                    .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
                Some(2 + count as u64 + len)
            }
            _ => None,
        }
    }
}

/// A request opening the client's side that decodes as an LDAP message.
fn probe(p: &Probe<'_>) -> bool {
    let d = p.data;
    if p.dir != Dir::ToServer || d.len() < Ber::HEADER {
        return false;
    }
    let Some(len) = Ber::length(&d[..Ber::HEADER]) else {
        return false;
    };
    // The message ID (an INTEGER of at most 4 bytes) and the operation's tag, before the
    // decoder is asked.
    let id_at = 2 + if d[1] > 0x80 {
        usize::from(d[1] & 0x7f)
    } else {
        0
    };
    let id_len = usize::from(*d.get(id_at + 1).unwrap_or(&0xff));
    let op_at = id_at + 2 + id_len;
    d.get(id_at) == Some(&0x02)
        && id_len <= 4
        && matches!(
            d.get(op_at),
            Some(&(BIND_REQUEST | SEARCH_REQUEST | EXTENDED_REQUEST))
        )
        && (len > d.len() as u64 || LdapMessage::from_ber(&d[..len as usize]).is_ok())
}

/// The client's requests.
#[derive(Debug, Default)]
pub struct Requests {
    read: u32,
}

impl ClientMessages for Requests {
    type Framing = Ber;
    /// A bind with an NTLMSSP or Kerberos token fits.
    const LIMIT: usize = 16 * 1024;

    fn message(&mut self, msg: &[u8], len: u64, found: &mut Found) -> Wants {
        self.read += 1;
        if msg.len() as u64 == len
            && let Some(user) = bind_user(msg)
        {
            found.add(List::Users, user);
        }
        if self.read >= MAX_MESSAGES {
            Wants::Done
        } else {
            Wants::More
        }
    }
}

/// The user a bind request names.
fn bind_user(msg: &[u8]) -> Option<String> {
    let (_, message) = LdapMessage::from_ber(msg).ok()?;
    let ProtocolOp::BindRequest(bind) = message.protocol_op else {
        return None;
    };
    match bind.authentication {
        AuthenticationChoice::Simple(_) => {
            let dn = clean(bind.name.0.as_bytes());
            (!dn.is_empty()).then_some(dn)
        }
        AuthenticationChoice::Sasl(sasl) => {
            ntlmssp::find_authenticate(sasl.credentials.as_deref()?)?.login()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::proto::Inspect;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n @ 0..=127 => out.push(n as u8),
            n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(content);
        out
    }

    /// A bind request, message 1, version 3, with `auth` (already tagged).
    fn bind(name: &str, auth: &[u8]) -> Vec<u8> {
        let op = tlv(
            BIND_REQUEST,
            &[&tlv(0x02, &[3])[..], &tlv(0x04, name.as_bytes()), auth].concat(),
        );
        tlv(SEQUENCE, &[&tlv(0x02, &[1])[..], &op].concat())
    }

    #[test]
    fn simple_and_ntlm_binds_give_users_and_never_the_password() {
        let simple = bind("cn=admin,dc=lab,dc=test", &tlv(0x80, b"secret"));
        let ntlm = ntlmssp::tests::message("", "alice", "WS");
        let sasl = bind(
            "",
            &tlv(0xa3, &[&tlv(0x04, b"NTLM")[..], &tlv(0x04, &ntlm)].concat()),
        );
        let anonymous = bind("", &tlv(0x80, b""));
        let stream = [simple.clone(), sasl.clone(), anonymous].concat();
        for chunk in [1, 5, stream.len()] {
            let mut found = Found::default();
            let mut parser = ClientFrames::<Requests>::default();
            for piece in stream.chunks(chunk) {
                assert_eq!(parser.feed(Dir::ToServer, piece, &mut found), Wants::More);
            }
            assert_eq!(found.users, ["cn=admin,dc=lab,dc=test", "alice"]);
        }
        let probe_of = |data: &[u8]| {
            probe(&Probe {
                data,
                dir: Dir::ToServer,
                transport: crate::session::packet::TCP,
                ports: (40000, 10389),
            })
        };
        assert!(probe_of(&simple) && probe_of(&sasl) && probe_of(&simple[..10]));
        assert!(!probe_of(b"\x30\x03\x02\x01\x01"));
        assert!(!probe_of(&tlv(
            SEQUENCE,
            &[&tlv(0x02, &[1])[..], &tlv(0x42, b"")].concat()
        )));
        for cut in 0..sasl.len() {
            let _ = probe_of(&sasl[..cut]);
            let _ = bind_user(&sasl[..cut]);
        }
    }
}
