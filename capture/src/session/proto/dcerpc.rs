//! DCE/RPC connection-oriented (C706 chapter 12, [MS-RPCE] 2.2.2), on TCP 135 and on the
//! dynamic ports the endpoint mapper hands out, recognised there by the client's bind: the
//! NTLMSSP AUTHENTICATE message's `DOMAIN\user` from the authentication verifier of a bind,
//! alter context or AUTH3 PDU, as tshark's `ntlmssp.auth.domain` and `ntlmssp.auth.username`.
//! The verifier's responses (password hashes) are never kept; request bodies are skipped.

use pcap_protocol::session::App;

use super::frames::{ClientFrames, ClientMessages, Framing};
use super::{Dir, Found, List, Probe, Protocol, Transports, Wants, ntlmssp};

pub static DCERPC: Protocol = Protocol {
    app: App::Dcerpc,
    transports: Transports::Tcp,
    ports: &[135],
    probe: Some(probe),
    parser: Some(|_| Box::<ClientFrames<Pdus>>::default()),
};

/// PDU types of the client that may carry an authentication verifier.
const REQUEST: u8 = 0;
const BIND: u8 = 11;
const ALTER_CONTEXT: u8 = 14;
const AUTH3: u8 = 16;
/// The common header's length.
const HEADER: usize = 16;
/// PDUs read from a session at most: the binds come first, then requests.
const MAX_PDUS: u32 = 64;

/// The PDU's fragment length, in the byte order its data representation names.
#[derive(Debug)]
pub struct Pdu;

impl Framing for Pdu {
    const HEADER: usize = 10;
    fn length(h: &[u8]) -> Option<u64> {
        if h[0] != 5 || h[1] > 1 {
            return None;
        }
        let len = if h[4] & 0x10 != 0 {
            u16::from_le_bytes([h[8], h[9]])
        } else {
            u16::from_be_bytes([h[8], h[9]])
        };
        (usize::from(len) >= HEADER).then_some(u64::from(len))
    }
}

/// A bind or alter context opening the client's side: version 5.0 or 5.1, a known data
/// representation, a fragment length that holds the header.
fn probe(p: &Probe<'_>) -> bool {
    let d = p.data;
    p.dir == Dir::ToServer
        && d.len() >= HEADER
        && matches!(d[2], BIND | ALTER_CONTEXT)
        && matches!(d[4], 0x00 | 0x10)
        && Pdu::length(&d[..10]).is_some()
}

/// The client's PDUs.
#[derive(Debug, Default)]
pub struct Pdus {
    read: u32,
}

impl ClientMessages for Pdus {
    type Framing = Pdu;
    /// A bind with a Kerberos or NTLMSSP token fits; a request's body is skipped.
    const LIMIT: usize = 8 * 1024;

    fn message(&mut self, pdu: &[u8], len: u64, found: &mut Found) -> Wants {
        self.read += 1;
        if let Some(user) = verifier(pdu, len)
            .and_then(ntlmssp::find_authenticate)
            .and_then(|a| a.login())
        {
            found.add(List::Users, user);
        }
        if self.read >= MAX_PDUS {
            Wants::Done
        } else {
            Wants::More
        }
    }
}

/// The authentication token at the end of a PDU of `len` bytes, if it is all in `pdu`.
fn verifier(pdu: &[u8], len: u64) -> Option<&[u8]> {
    if !matches!(*pdu.get(2)?, REQUEST | BIND | ALTER_CONTEXT | AUTH3) || pdu.len() as u64 != len {
        return None;
    }
    let auth_len = if pdu[4] & 0x10 != 0 {
        u16::from_le_bytes([pdu[10], pdu[11]])
    } else {
        u16::from_be_bytes([pdu[10], pdu[11]])
    };
    let start = pdu.len().checked_sub(usize::from(auth_len))?;
    (auth_len > 0 && start >= HEADER).then(|| &pdu[start..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::proto::Inspect;

    /// An AUTH3 PDU carrying `token`, little-endian.
    fn auth3(token: &[u8]) -> Vec<u8> {
        let mut p = vec![5, 0, AUTH3, 3, 0x10, 0, 0, 0];
        let len = (HEADER + 4 + 8 + token.len()) as u16;
        p.extend_from_slice(&len.to_le_bytes());
        p.extend_from_slice(&(token.len() as u16).to_le_bytes());
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(&[0; 4]);
        // The auth trailer: type 10 (NTLMSSP), level 5 (integrity), pad, reserved, context.
        p.extend_from_slice(&[10, 5, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(token);
        p
    }

    #[test]
    fn the_verifier_of_auth3_names_the_user() {
        let pdu = auth3(&ntlmssp::tests::message("LABNET", "root", "WS"));
        let mut found = Found::default();
        let mut parser = ClientFrames::<Pdus>::default();
        for piece in pdu.chunks(11) {
            assert_eq!(parser.feed(Dir::ToServer, piece, &mut found), Wants::More);
        }
        assert_eq!(found.users, ["LABNET\\root"]);
        for cut in 0..pdu.len() {
            let _ = verifier(&pdu[..cut], pdu.len() as u64);
        }
        let mut forged = pdu.clone();
        forged[10..12].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(verifier(&forged, forged.len() as u64), None);
        let mut bind = pdu.clone();
        bind[2] = BIND;
        let probe_of = |data: &[u8]| {
            probe(&Probe {
                data,
                dir: Dir::ToServer,
                transport: crate::session::packet::TCP,
                ports: (40000, 49154),
            })
        };
        assert!(probe_of(&bind));
        assert!(!probe_of(&pdu), "an AUTH3 does not open a session");
        assert!(
            !probe_of(b"\x05\x00\x0b\x03\x10\0\0\0\x08\0\0\0\0\0\0\0"),
            "shorter than a header"
        );
    }
}
