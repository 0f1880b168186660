//! TFTP (RFC 1350, UDP 69): the file names of read and write requests, as tshark's
//! `tftp.source_file` and `tftp.destination_file`. The transfer itself runs between the
//! client's port and a new port of the server: a session of its own, recognised by its first
//! packet (block 1 of data, the acknowledgement of block 0, or an option acknowledgement,
//! RFC 2347) and named `tftp` too.

use pcap_protocol::session::App;

use super::{Dir, Expected, Found, Inspect, List, Probe, Protocol, Side, Transports, Wants, clean};

pub static TFTP: Protocol = Protocol {
    app: App::Tftp,
    transports: Transports::Udp,
    ports: &[69],
    probe: Some(probe),
    parser: Some(|_| Box::<Parser>::default()),
};

const RRQ: u8 = 1;
const WRQ: u8 = 2;
const DATA: u8 = 3;
const ACK: u8 = 4;
const OACK: u8 = 6;
/// The transfer modes a request names.
const MODES: [&[u8]; 3] = [b"netascii", b"octet", b"mail"];
/// The largest data packet: the largest block size (RFC 2348) and its header.
const MAX_DATA: usize = 65_464 + 4;

/// The file name and mode of a request, if `d` is one.
fn request(d: &[u8]) -> Option<&[u8]> {
    if d.len() < 4 || d[0] != 0 || !matches!(d[1], RRQ | WRQ) {
        return None;
    }
    let rest = &d[2..];
    let name_end = memchr::memchr(0, rest)?;
    let name = &rest[..name_end];
    let mode_rest = &rest[name_end + 1..];
    let mode = &mode_rest[..memchr::memchr(0, mode_rest)?];
    (!name.is_empty()
        && name.iter().all(|&b| b >= 0x20)
        && MODES.iter().any(|m| mode.eq_ignore_ascii_case(m)))
    .then_some(name)
}

/// A request, or the first packet of a transfer.
fn probe(p: &Probe<'_>) -> bool {
    let d = p.data;
    request(d).is_some()
        || match d {
            [0, DATA, 0, 1, ..] => d.len() <= MAX_DATA,
            [0, ACK, 0, 0] => true,
            // Options: `name\0value\0` pairs, the first printable.
            [0, OACK, first, .., 0] => first.is_ascii_alphabetic(),
            _ => false,
        }
}

/// The requests of a session (a client may retry or ask again from the same port).
#[derive(Debug, Default)]
struct Parser {
    packets: u32,
}

/// Packets read from a session at most: the requests come first.
const MAX_PACKETS: u32 = 8;

impl Inspect for Parser {
    fn feed(&mut self, _dir: Dir, data: &[u8], found: &mut Found) -> Wants {
        self.packets += 1;
        if let Some(name) = request(data) {
            let name = clean(name);
            // The transfer comes from a new port of the server to the client's port.
            found.expected.push(Expected {
                app: App::Tftp,
                side: Side::Client,
                port: 0,
                file: Some(name.clone()),
            });
            found.add(List::Filenames, name);
        }
        if self.packets >= MAX_PACKETS {
            Wants::Done
        } else {
            Wants::More
        }
    }

    fn gap(&mut self, _dir: Dir, _len: u64) -> Wants {
        Wants::More
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_give_file_names_and_transfers_are_recognised() {
        let rrq = b"\0\x01firmware/v2.bin\0octet\0blksize\x001428\0";
        let mut found = Found::default();
        Parser::default().feed(Dir::ToServer, rrq, &mut found);
        assert_eq!(found.filenames, ["firmware/v2.bin"]);
        let probe_of = |data: &[u8]| {
            probe(&Probe {
                data,
                dir: Dir::ToServer,
                transport: crate::session::packet::UDP,
                ports: (40000, 6969),
            })
        };
        assert!(probe_of(rrq));
        assert!(probe_of(b"\0\x02up.cfg\0NETASCII\0"));
        assert!(probe_of(b"\0\x03\0\x01hello"));
        assert!(probe_of(b"\0\x04\0\0"));
        assert!(probe_of(b"\0\x06blksize\x001428\0"));
        assert!(!probe_of(b"\0\x01name\0binary\0"), "no such mode");
        assert!(!probe_of(b"\0\x03\0\x07late block"));
        for cut in 0..rrq.len() {
            let _ = probe_of(&rrq[..cut]);
        }
    }
}
