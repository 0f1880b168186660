//! HTTP/1.x (and RTSP and SIP, which share its shape): the request line, `Host`, Basic
//! credentials, and `Content-Disposition` of responses.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pcap_protocol::session::App;

use super::values::{Head, filename_of_path, filename_param};
use super::{Dir, Found, Inspect, Probe, Protocol, Transports, Wants, clean, push_unique};
use crate::session::packet::TCP;

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

/// Bytes of a header block kept at most.
pub const HEADER_LIMIT: usize = 8 * 1024;

/// The request's and the response's header blocks.
#[derive(Debug)]
struct Parser {
    flavor: Flavor,
    tcp: bool,
    heads: [Head; 2],
    parsed: [bool; 2],
}

impl Parser {
    fn new(flavor: Flavor, transport: u8) -> Self {
        Parser {
            flavor,
            tcp: transport == TCP,
            heads: Default::default(),
            // RTSP and SIP give what they carry in the request alone.
            parsed: [false, flavor != Flavor::Http],
        }
    }
}

impl Inspect for Parser {
    fn feed(&mut self, dir: Dir, data: &[u8], found: &mut Found) -> Wants {
        // Over UDP (SIP), each datagram is a message of its own.
        if !self.tcp {
            if let Some(f) = request(data, self.flavor) {
                found.merge(f);
            }
            return Wants::Done;
        }
        let d = dir.index();
        if !self.parsed[d] {
            let head = self.heads[d].extend(data, HEADER_LIMIT);
            let parsed = match dir {
                Dir::ToServer => request(head, self.flavor),
                Dir::ToClient => response(head),
            };
            if let Some(f) = parsed {
                found.merge(f);
                self.parsed[d] = true;
            }
            self.parsed[d] |= self.heads[d].full(HEADER_LIMIT);
        }
        if self.parsed[0] && self.parsed[1] {
            Wants::Done
        } else {
            Wants::More
        }
    }
}

/// Request methods that mark the start of an HTTP request.
const HTTP_METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
];
const RTSP_METHODS: [&str; 8] = [
    "DESCRIBE",
    "SETUP",
    "PLAY",
    "PAUSE",
    "TEARDOWN",
    "ANNOUNCE",
    "RECORD",
    "GET_PARAMETER",
];
const SIP_METHODS: [&str; 8] = [
    "INVITE",
    "REGISTER",
    "ACK",
    "BYE",
    "CANCEL",
    "SUBSCRIBE",
    "NOTIFY",
    "MESSAGE",
];

/// Which protocol a text request line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Http,
    Rtsp,
    Sip,
}

/// Recognizes the first line of a request or response: `GET /x HTTP/1.1`, `RTSP/1.0 200 OK`,
/// `INVITE sip:bob@example.com SIP/2.0`.
pub fn flavor(data: &[u8]) -> Option<Flavor> {
    // Every method and version starts with a capital letter; most traffic is rejected here.
    if !data.first().is_some_and(u8::is_ascii_uppercase) {
        return None;
    }
    let line_end = data
        .iter()
        .take(2048)
        .position(|&b| b == b'\n')
        .unwrap_or(data.len().min(2048));
    let line = std::str::from_utf8(&data[..line_end]).ok()?.trim_end();
    if line.starts_with("HTTP/1.") {
        return Some(Flavor::Http);
    }
    if line.starts_with("RTSP/1.") {
        return Some(Flavor::Rtsp);
    }
    if line.starts_with("SIP/2.0 ") {
        return Some(Flavor::Sip);
    }
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
    if version.starts_with("RTSP/")
        || (RTSP_METHODS.contains(&method) || method == "OPTIONS") && target.starts_with("rtsp://")
    {
        return Some(Flavor::Rtsp);
    }
    if version == "SIP/2.0" || SIP_METHODS.contains(&method) && target.starts_with("sip:") {
        return Some(Flavor::Sip);
    }
    if HTTP_METHODS.contains(&method) && version.starts_with("HTTP/") {
        return Some(Flavor::Http);
    }
    None
}

/// What a request parse found: `None` while the header block is incomplete, `Some` once it
/// is complete or cannot be parsed (then with nothing found).
pub fn request(data: &[u8], flavor: Flavor) -> Option<Found> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let status = match flavor {
        Flavor::Http => match req.parse(data) {
            Ok(s) => s,
            Err(_) => return Some(Found::default()),
        },
        // RTSP and SIP request lines carry another version; parse the headers after the line.
        Flavor::Rtsp | Flavor::Sip => return other_request(data),
    };
    if status.is_partial() {
        return None;
    }
    let mut found = Found::default();
    let path = req.path.unwrap_or("/");
    let host = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| clean(h.value));
    found.urls.push(
        if path.starts_with("http://") || path.starts_with("https://") {
            clean(path.as_bytes())
        } else {
            format!(
                "http://{}{}",
                host.unwrap_or_default(),
                clean(path.as_bytes())
            )
        },
    );
    if let Some(name) = filename_of_path(path) {
        push_unique(&mut found.filenames, name);
    }
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("authorization")
            && let Some(user) = basic_user(h.value)
        {
            push_unique(&mut found.users, user);
        }
    }
    Some(found)
}

/// RTSP and SIP requests: the URI of the request line is the URL.
fn other_request(data: &[u8]) -> Option<Found> {
    let end = find(data, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&data[..end]);
    let first = head.lines().next()?;
    let uri = first.split(' ').nth(1)?;
    let mut found = Found::default();
    // A response line (SIP/2.0 200 OK) carries no URI.
    let response = first.starts_with("SIP/") || first.starts_with("RTSP/");
    if !response {
        found.urls.push(clean(uri.as_bytes()));
    }
    Some(found)
}

/// What a response's header block carries: `Content-Disposition` file names. `None` while the
/// header block is incomplete, `Some` once it is complete or cannot be parsed.
pub fn response(data: &[u8]) -> Option<Found> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(data) {
        Ok(s) if s.is_partial() => return None,
        Ok(_) => {}
        Err(_) => return Some(Found::default()),
    }
    let mut found = Found::default();
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-disposition")
            && let Some(name) = filename_param(&String::from_utf8_lossy(h.value))
        {
            push_unique(&mut found.filenames, name);
        }
    }
    Some(found)
}

/// The user of `Authorization: Basic base64(user:password)`.
fn basic_user(value: &[u8]) -> Option<String> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let user = decoded.split(|&b| b == b':').next()?;
    Some(clean(user))
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_gives_url_file_name_and_basic_user() {
        let req = b"GET /files/report%201.pdf?v=2 HTTP/1.1\r\nHost: lab.example:8081\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n";
        assert_eq!(flavor(req), Some(Flavor::Http));
        let f = request(req, Flavor::Http).unwrap();
        assert_eq!(f.urls, ["http://lab.example:8081/files/report%201.pdf?v=2"]);
        assert_eq!(f.filenames, ["report 1.pdf"]);
        assert_eq!(f.users, ["alice"]);
        assert!(
            request(&req[..30], Flavor::Http).is_none(),
            "incomplete headers wait"
        );
    }

    #[test]
    fn a_response_gives_the_disposition_file_name() {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename=\"fw.bin\"\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(response(resp).unwrap().filenames, ["fw.bin"]);
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
        let f = request(
            b"OPTIONS rtsp://cam/s RTSP/1.0\r\nCSeq: 1\r\n\r\n",
            Flavor::Rtsp,
        )
        .unwrap();
        assert_eq!(f.urls, ["rtsp://cam/s"]);
    }
}
