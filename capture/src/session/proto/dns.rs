//! DNS and mDNS: the question names of the client's queries, `dns://<name>` (`mdns://`), over
//! UDP (each datagram a message) and TCP (each message after its two-byte length). On its
//! ports (53, 5353, 5355) a DNS-shaped message is DNS; on any other port, over UDP or TCP, only
//! a query that is exactly one well-formed question (with an EDNS record at most) is, as a
//! heuristic dissector would take it.

use pcap_protocol::session::App;

use super::values::Head;
use super::{Dir, Found, Inspect, List, Probe, Protocol, Transports, Wants, clean_into};
use crate::session::packet::TCP;

pub static DNS: Protocol = Protocol {
    app: App::Dns,
    transports: Transports::Both,
    ports: &[53],
    probe: Some(|p| is_dns(p, &[53, 5355]) || anywhere(p)),
    parser: Some(|transport| Box::new(Parser::new(App::Dns, transport))),
};

pub static MDNS: Protocol = Protocol {
    app: App::Mdns,
    transports: Transports::Udp,
    ports: &[5353],
    probe: Some(|p| is_dns(p, &[5353])),
    parser: Some(|transport| Box::new(Parser::new(App::Mdns, transport))),
};

/// A DNS message from the client, on one of `ports` (a DNS-shaped datagram elsewhere is not
/// taken as DNS).
fn is_dns(p: &Probe<'_>, ports: &[u16]) -> bool {
    if p.dir != Dir::ToServer || !ports.iter().any(|port| p.port(*port)) {
        return false;
    }
    if p.transport == TCP {
        question_name_tcp(p.data).is_some()
    } else {
        looks_like_dns(p.data)
    }
}

/// A query on a port that is not DNS's: one strict query from the client.
fn anywhere(p: &Probe<'_>) -> bool {
    if p.dir != Dir::ToServer || [53, 5353, 5355].iter().any(|port| p.port(*port)) {
        return false;
    }
    if p.transport == TCP {
        let len = p
            .data
            .get(..2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
        return len.is_some_and(|len| p.data.len() == 2 + len && is_query(&p.data[2..]));
    }
    is_query(p.data)
}

/// Whether `data` is exactly one standard query: one question of a host name (letters,
/// digits, `-`, `_`), a known class, no answers, and nothing after it but one EDNS record.
pub fn is_query(data: &[u8]) -> bool {
    let Some(header) = data.get(..12) else {
        return false;
    };
    let count = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    let standard_query = header[2] & 0xf8 == 0;
    if !standard_query || count(4) != 1 || count(6) != 0 || count(8) != 0 || count(10) > 1 {
        return false;
    }
    let mut i = 12;
    let mut name_len = 0;
    loop {
        let Some(&len) = data.get(i) else {
            return false;
        };
        let len = usize::from(len);
        if len == 0 {
            i += 1;
            break;
        }
        let Some(label) = data.get(i + 1..i + 1 + len) else {
            return false;
        };
        name_len += len + 1;
        if len > 63
            || name_len > 255
            || !label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            return false;
        }
        i += 1 + len;
    }
    let Some(tail) = data.get(i..i + 4) else {
        return false;
    };
    let class = u16::from_be_bytes([tail[2], tail[3]]) & 0x7fff;
    if !matches!(class, 1 | 3 | 4 | 254 | 255) {
        return false;
    }
    let rest = &data[i + 4..];
    if count(10) == 0 {
        return rest.is_empty();
    }
    // An OPT record: the root name, type 41, class, TTL, and its data's length.
    rest.len() >= 11
        && rest[0] == 0
        && rest[1..3] == [0, 41]
        && rest.len() == 11 + usize::from(u16::from_be_bytes([rest[9], rest[10]]))
}

/// Messages of a DNS session; the URL scheme is the application's name.
#[derive(Debug)]
struct Parser {
    app: App,
    /// Over TCP, messages come after their lengths; over UDP, each datagram is one.
    tcp: bool,
    /// The client's TCP bytes until a whole message is there.
    pending: Head,
    messages: usize,
}

/// Messages of a session read at most (a resolver's long-lived flow has many).
const MAX_MESSAGES: usize = 256;

/// Largest DNS message over TCP kept to read its question.
const TCP_MESSAGE_LIMIT: usize = 4096;

impl Parser {
    fn new(app: App, transport: u8) -> Self {
        Parser {
            app,
            tcp: transport == TCP,
            pending: Head::default(),
            messages: 0,
        }
    }

    fn question(&mut self, msg: &[u8], found: &mut Found) -> Wants {
        let mut url = String::with_capacity(48);
        url.push_str(self.app.as_str());
        url.push_str("://");
        if question_name_into(msg, &mut url) {
            found.add(List::Urls, url);
        }
        self.messages += 1;
        if self.messages >= MAX_MESSAGES {
            Wants::Done
        } else {
            Wants::More
        }
    }
}

impl Inspect for Parser {
    fn feed(&mut self, dir: Dir, data: &[u8], found: &mut Found) -> Wants {
        if dir == Dir::ToClient {
            return Wants::More;
        }
        if !self.tcp {
            return self.question(data, found);
        }
        self.pending.extend(data, TCP_MESSAGE_LIMIT);
        loop {
            let bytes = self.pending.bytes();
            let Some(len) = bytes
                .get(..2)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            else {
                return Wants::More;
            };
            let Some(msg) = bytes.get(2..2 + len) else {
                return if self.pending.full(TCP_MESSAGE_LIMIT) {
                    Wants::Done
                } else {
                    Wants::More
                };
            };
            let msg = msg.to_vec();
            self.pending.consume(2 + len);
            if self.question(&msg, found) == Wants::Done {
                return Wants::Done;
            }
        }
    }

    fn wants(&self, dir: Dir) -> bool {
        dir == Dir::ToServer
    }

    fn buffered(&self) -> usize {
        self.pending.heap_bytes()
    }
}

/// Whether `data` is plausibly a DNS message: a 12-byte header with at most a few questions.
pub fn looks_like_dns(data: &[u8]) -> bool {
    if data.len() < 12 {
        return false;
    }
    let qdcount = u16::from_be_bytes([data[4], data[5]]);
    let opcode = (data[2] >> 3) & 0x0f;
    (1..=4).contains(&qdcount) && opcode <= 5 && labels(data, |_| {})
}

/// The name of the first question (`example.com`), following no compression pointers.
pub fn question_name(data: &[u8]) -> Option<String> {
    let mut name = String::new();
    question_name_into(data, &mut name).then_some(name)
}

/// Appends the first question's name to `out`; false (and `out` in any state) if it is not a
/// whole name.
fn question_name_into(data: &[u8], out: &mut String) -> bool {
    let start = out.len();
    let whole = labels(data, |label| {
        if out.len() > start {
            out.push('.');
        }
        clean_into(label, out);
    });
    if whole && out.len() == start {
        out.push('.');
    }
    whole
}

/// Hands each label of the first question to `label`; whether the name ends before the
/// message does, within 64 labels of at most 63 bytes.
fn labels(data: &[u8], mut label: impl FnMut(&[u8])) -> bool {
    let mut i = 12;
    for _ in 0..64 {
        let Some(&len) = data.get(i) else {
            return false;
        };
        let len = usize::from(len);
        if len == 0 {
            return true;
        }
        let Some(bytes) = data.get(i + 1..i + 1 + len).filter(|_| len <= 63) else {
            return false;
        };
        label(bytes);
        i += 1 + len;
    }
    false
}

/// DNS over TCP carries a two-byte length before each message.
pub fn question_name_tcp(data: &[u8]) -> Option<String> {
    let len = usize::from(u16::from_be_bytes([*data.first()?, *data.get(1)?]));
    let msg = data.get(2..2 + len.min(data.len().saturating_sub(2)))?;
    looks_like_dns(msg).then(|| question_name(msg)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strict_query_is_dns_on_any_port_and_other_payloads_are_not() {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x06device\x03lan\x00\x00\x01\x00\x01");
        assert!(is_query(&q));
        let mut edns = q.clone();
        edns[11] = 1;
        edns.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        assert!(is_query(&edns));
        let mut answer = q.clone();
        answer[2] |= 0x80;
        assert!(!is_query(&answer), "a response");
        let mut trailing = q.clone();
        trailing.push(0);
        assert!(!is_query(&trailing), "bytes after the question");
        assert!(!is_query(&[0u8; 512]), "zeros");
        fn probe(data: &[u8], transport: u8) -> Probe<'_> {
            Probe {
                data,
                dir: Dir::ToServer,
                transport,
                ports: (40000, 5300),
            }
        }
        assert!(anywhere(&probe(&q, crate::session::packet::UDP)));
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        assert!(anywhere(&probe(&framed, TCP)));
        assert!(!anywhere(&probe(&q, TCP)), "TCP needs its length first");
    }

    #[test]
    fn the_question_name_is_read_and_bad_input_is_refused() {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        assert!(looks_like_dns(&q));
        assert_eq!(question_name(&q).as_deref(), Some("www.example.com"));
        assert_eq!(question_name(&q[..16]), None);
        let mut bad = q.clone();
        bad[12] = 0xc0;
        assert_eq!(question_name(&bad), None);
    }
}
