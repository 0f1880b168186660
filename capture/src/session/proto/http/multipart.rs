//! `multipart/form-data` bodies (curl -F, browser uploads): the file name of each part
//! (`Content-Disposition: form-data; name="f"; filename="a.txt"`), found by looking for the
//! boundary (memchr's memmem) in at most [`SCAN_LIMIT`] bytes of a body; the rest of the body
//! is skipped unscanned.

use super::super::values::filename_param;
use super::super::{Found, List};

/// Bytes of a multipart body scanned at most.
pub const SCAN_LIMIT: u64 = 4 << 20;
/// Bytes of one part's headers kept at most.
const PART_HEAD_LIMIT: usize = 4096;

/// See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    /// `\r\n--<boundary>`.
    delimiter: Vec<u8>,
    /// Bytes kept from the last piece: a delimiter's start, or a part's headers so far.
    carry: Vec<u8>,
    /// Reading a part's headers (after its delimiter line).
    in_head: bool,
    scanned: u64,
}

impl Multipart {
    /// The scanner of a body of `content_type`, if it is `multipart/...` with a boundary.
    pub fn of(content_type: &str) -> Option<Multipart> {
        let lower = content_type.trim_start().to_ascii_lowercase();
        if !lower.starts_with("multipart/") {
            return None;
        }
        let boundary = super::super::values::params(content_type)
            .into_iter()
            .find(|(k, _)| k == "boundary")
            .map(|(_, v)| v)
            .filter(|b| !b.is_empty() && b.len() <= 200)?;
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        Some(Multipart {
            delimiter,
            // The first delimiter starts the body, without the line end before it.
            carry: b"\r\n".to_vec(),
            in_head: false,
            scanned: 0,
        })
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.delimiter.capacity() + self.carry.capacity()
    }

    /// The next bytes of the body.
    pub fn feed(&mut self, data: &[u8], found: &mut Found) {
        if self.scanned >= SCAN_LIMIT {
            return;
        }
        self.scanned += data.len() as u64;
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(data);
        let mut at = 0;
        loop {
            if self.in_head {
                let rest = &buf[at..];
                let Some(end) = memchr::memmem::find(rest, b"\r\n\r\n") else {
                    if rest.len() <= PART_HEAD_LIMIT {
                        self.carry = rest.to_vec();
                    } else {
                        self.in_head = false;
                    }
                    return;
                };
                part_head(&rest[..end], found);
                self.in_head = false;
                at += end + 4;
                continue;
            }
            let rest = &buf[at..];
            let Some(i) = memchr::memmem::find(rest, &self.delimiter) else {
                // A delimiter may start at the end of this piece: keep that much.
                let keep = rest.len().min(self.delimiter.len() + 1);
                self.carry = rest[rest.len() - keep..].to_vec();
                return;
            };
            let after = i + self.delimiter.len();
            match rest.get(after..after + 2) {
                // The close delimiter `--`: no part follows.
                Some(b"--") => {
                    self.scanned = SCAN_LIMIT;
                    return;
                }
                Some(_) => {
                    // The rest of the delimiter line (transport padding), then the part head.
                    match memchr::memchr(b'\n', &rest[after..]) {
                        Some(nl) => {
                            self.in_head = true;
                            at += after + nl + 1;
                            // An empty part head is `\r\n` right away.
                            if buf.get(at..at + 2) == Some(b"\r\n") {
                                self.in_head = false;
                                at += 2;
                            }
                        }
                        None => {
                            self.carry = rest[i..].to_vec();
                            return;
                        }
                    }
                }
                None => {
                    self.carry = rest[i..].to_vec();
                    return;
                }
            }
        }
    }
}

/// The file name of one part's headers.
fn part_head(head: &[u8], found: &mut Found) {
    let text = String::from_utf8_lossy(head);
    for line in text.split("\r\n") {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-disposition")
            && let Some(file) = filename_param(value)
        {
            found.add(List::Filenames, file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_names_of_every_part_are_found_in_any_pieces() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nhello\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"report.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 --XyZ-not-a-boundary\r\n\
--XyZ\r\ncontent-disposition: form-data; name=\"f2\"; filename=\"photo.jpg\"\r\n\r\n\xff\xd8\r\n--XyZ--\r\n";
        for piece in [1, 3, 16, body.len()] {
            let mut m = Multipart::of("multipart/form-data; boundary=XyZ").unwrap();
            let mut found = Found::default();
            for part in body.chunks(piece) {
                m.feed(part, &mut found);
            }
            assert_eq!(
                found.filenames,
                ["report.pdf", "photo.jpg"],
                "pieces of {piece}"
            );
        }
        assert!(Multipart::of("text/plain").is_none());
        assert!(
            Multipart::of("multipart/form-data").is_none(),
            "no boundary"
        );
    }
}
