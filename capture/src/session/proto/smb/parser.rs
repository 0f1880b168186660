//! The SMB descriptor and the parser of a session: the client's byte stream split into
//! NetBIOS session messages ([RFC 1002] 4.3; direct TCP on 445 frames the same way), each
//! SMB message's first [`MESSAGE_LIMIT`] bytes read by [`super::smb1`] or [`super::smb2`], the
//! rest of a long one (a write's data) skipped unbuffered.

use pcap_protocol::session::App;

use super::super::frames::{Frames, Framing};
use super::super::{Dir, Found, Inspect, Probe, Protocol, Transports, Wants};
use super::{smb1, smb2};

pub static SMB: Protocol = Protocol {
    app: App::Smb,
    transports: Transports::Tcp,
    ports: &[445, 139],
    probe: Some(probe),
    parser: Some(|_| Box::<Parser>::default()),
};

/// Bytes of a message read at most: a session setup with its NTLMSSP token, a compound of
/// creates.
pub const MESSAGE_LIMIT: usize = 8 * 1024;

/// NetBIOS session message types: a session message carries SMB; the others (session
/// request and responses, keep-alive) carry none.
const SESSION_MESSAGE: u8 = 0x00;
const SESSION_REQUEST: u8 = 0x81;
const KEEP_ALIVE: u8 = 0x85;

/// NetBIOS session service framing: a type and a 24-bit length (17 bits on 139, the rest
/// zero).
struct NetBios;

impl Framing for NetBios {
    const HEADER: usize = 4;
    fn length(h: &[u8]) -> Option<u64> {
        let kind = h[0];
        (kind == SESSION_MESSAGE || (SESSION_REQUEST..=KEEP_ALIVE).contains(&kind))
            .then(|| 4 + u64::from(u32::from_be_bytes([0, h[1], h[2], h[3]])))
    }
}

/// An SMB message (or a NetBIOS session request) in a direction's first bytes.
fn probe(p: &Probe<'_>) -> bool {
    let d = p.data;
    match d.first() {
        Some(&SESSION_MESSAGE) => d
            .get(4..8)
            .is_some_and(|m| m == smb2::MAGIC || m == smb1::MAGIC || m == b"\xfdSMB"),
        // A session request names the called and calling NetBIOS names: 32 encoded
        // characters each, 'A' to 'P'.
        Some(&SESSION_REQUEST) => {
            p.port(139)
                && d.get(4) == Some(&32)
                && d.get(5..37)
                    .is_some_and(|n| n.iter().all(|c| (b'A'..=b'P').contains(c)))
        }
        _ => false,
    }
}

/// The client side of an SMB session.
#[derive(Debug, Default)]
struct Parser {
    frames: Frames,
}

impl Inspect for Parser {
    fn feed(&mut self, dir: Dir, data: &[u8], found: &mut Found) -> Wants {
        if dir == Dir::ToClient {
            return Wants::More;
        }
        let framed = self
            .frames
            .feed::<NetBios>(data, MESSAGE_LIMIT, |message, _| {
                if message[0] != SESSION_MESSAGE {
                    return;
                }
                let smb = &message[4..];
                match smb.get(..4) {
                    Some(m) if m == smb2::MAGIC => smb2::read(smb, found),
                    Some(m) if m == smb1::MAGIC => smb1::read(smb, found),
                    _ => {}
                }
            });
        if framed { Wants::More } else { Wants::Done }
    }

    fn wants(&self, dir: Dir) -> bool {
        dir == Dir::ToServer
    }

    fn gap(&mut self, dir: Dir, len: u64) -> Wants {
        if dir == Dir::ToClient || self.frames.gap(len) {
            Wants::More
        } else {
            Wants::Done
        }
    }

    fn buffered(&self) -> usize {
        self.frames.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::proto::smb::smb2::tests::{create, session_setup, tree_connect};

    fn framed(smb: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8];
        m.extend_from_slice(&(smb.len() as u32).to_be_bytes()[1..]);
        m.extend_from_slice(smb);
        m
    }

    #[test]
    fn a_session_streamed_in_any_cut_gives_every_request() {
        let mut stream = framed(&session_setup("CORP", "alice"));
        stream.extend_from_slice(&framed(&tree_connect("\\\\fs\\data")));
        // A write with a long payload that is skipped, then a create after it.
        let mut write = create("");
        write.resize(100_000, 0x55);
        stream.extend_from_slice(&framed(&write));
        stream.extend_from_slice(&framed(&create("big.iso")));
        for chunk in [1, 7, 1460, 65_536, stream.len()] {
            let mut found = Found::default();
            let mut parser = Parser::default();
            for piece in stream.chunks(chunk) {
                assert_eq!(parser.feed(Dir::ToServer, piece, &mut found), Wants::More);
            }
            assert_eq!(found.users, ["CORP\\alice"]);
            assert_eq!(found.urls, ["smb://fs/data"]);
            assert_eq!(found.filenames, ["big.iso"]);
            assert!(parser.buffered() <= 2 * MESSAGE_LIMIT);
        }
    }

    #[test]
    fn probes_take_smb_and_session_requests_and_nothing_else() {
        let tcp = |data: &[u8], port: u16| {
            probe(&Probe {
                data,
                dir: Dir::ToServer,
                transport: crate::session::packet::TCP,
                ports: (50000, port),
            })
        };
        assert!(tcp(&framed(&create("x")), 4455));
        let mut request = vec![SESSION_REQUEST, 0, 0, 68, 32];
        request.extend_from_slice(&[b'E'; 32]);
        assert!(tcp(&request, 139));
        assert!(!tcp(&request, 4139));
        assert!(!tcp(b"\0\0\0\x10GET / HTTP/1.1", 445));
    }

    #[test]
    fn a_gap_in_a_write_is_read_past_and_one_in_a_header_ends_it() {
        let mut write = create("");
        write.resize(50_000, 0);
        let stream = framed(&write);
        let mut parser = Parser::default();
        let mut found = Found::default();
        parser.feed(Dir::ToServer, &stream[..10_000], &mut found);
        assert_eq!(parser.gap(Dir::ToServer, 30_000), Wants::More);
        parser.feed(Dir::ToServer, &stream[40_000..], &mut found);
        parser.feed(Dir::ToServer, &framed(&create("after.txt")), &mut found);
        assert_eq!(found.filenames, ["after.txt"]);
        parser.feed(Dir::ToServer, &[0, 0], &mut found);
        assert_eq!(parser.gap(Dir::ToServer, 10), Wants::Done);
    }
}
