//! Line-oriented protocols (SMTP, FTP, and later POP3, IMAP) scanned as they stream: a byte
//! stream split into bounded lines, handed over one at a time, so nothing but the current line
//! is buffered; and the server greeting that tells SMTP from FTP.

use super::{Dir, Found, Inspect, Wants};

/// Bytes of a line-oriented direction scanned at most.
pub const LINE_BUDGET: u64 = 1 << 20;

/// Longest line kept; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 4096;

/// Splits a byte stream into lines, bounded.
#[derive(Debug, Default, Clone)]
pub struct Lines {
    partial: Vec<u8>,
    overflow: bool,
}

impl Lines {
    /// Feeds `data`; calls `each` with every complete line (without the line end).
    pub fn feed(&mut self, data: &[u8], mut each: impl FnMut(&[u8])) {
        for piece in data.split_inclusive(|&b| b == b'\n') {
            let complete = piece.last() == Some(&b'\n');
            if !self.overflow {
                let room = MAX_LINE - self.partial.len();
                self.partial
                    .extend_from_slice(&piece[..piece.len().min(room)]);
                self.overflow = piece.len() > room;
            }
            if complete {
                let line = trim_eol(&self.partial);
                each(line);
                self.partial.clear();
                self.overflow = false;
            }
        }
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Whether `line` starts with `prefix`, in any case.
pub fn starts_with_ci(line: &[u8], prefix: &str) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// What reads a protocol's client lines.
pub trait LineClient: std::fmt::Debug + Default + Send {
    fn line(&mut self, line: &[u8], found: &mut Found);
}

/// The parser of a line protocol: the client's lines, one at a time, up to [`LINE_BUDGET`];
/// the server's are not read.
#[derive(Debug, Default)]
pub struct ClientLines<C> {
    lines: Lines,
    client: C,
    scanned: u64,
}

impl<C: LineClient> Inspect for ClientLines<C> {
    fn feed(&mut self, dir: Dir, data: &[u8], found: &mut Found) -> Wants {
        if dir == Dir::ToClient {
            return Wants::More;
        }
        let client = &mut self.client;
        self.lines.feed(data, |line| client.line(line, found));
        self.scanned += data.len() as u64;
        if self.scanned >= LINE_BUDGET {
            Wants::Done
        } else {
            Wants::More
        }
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
        lines.feed(&vec![b'a'; 3 * MAX_LINE], |l| got.push(l.len()));
        lines.feed(b"\r\nok\r\n", |l| got.push(l.len()));
        assert_eq!(got, [MAX_LINE, 2]);
    }
}
