//! One bidirectional session: who started it, counters per direction, and its inspection: the
//! first bytes of each direction until a protocol of the registry ([`super::proto`]) takes
//! them, then that protocol's parser until it is done. The flow knows no protocol by name.

use std::net::IpAddr;

use pcap_protocol::session::App;

use super::packet::{ACK, Decoded, ICMP, ICMPV6, SYN, TCP, UDP};
use super::proto::{self, Bounds, Dir, Expected, Found, Inspect, List, Probe, Wants};
use super::stream::{Chunk, Stream};
use super::tunnel::Tunnels;

/// Bytes of both directions seen without any signature after which a TCP session is left to
/// its port.
const UNDECIDED_AFTER: usize = 512;
/// Datagrams of a UDP session looked at without a signature at most.
const DATAGRAM_BUDGET: u32 = 8;
/// Datagrams of a UDP session its parser reads at most.
const PARSED_DATAGRAMS: u32 = 64;

/// Direction of a packet relative to the session's initiator, as array indices.
pub const TO_SERVER: usize = 0;
pub const TO_CLIENT: usize = 1;

/// A session's state.
#[derive(Debug)]
pub struct Session {
    pub proto: u8,
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// Packets and bytes (on the wire) to the server and to the client.
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    /// The application a payload signature found (else the port decides, when asked).
    pub app: Option<App>,
    /// The type and code of the first ICMP message (its Community ID hashes them).
    pub icmp: Option<(u8, u8)>,
    /// The fields found so far; most sessions have none, and keep no room for them.
    found: Option<Box<Found>>,
    /// The tunnel the session's first packet was found in, if any.
    tunnels: Option<Box<Tunnels>>,
    inspect: Inspection,
}

/// How far the inspection of a session is.
#[derive(Debug)]
enum Inspection {
    Done,
    /// UDP needs no buffers: each datagram stands alone.
    Udp {
        datagrams: u32,
        parser: Option<Box<dyn Inspect>>,
    },
    /// TCP without payload so far (a handshake, a scan): the initial sequence numbers its
    /// SYNs gave, and nothing allocated.
    TcpStart([Option<u32>; 2]),
    Tcp(Box<Tcp>),
}

/// What a TCP session keeps while it is inspected, from its first payload on; dropped once
/// its parser is done.
#[derive(Debug, Default)]
struct Tcp {
    streams: [Stream; 2],
    /// The first bytes of each direction, while no protocol has taken them.
    head: [Vec<u8>; 2],
    parser: Option<Box<dyn Inspect>>,
}

/// What one heap allocation costs besides its bytes (the allocator's header and rounding).
const ALLOCATION: usize = 16;

/// Bytes of a vector's heap room, if it has any.
fn heap<T>(v: &Vec<T>) -> usize {
    match v.capacity() {
        0 => 0,
        n => n * std::mem::size_of::<T>() + ALLOCATION,
    }
}

/// Bytes of a parser and its buffers.
fn parser_bytes(parser: &Option<Box<dyn Inspect>>) -> usize {
    parser
        .as_deref()
        .map_or(0, |p| std::mem::size_of_val(p) + ALLOCATION + p.buffered())
}

impl Tcp {
    fn bytes(&self) -> usize {
        let streams: usize = self.streams.iter().map(Stream::buffered).sum();
        let heads: usize = self.head.iter().map(heap).sum();
        std::mem::size_of::<Tcp>() + ALLOCATION + streams + heads + parser_bytes(&self.parser)
    }
}

impl Session {
    /// A session started by `p`, or by its destination when `p` is a SYN-ACK or comes from a
    /// service port to an ephemeral one (the capture began after the session did).
    pub fn new(p: &Decoded<'_>, ts_ns: u64) -> Self {
        let reversed = match p.tcp {
            Some((flags, _)) if flags & SYN != 0 => flags & ACK != 0,
            _ => is_service_port(p.proto, p.sport) && !is_service_port(p.proto, p.dport),
        };
        let (client, server) = if reversed {
            ((p.dst, p.dport), (p.src, p.sport))
        } else {
            ((p.src, p.sport), (p.dst, p.dport))
        };
        let app = match p.proto {
            ICMP | ICMPV6 => Some(App::Icmp),
            _ => None,
        };
        let inspect = match p.proto {
            TCP => Inspection::TcpStart([None; 2]),
            UDP => Inspection::Udp {
                datagrams: 0,
                parser: None,
            },
            _ => Inspection::Done,
        };
        Session {
            proto: p.proto,
            client,
            server,
            first_seen_ns: ts_ns,
            last_seen_ns: ts_ns,
            packets: [0; 2],
            bytes: [0; 2],
            app,
            icmp: p.icmp,
            found: None,
            tunnels: (!p.tunnels.is_empty()).then(|| Box::new(p.tunnels)),
            inspect,
        }
    }

    /// The tunnel the session was found in (its first packet's), if any.
    pub fn tunnels(&self) -> Option<&Tunnels> {
        self.tunnels.as_deref()
    }

    /// The fields found in the session.
    pub fn found(&self) -> &Found {
        static NONE: Found = Found::EMPTY;
        self.found.as_deref().unwrap_or(&NONE)
    }

    /// Whether the session's fields are still being looked for.
    pub fn inspecting(&self) -> bool {
        !matches!(self.inspect, Inspection::Done)
    }

    /// Stops the inspection: its buffers go, what it found stays.
    pub fn stop_inspecting(&mut self) {
        self.inspect = Inspection::Done;
    }

    /// Bytes the session holds: itself (boxed), what it found, its tunnel, and its inspection's
    /// buffers and parser.
    pub fn memory(&self) -> usize {
        let found = self.found.as_deref().map_or(0, |f| {
            std::mem::size_of::<Found>() + ALLOCATION + f.heap_bytes()
        });
        let tunnels = self
            .tunnels
            .as_ref()
            .map_or(0, |_| std::mem::size_of::<Tunnels>() + ALLOCATION);
        let inspection = match &self.inspect {
            Inspection::Done | Inspection::TcpStart(_) => 0,
            Inspection::Udp { parser, .. } => parser_bytes(parser),
            Inspection::Tcp(tcp) => tcp.bytes(),
        };
        std::mem::size_of::<Session>() + ALLOCATION + found + tunnels + inspection
    }

    /// The connections the session's parser announced since this was last asked.
    pub fn take_expected(&mut self) -> Vec<Expected> {
        match self.found.as_deref_mut() {
            Some(f) if !f.expected.is_empty() => std::mem::take(&mut f.expected),
            _ => Vec::new(),
        }
    }

    /// The session is the connection another one announced: it is `app`, carries `file`, and
    /// is not inspected (its bytes are a file's, whatever they look like).
    pub fn announced(&mut self, app: App, file: Option<String>, bounds: Bounds) {
        self.app = Some(app);
        self.inspect = Inspection::Done;
        if let Some(file) = file {
            self.found_mut(bounds).add(List::Filenames, file);
        }
    }

    /// A file name for the session, from the session that announced it.
    pub fn add_file(&mut self, file: String, bounds: Bounds) {
        self.found_mut(bounds).add(List::Filenames, file);
    }

    /// The application: the signature's, else the server port's, else `unknown`.
    pub fn application(&self) -> App {
        self.app
            .or_else(|| proto::by_port(self.proto, self.server.1).map(|p| p.app))
            .unwrap_or(App::Unknown)
    }

    /// Whether a packet from `src` is still read (its session is inspected, and its parser
    /// is not done with that direction); one that is not may be counted without a decode.
    pub fn reads(&self, src: (IpAddr, u16)) -> bool {
        let dir = if src == self.client {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        match &self.inspect {
            Inspection::Done => false,
            Inspection::Udp { .. } | Inspection::TcpStart(_) => true,
            Inspection::Tcp(tcp) => tcp.parser.as_ref().is_none_or(|p| p.wants(dir)),
        }
    }

    /// Counts a packet from `src`, without looking at it further.
    pub fn count(&mut self, src: (IpAddr, u16), ts_ns: u64, wire_len: u32) -> usize {
        let dir = if src == self.client {
            TO_SERVER
        } else {
            TO_CLIENT
        };
        self.packets[dir] += 1;
        self.bytes[dir] += u64::from(wire_len);
        self.last_seen_ns = self.last_seen_ns.max(ts_ns);
        dir
    }

    /// Accounts a packet and inspects its payload, keeping at most `bounds` of what it finds.
    pub fn packet(&mut self, p: &Decoded<'_>, ts_ns: u64, wire_len: u32, bounds: Bounds) {
        let dir = match self.count((p.src, p.sport), ts_ns, wire_len) {
            TO_SERVER => Dir::ToServer,
            _ => Dir::ToClient,
        };
        self.inspect = match std::mem::replace(&mut self.inspect, Inspection::Done) {
            Inspection::Done => Inspection::Done,
            Inspection::Udp { datagrams, parser } if p.payload.is_empty() => {
                Inspection::Udp { datagrams, parser }
            }
            Inspection::Udp { datagrams, parser } => {
                self.datagram(p, dir, (datagrams, parser), bounds)
            }
            Inspection::TcpStart(mut isn) => match p.tcp {
                Some((flags, seq)) if p.payload.is_empty() => {
                    if flags & SYN != 0 {
                        isn[dir.index()].get_or_insert(seq);
                    }
                    Inspection::TcpStart(isn)
                }
                // The first payload: the streams start, from the SYNs seen.
                Some(_) => {
                    let tcp = Box::new(Tcp {
                        streams: isn.map(Stream::starting),
                        ..Tcp::default()
                    });
                    self.tcp_segment(tcp, p, dir, bounds)
                }
                None => Inspection::TcpStart(isn),
            },
            Inspection::Tcp(tcp) => self.tcp_segment(tcp, p, dir, bounds),
        };
    }

    /// One TCP segment of an inspected session: its new in-order bytes (and any gap before
    /// them) to the detection or the parser.
    fn tcp_segment(
        &mut self,
        mut tcp: Box<Tcp>,
        p: &Decoded<'_>,
        dir: Dir,
        bounds: Bounds,
    ) -> Inspection {
        let Some((flags, seq)) = p.tcp else {
            return Inspection::Tcp(tcp);
        };
        let stream = &mut tcp.streams[dir.index()];
        if flags & SYN != 0 {
            stream.syn(seq);
        }
        let ports = (p.sport, p.dport);
        // The segment's own new bytes are read in place; waiting ones that follow, after them.
        let mut done = match stream.segment(seq, p.payload) {
            Some(Chunk::Data(new)) => self.tcp_bytes(&mut tcp, dir, new, ports, bounds),
            Some(Chunk::Gap(len)) => self.tcp_gap(&mut tcp, dir, len),
            None => false,
        };
        while !done && let Some(ready) = tcp.streams[dir.index()].next_ready() {
            done = self.tcp_bytes(&mut tcp, dir, &ready, ports, bounds);
        }
        if done {
            Inspection::Done
        } else {
            Inspection::Tcp(tcp)
        }
    }

    /// Bytes of `dir` are missing: the parser goes on after them if it can; a session still
    /// undecided is left to its port. True when inspection is over.
    fn tcp_gap(&mut self, tcp: &mut Tcp, dir: Dir, len: u64) -> bool {
        match &mut tcp.parser {
            Some(parser) => parser.gap(dir, len) == Wants::Done,
            None => true,
        }
    }

    fn found_mut(&mut self, bounds: Bounds) -> &mut Found {
        self.found
            .get_or_insert_with(|| Box::new(Found::new(bounds)))
    }

    /// New in-order bytes of a TCP direction; true when inspection is over.
    fn tcp_bytes(
        &mut self,
        tcp: &mut Tcp,
        dir: Dir,
        bytes: &[u8],
        ports: (u16, u16),
        bounds: Bounds,
    ) -> bool {
        if let Some(parser) = &mut tcp.parser {
            return parser.feed(dir, bytes, self.found_mut(bounds)) == Wants::Done;
        }
        let head = &mut tcp.head[dir.index()];
        let kept = bytes.len().min(UNDECIDED_AFTER.saturating_sub(head.len()));
        head.extend_from_slice(&bytes[..kept]);
        let probe = Probe {
            data: &tcp.head[dir.index()],
            dir,
            transport: TCP,
            ports,
        };
        let Some(found) = proto::detect(&probe) else {
            // No signature in the first bytes of both directions: the port decides.
            return tcp.head[0].len() + tcp.head[1].len() >= UNDECIDED_AFTER;
        };
        self.app = Some(found.app);
        let Some(start) = found.parser else {
            return true;
        };
        // The parser starts from the first bytes of both directions, the client's first.
        let mut parser = start(TCP);
        let heads = std::mem::take(&mut tcp.head);
        let mut wants = Wants::More;
        for (d, head) in [(Dir::ToServer, &heads[0]), (Dir::ToClient, &heads[1])] {
            // What of these bytes did not fit in the head follows it.
            let rest = if d == dir { &bytes[kept..] } else { &[][..] };
            for part in [&head[..], rest] {
                if !part.is_empty() && wants == Wants::More {
                    wants = parser.feed(d, part, self.found_mut(bounds));
                }
            }
        }
        tcp.parser = Some(parser);
        wants == Wants::Done
    }

    /// One UDP datagram: the inspection that follows it.
    fn datagram(
        &mut self,
        p: &Decoded<'_>,
        dir: Dir,
        (datagrams, parser): (u32, Option<Box<dyn Inspect>>),
        bounds: Bounds,
    ) -> Inspection {
        let datagrams = datagrams + 1;
        let mut parser = match parser {
            Some(parser) => parser,
            None => {
                let probe = Probe {
                    data: p.payload,
                    dir,
                    transport: UDP,
                    ports: (p.sport, p.dport),
                };
                match proto::detect(&probe) {
                    Some(found) => {
                        self.app = Some(found.app);
                        match found.parser {
                            Some(start) => start(UDP),
                            None => return Inspection::Done,
                        }
                    }
                    None if datagrams < DATAGRAM_BUDGET => {
                        return Inspection::Udp {
                            datagrams,
                            parser: None,
                        };
                    }
                    None => return Inspection::Done,
                }
            }
        };
        if parser.feed(dir, p.payload, self.found_mut(bounds)) == Wants::Done
            || datagrams >= PARSED_DATAGRAMS
        {
            return Inspection::Done;
        }
        Inspection::Udp {
            datagrams,
            parser: Some(parser),
        }
    }
}

/// Whether `port` is one a server listens on (so the other side is the client).
pub fn is_service_port(proto: u8, port: u16) -> bool {
    proto::by_port(proto, port).is_some() || port < 1024
}
