//! One bidirectional session: who started it, counters per direction, and the inspection of
//! the first bytes of each direction until its fields are known.

use std::net::IpAddr;

use pcap_protocol::session::App;

use super::detect;
use super::packet::{ACK, Decoded, ICMP, ICMPV6, SYN, TCP, UDP};
use super::proto::mail::{FtpClient, Lines, SmtpClient};
use super::proto::{Found, binary, dns, http, push_unique, tls};
use super::stream::Stream;
use super::tunnel::Tunnels;

/// Bytes of a direction kept to parse a header block (HTTP headers, a ClientHello).
pub const HEADER_LIMIT: usize = 8 * 1024;
/// Bytes of a line-oriented direction (SMTP, FTP) scanned at most.
pub const LINE_BUDGET: u64 = 1 << 20;
/// Bytes seen without any signature after which a TCP session is left to its port.
const UNDECIDED_AFTER: usize = 512;
/// Datagrams of a UDP session inspected at most.
const DATAGRAM_BUDGET: u32 = 8;

/// Direction of a packet relative to the session's initiator.
pub const TO_SERVER: usize = 0;
pub const TO_CLIENT: usize = 1;

/// A session's state.
#[derive(Debug, Clone)]
pub struct Session {
    pub proto: u8,
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// Packets and bytes (on the wire) to the server and to the client.
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub app: Option<App>,
    /// The fields found so far; most sessions have none, and keep no room for them.
    found: Option<Box<Found>>,
    /// The tunnel the session's first packet was found in, if any.
    tunnels: Option<Box<Tunnels>>,
    inspect: Inspection,
}

/// How far the inspection of a session is.
#[derive(Debug, Clone)]
enum Inspection {
    Done,
    /// UDP needs no buffers: each datagram stands alone.
    Udp {
        datagrams: u32,
    },
    Tcp(Box<Inspect>),
}

/// What is kept while a session is inspected; dropped once its fields are known.
#[derive(Debug, Clone, Default)]
struct Inspect {
    streams: [Stream; 2],
    head: [Vec<u8>; 2],
    /// Header blocks already parsed, per direction.
    parsed: [bool; 2],
    lines: Lines,
    smtp: Option<SmtpClient>,
    ftp: Option<FtpClient>,
    scanned: u64,
}

impl Session {
    /// A session started by `p`, or by its destination when `p` is a SYN-ACK or comes from a
    /// service port to an ephemeral one (the capture began after the session did).
    pub fn new(p: &Decoded<'_>, ts_ns: u64) -> Self {
        let reversed = match p.tcp {
            Some((flags, _)) if flags & SYN != 0 => flags & ACK != 0,
            _ => {
                detect::is_service_port(p.proto, p.sport)
                    && !detect::is_service_port(p.proto, p.dport)
            }
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
            TCP => Inspection::Tcp(Box::default()),
            UDP => Inspection::Udp { datagrams: 0 },
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

    fn found_mut(&mut self) -> &mut Found {
        self.found.get_or_insert_default()
    }

    /// Whether the session's fields are still being looked for.
    pub fn inspecting(&self) -> bool {
        !matches!(self.inspect, Inspection::Done)
    }

    /// The application: the signature's, else the server port's, else `unknown`.
    pub fn application(&self) -> App {
        self.app
            .or_else(|| detect::by_port(self.proto, self.server.1))
            .unwrap_or(App::Unknown)
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

    /// Accounts a packet and inspects its payload.
    pub fn packet(&mut self, p: &Decoded<'_>, ts_ns: u64, wire_len: u32) {
        let dir = self.count((p.src, p.sport), ts_ns, wire_len);
        match std::mem::replace(&mut self.inspect, Inspection::Done) {
            Inspection::Done => {}
            Inspection::Udp { datagrams } => {
                if p.payload.is_empty() {
                    self.inspect = Inspection::Udp { datagrams };
                } else if !self.datagram(p) && datagrams + 1 < DATAGRAM_BUDGET {
                    self.inspect = Inspection::Udp {
                        datagrams: datagrams + 1,
                    };
                }
            }
            Inspection::Tcp(mut inspect) => {
                let done = match p.tcp {
                    Some((flags, seq)) => {
                        if flags & SYN != 0 {
                            inspect.streams[dir].syn(seq);
                        }
                        let mut new = Vec::new();
                        inspect.streams[dir].segment(seq, p.payload, |b| new.extend_from_slice(b));
                        !new.is_empty() && self.tcp_bytes(&mut inspect, dir, &new)
                    }
                    None => false,
                };
                if !done {
                    self.inspect = Inspection::Tcp(inspect);
                }
            }
        }
    }

    /// New in-order bytes of a TCP direction; true when inspection is over.
    fn tcp_bytes(&mut self, ins: &mut Inspect, dir: usize, bytes: &[u8]) -> bool {
        let head = &mut ins.head[dir];
        let room = HEADER_LIMIT.saturating_sub(head.len());
        head.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if self.app.is_none() {
            self.app = detect::tcp_signature(&ins.head[dir], dir == TO_SERVER, self.server.1);
            match self.app {
                Some(App::Smtp) => {
                    ins.smtp = Some(SmtpClient::default());
                    // The client may have spoken already; scan what it said.
                    let client = std::mem::take(&mut ins.head[TO_SERVER]);
                    return self.lines(ins, &client);
                }
                Some(App::Ftp) => {
                    ins.ftp = Some(FtpClient);
                    let client = std::mem::take(&mut ins.head[TO_SERVER]);
                    return self.lines(ins, &client);
                }
                Some(_) => {}
                // No signature in the first bytes of both directions: the port decides.
                None => {
                    return ins.head[TO_SERVER].len() + ins.head[TO_CLIENT].len()
                        >= UNDECIDED_AFTER;
                }
            }
        }
        match self.app {
            Some(App::Smtp | App::Ftp) => {
                if dir == TO_SERVER {
                    ins.head[TO_SERVER].clear();
                    return self.lines(ins, bytes);
                }
                ins.head[TO_CLIENT].clear();
                false
            }
            Some(App::Http | App::Rtsp | App::Sip) => self.header_blocks(ins),
            Some(App::Tls) => {
                if !ins.parsed[TO_SERVER]
                    && let Some(found) = tls::client_hello(&ins.head[TO_SERVER])
                {
                    self.merge(found);
                    ins.parsed[TO_SERVER] = true;
                }
                ins.parsed[TO_SERVER] || ins.head[TO_SERVER].len() >= HEADER_LIMIT
            }
            Some(App::Mqtt) => {
                if let Some(Some(user)) = binary::mqtt_connect(&ins.head[TO_SERVER]) {
                    push_unique(&mut self.found_mut().users, user);
                }
                ins.head[TO_SERVER].len() >= 2
            }
            Some(App::Dns) => {
                if let Some(name) = dns::question_name_tcp(&ins.head[TO_SERVER]) {
                    push_unique(&mut self.found_mut().urls, format!("dns://{name}"));
                    return true;
                }
                ins.head[TO_SERVER].len() >= HEADER_LIMIT
            }
            _ => true,
        }
    }

    /// HTTP-shaped protocols: the client's request and the server's response headers.
    fn header_blocks(&mut self, ins: &mut Inspect) -> bool {
        let flavor = match self.app {
            Some(App::Rtsp) => http::Flavor::Rtsp,
            Some(App::Sip) => http::Flavor::Sip,
            _ => http::Flavor::Http,
        };
        if !ins.parsed[TO_SERVER]
            && let Some(found) = http::request(&ins.head[TO_SERVER], flavor)
        {
            self.merge(found);
            ins.parsed[TO_SERVER] = true;
        }
        if !ins.parsed[TO_CLIENT]
            && flavor == http::Flavor::Http
            && let Some(found) = http::response(&ins.head[TO_CLIENT])
        {
            self.merge(found);
            ins.parsed[TO_CLIENT] = true;
        }
        let full = |d: usize| ins.parsed[d] || ins.head[d].len() >= HEADER_LIMIT;
        full(TO_SERVER) && (flavor != http::Flavor::Http || full(TO_CLIENT))
    }

    /// Client lines of SMTP or FTP; true once the budget is spent.
    fn lines(&mut self, ins: &mut Inspect, bytes: &[u8]) -> bool {
        let found = self.found_mut();
        let (smtp, ftp) = (&mut ins.smtp, &mut ins.ftp);
        ins.lines.feed(bytes, |line| {
            if let Some(s) = smtp.as_mut() {
                s.line(line, found);
            } else if let Some(f) = ftp.as_mut() {
                f.line(line, found);
            }
        });
        ins.scanned += bytes.len() as u64;
        ins.scanned >= LINE_BUDGET
    }

    /// One UDP datagram; true when inspection is over.
    fn datagram(&mut self, p: &Decoded<'_>) -> bool {
        if self.app.is_none() {
            self.app = detect::udp_signature(p.payload, p.sport, p.dport);
        }
        match self.app {
            Some(a @ (App::Dns | App::Mdns)) => {
                if let Some(name) = dns::question_name(p.payload) {
                    push_unique(&mut self.found_mut().urls, format!("{a}://{name}"));
                    return true;
                }
                false
            }
            Some(App::Sip) => {
                if let Some(found) = http::request(p.payload, http::Flavor::Sip) {
                    self.merge(found);
                }
                true
            }
            Some(_) => true,
            None => false,
        }
    }

    fn merge(&mut self, found: Found) {
        let f = self.found_mut();
        for v in found.urls {
            push_unique(&mut f.urls, v);
        }
        for v in found.filenames {
            push_unique(&mut f.filenames, v);
        }
        for v in found.users {
            push_unique(&mut f.users, v);
        }
        for v in found.alpn {
            push_unique(&mut f.alpn, v);
        }
        if f.email_sender.is_none() {
            f.email_sender = found.email_sender;
        }
        for v in found.email_recipients {
            push_unique(&mut f.email_recipients, v);
        }
        if f.email_subject.is_none() {
            f.email_subject = found.email_subject;
        }
    }
}
