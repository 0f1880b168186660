//! One message head of HTTP/1.x, RTSP or SIP, read the lenient way servers and tshark read
//! them: the start line split at its first and last space (a request target holding spaces
//! stays whole), any version number, `\n` or `\r\n` line ends, folded header lines joined to
//! the header before them, repeated headers kept. Bounded: the head is at most what its caller
//! buffered, and at most [`MAX_HEADERS`] header lines are read.

use super::flavor::{is_method, version_of};

/// Header lines read from one head at most.
pub const MAX_HEADERS: usize = 128;

/// A message's start line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start<'a> {
    Request { method: &'a str, target: &'a str },
    Response { code: u16 },
}

/// A parsed head: its start line and its headers (name, value), in order.
#[derive(Debug)]
pub struct Head<'a> {
    pub start: Start<'a>,
    pub headers: Vec<(&'a str, String)>,
}

impl Head<'_> {
    /// The values of every header `name` (any case).
    pub fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of header `name`.
    pub fn get<'s>(&'s self, name: &'s str) -> Option<&'s str> {
        self.all(name).next()
    }
}

/// Why bytes are not a message head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAHead;

/// The head at the start of `data`: `Ok(None)` while it is incomplete, `Ok(Some((length,
/// head)))` once its blank line is there (`length` counts the blank line), `Err` if the first
/// line is no start line.
pub fn parse(data: &[u8]) -> Result<Option<(usize, Head<'_>)>, NotAHead> {
    // Empty lines before a request are allowed (RFC 9112 section 2.2), a few of them.
    let skipped = data
        .iter()
        .take(8)
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    let data = &data[skipped..];
    if !may_start(data) {
        return Err(NotAHead);
    }
    let Some((end, rest)) = head_end(data) else {
        // A first line that cannot start a message is refused at once.
        if let Some(line_end) = data.iter().position(|&b| b == b'\n') {
            start_line(trim_cr(&data[..line_end]))?;
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&data[..end]).map_err(|_| NotAHead)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = start_line(lines.next().ok_or(NotAHead)?.as_bytes())?;
    let mut headers: Vec<(&str, String)> = Vec::new();
    for line in lines.take(MAX_HEADERS) {
        if line.starts_with([' ', '\t']) {
            // obs-fold: the line continues the header before it.
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim_end();
            if !name.is_empty() && !name.contains(' ') {
                headers.push((name, value.trim().to_owned()));
            }
        }
    }
    Ok(Some((skipped + end + rest, Head { start, headers })))
}

/// Longest first token of a start line: a method ([`is_method`]) or a version.
const MAX_FIRST_TOKEN: usize = 32;

/// Whether `data` may start a start line: its first token, up to the first space, is made of
/// what methods and versions are made of. What cannot be one is refused from its first bytes,
/// without waiting for a line end that a stream of binary data may never have.
fn may_start(data: &[u8]) -> bool {
    for (i, &b) in data.iter().enumerate().take(MAX_FIRST_TOKEN + 1) {
        match b {
            b' ' => return i > 0,
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/' | b'.') => {}
            _ => return false,
        }
    }
    data.len() <= MAX_FIRST_TOKEN
}

/// Where the head's blank line is: the end of the head's text and the blank line's length.
fn head_end(data: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(n) = memchr::memchr(b'\n', &data[i..]) {
        let at = i + n;
        // The line after this line end: empty (`\n`) or `\r\n` means the head ends here.
        match &data[at + 1..] {
            [b'\n', ..] => return Some((at, 2)),
            [b'\r', b'\n', ..] => return Some((at, 3)),
            _ => i = at + 1,
        }
    }
    None
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn is_version(token: &str) -> bool {
    version_of(token).is_some()
}

fn start_line(line: &[u8]) -> Result<Start<'_>, NotAHead> {
    let line = std::str::from_utf8(line).map_err(|_| NotAHead)?.trim_end();
    let (first, rest) = line.split_once(' ').ok_or(NotAHead)?;
    if is_version(first) {
        let code = rest.trim_start().get(..3).ok_or(NotAHead)?;
        let code = code.parse().map_err(|_| NotAHead)?;
        return Ok(Start::Response { code });
    }
    let method = first;
    if !is_method(method) {
        return Err(NotAHead);
    }
    let (target, version) = rest.rsplit_once(' ').ok_or(NotAHead)?;
    if !is_version(version) {
        return Err(NotAHead);
    }
    let target = target.trim();
    if target.is_empty() {
        return Err(NotAHead);
    }
    Ok(Start::Request { method, target })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_read_the_lenient_way() {
        let (n, h) = parse(
            b"GET /a b/c.bin HTTP/1.1\r\nHost: x\r\nX-Folded: one\r\n two\r\nHost: y\r\n\r\nbody",
        )
        .unwrap()
        .unwrap();
        assert_eq!(n, 66, "up to the blank line, not the body");
        assert_eq!(
            h.start,
            Start::Request {
                method: "GET",
                target: "/a b/c.bin"
            }
        );
        assert_eq!(h.all("host").collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(h.get("x-folded"), Some("one two"));
        let (_, r) = parse(b"HTTP/1.2 200 ok\nContent-Length: 3\n\nabc")
            .unwrap()
            .unwrap();
        assert_eq!(r.start, Start::Response { code: 200 });
        assert_eq!(r.get("content-length"), Some("3"));
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nHost: x\r\n")
                .unwrap()
                .map(|h| h.0),
            None
        );
        assert_eq!(parse(b"\x16\x03\x01\x02\x00\n").unwrap_err(), NotAHead);
        assert_eq!(parse(b"GET /\r\n\r\n").unwrap_err(), NotAHead);
        // Binary data is refused from its first bytes, with no line end to wait for.
        assert_eq!(parse(&[0; 1460]).unwrap_err(), NotAHead);
        assert_eq!(parse(&[b'A'; 1460]).unwrap_err(), NotAHead);
        assert!(parse(b"GET").unwrap().is_none(), "a start cut short waits");
        let (_, s) = parse(b"SIP/2.0 180 Ringing\r\n\r\n").unwrap().unwrap();
        assert_eq!(s.start, Start::Response { code: 180 });
    }
}
