//! Line-oriented protocols (SMTP, FTP, POP3, IMAP) scanned as they stream: a byte
//! stream split into bounded lines, handed over one at a time, so nothing but the current line
//! is buffered; and the server greeting that tells SMTP from FTP. A session is followed to its
//! end, every message and command of it, unless it turns into TLS (`STARTTLS`, `AUTH TLS`).

use super::{Dir, Found, Inspect, Wants};

/// Longest line kept; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 4096;

/// Splits a byte stream into lines, bounded.
#[derive(Debug, Default, Clone)]
pub struct Lines {
    partial: Vec<u8>,
    overflow: bool,
    /// Dropping what comes up to the next line end (a gap cut the line).
    skip: bool,
}

impl Lines {
    /// Feeds `data`; calls `each` with every complete line (without the line end).
    pub fn feed(&mut self, mut data: &[u8], mut each: impl FnMut(&[u8])) {
        while !data.is_empty() {
            let (piece, complete) = match memchr::memchr(b'\n', data) {
                Some(at) => (&data[..=at], true),
                None => (data, false),
            };
            data = &data[piece.len()..];
            if self.skip {
                self.skip = !complete;
                continue;
            }
            if complete && self.partial.is_empty() {
                // The whole line is in `data`: no copy.
                let line = &piece[..piece.len().min(MAX_LINE + 1)];
                each(trim_eol(line));
                continue;
            }
            if !self.overflow {
                let room = MAX_LINE - self.partial.len();
                self.partial
                    .extend_from_slice(&piece[..piece.len().min(room)]);
                self.overflow = piece.len() > room;
            }
            if complete {
                each(trim_eol(&self.partial));
                self.partial.clear();
                self.overflow = false;
            }
        }
    }

    /// Bytes are missing: the line they cut is dropped, up to the next line end.
    pub fn gap(&mut self) {
        self.partial.clear();
        self.overflow = false;
        self.skip = true;
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.partial.capacity()
    }

    /// Whether the stream is at the start of a line.
    pub fn at_line_start(&self) -> bool {
        self.partial.is_empty() && !self.skip
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    &line[..line.len().min(MAX_LINE)]
}

/// Whether `line` starts with `prefix`, in any case.
pub fn starts_with_ci(line: &[u8], prefix: &str) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// What reads a protocol's client lines.
pub trait LineClient: std::fmt::Debug + Default + Send {
    fn line(&mut self, line: &[u8], found: &mut Found);
}

/// The parser of a line protocol: every client line of the session, one at a time; the
/// server's are not read. A TLS record where a client line should start (the upgrade a
/// `STARTTLS` or `AUTH TLS` asked for) ends it: what follows is encrypted.
#[derive(Debug, Default)]
pub struct ClientLines<C> {
    lines: Lines,
    client: C,
}

impl<C: LineClient> Inspect for ClientLines<C> {
    fn feed(&mut self, dir: Dir, data: &[u8], found: &mut Found) -> Wants {
        if dir == Dir::ToClient {
            return Wants::More;
        }
        if self.lines.at_line_start() && data.starts_with(&[0x16, 0x03]) {
            return Wants::Done;
        }
        let client = &mut self.client;
        self.lines.feed(data, |line| client.line(line, found));
        Wants::More
    }

    fn wants(&self, dir: Dir) -> bool {
        dir == Dir::ToServer
    }

    /// Lines find their way on: the one the gap cut is dropped, the next ones are read.
    fn gap(&mut self, dir: Dir, _len: u64) -> Wants {
        if dir == Dir::ToServer {
            self.lines.gap();
        }
        Wants::More
    }

    fn buffered(&self) -> usize {
        self.lines.heap_bytes()
    }
}

/// What reads a protocol's lines in both directions (the mail protocols whose server sends
/// the messages a client fetches).
pub trait LinePeer: std::fmt::Debug + Default + Send {
    fn line(&mut self, dir: Dir, line: &[u8], found: &mut Found);
}

/// The parser of a line protocol read both ways, one line at a time each way. A TLS record
/// where a line should start (after `STARTTLS` or `STLS`) ends it.
#[derive(Debug, Default)]
pub struct PeerLines<C> {
    lines: [Lines; 2],
    peer: C,
}

impl<C: LinePeer> Inspect for PeerLines<C> {
    fn feed(&mut self, dir: Dir, data: &[u8], found: &mut Found) -> Wants {
        let lines = &mut self.lines[dir.index()];
        if lines.at_line_start() && data.starts_with(&[0x16, 0x03]) {
            return Wants::Done;
        }
        let peer = &mut self.peer;
        lines.feed(data, |line| peer.line(dir, line, found));
        Wants::More
    }

    fn gap(&mut self, dir: Dir, _len: u64) -> Wants {
        self.lines[dir.index()].gap();
        Wants::More
    }

    fn buffered(&self) -> usize {
        self.lines.iter().map(Lines::heap_bytes).sum()
    }
}

/// The first line of a server's greeting (`220 ...`), upper-cased, if `data` starts with one.
pub fn greeting(data: &[u8]) -> Option<String> {
    if !data.starts_with(b"220") {
        return None;
    }
    let end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    Some(String::from_utf8_lossy(&data[..end]).to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlong_lines_are_bounded() {
        let mut lines = Lines::default();
        let mut got = Vec::new();
        let mut each = |l: &[u8]| got.push(l.len());
        lines.feed(&vec![b'a'; 3 * MAX_LINE], &mut each);
        lines.feed(b"\r\nok\r\n", &mut each);
        lines.feed(
            &[vec![b'b'; 2 * MAX_LINE], b"\nc".to_vec()].concat(),
            &mut each,
        );
        lines.feed(b"d\n", &mut each);
        assert_eq!(
            got,
            [MAX_LINE, 2, MAX_LINE, 2],
            "whole and split lines alike"
        );
        let mut got = Vec::new();
        let mut lines = Lines::default();
        let mut each = |l: &[u8]| got.push(l.to_vec());
        lines.feed(b"RCPT TO:<a@x>\r\nRCPT TO:<b", &mut each);
        lines.gap();
        lines.feed(b"x>\r\nRCPT TO:<c@x>\r\n", &mut each);
        assert_eq!(
            got,
            [b"RCPT TO:<a@x>".to_vec(), b"RCPT TO:<c@x>".to_vec()],
            "the line a gap cut is dropped"
        );
    }
}
