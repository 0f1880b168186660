//! Message bodies, skipped without being scanned: a `Content-Length` body by its length, a
//! chunked one by its chunk sizes (each size line read, the data jumped over), one without
//! either until the connection closes.

/// How a message's body is delimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Bytes left of a body of known length.
    Length(u64),
    Chunked(Chunked),
    /// The body runs to the end of the connection.
    ToClose,
}

/// Where a chunked body is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunked {
    /// Reading a chunk-size line (these bytes of it so far).
    Size(Vec<u8>),
    /// Bytes left of a chunk's data, and of the line end after it.
    Data(u64),
    DataEnd(u8),
    /// After the last chunk: trailer lines until an empty one (the current line's length).
    Trailer(usize),
}

/// Longest chunk-size line read (size, extensions); a longer one is not HTTP.
const MAX_SIZE_LINE: usize = 1024;

/// What skipping gave: bytes consumed, and whether the body is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    pub used: usize,
    pub ended: bool,
}

/// Why a chunked body cannot be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl Body {
    /// Skips what of `data` belongs to the body, handing `content` the body's own bytes (the
    /// chunks' data, without their framing).
    pub fn skip(
        &mut self,
        data: &[u8],
        content: &mut dyn FnMut(&[u8]),
    ) -> Result<Skipped, Malformed> {
        match self {
            Body::Length(left) => {
                let used = data.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= used as u64;
                content(&data[..used]);
                Ok(Skipped {
                    used,
                    ended: *left == 0,
                })
            }
            Body::ToClose => {
                content(data);
                Ok(Skipped {
                    used: data.len(),
                    ended: false,
                })
            }
            Body::Chunked(state) => state.skip(data, content),
        }
    }
}

impl Body {
    /// Heap bytes held (a chunk-size line being read).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Body::Chunked(Chunked::Size(line)) => line.capacity(),
            _ => 0,
        }
    }
}

impl Chunked {
    fn skip(&mut self, data: &[u8], content: &mut dyn FnMut(&[u8])) -> Result<Skipped, Malformed> {
        let mut i = 0;
        while i < data.len() {
            match self {
                Chunked::Size(line) => {
                    let Some(n) = data[i..].iter().position(|&b| b == b'\n') else {
                        line.extend_from_slice(&data[i..]);
                        if line.len() > MAX_SIZE_LINE {
                            return Err(Malformed);
                        }
                        return Ok(Skipped {
                            used: data.len(),
                            ended: false,
                        });
                    };
                    line.extend_from_slice(&data[i..i + n]);
                    i += n + 1;
                    let size = chunk_size(line)?;
                    *self = if size == 0 {
                        Chunked::Trailer(0)
                    } else {
                        Chunked::Data(size)
                    };
                }
                Chunked::Data(left) => {
                    let take = (data.len() - i).min(usize::try_from(*left).unwrap_or(usize::MAX));
                    *left -= take as u64;
                    content(&data[i..i + take]);
                    i += take;
                    if *left == 0 {
                        *self = Chunked::DataEnd(0);
                    }
                }
                Chunked::DataEnd(seen) => {
                    // `\r\n` (or a bare `\n`) after the data.
                    match data[i] {
                        b'\r' if *seen == 0 => *seen = 1,
                        b'\n' => *self = Chunked::Size(Vec::new()),
                        _ => return Err(Malformed),
                    }
                    i += 1;
                }
                Chunked::Trailer(len) => {
                    let b = data[i];
                    i += 1;
                    match b {
                        b'\n' if *len == 0 => {
                            return Ok(Skipped {
                                used: i,
                                ended: true,
                            });
                        }
                        b'\n' => *len = 0,
                        b'\r' => {}
                        _ => *len += 1,
                    }
                }
            }
        }
        Ok(Skipped {
            used: i,
            ended: false,
        })
    }
}

/// The size of a chunk-size line: hex digits before any extension.
fn chunk_size(line: &[u8]) -> Result<u64, Malformed> {
    let text = std::str::from_utf8(line).map_err(|_| Malformed)?;
    let hex = text.split(';').next().unwrap_or("").trim();
    if hex.is_empty() || hex.len() > 15 {
        return Err(Malformed);
    }
    u64::from_str_radix(hex, 16).map_err(|_| Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip_all(mut body: Body, data: &[u8], piece: usize) -> (usize, bool) {
        let mut used = 0;
        for chunk in data.chunks(piece) {
            let s = body.skip(chunk, &mut |_| {}).unwrap();
            used += s.used;
            if s.ended {
                return (used, true);
            }
        }
        (used, false)
    }

    #[test]
    fn chunked_bodies_end_where_their_last_chunk_and_trailer_end_in_any_pieces() {
        let body =
            b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\nGET /next";
        for piece in [1, 2, 3, 7, body.len()] {
            assert_eq!(
                skip_all(Body::Chunked(Chunked::Size(Vec::new())), body, piece),
                (body.len() - 9, true),
                "pieces of {piece}"
            );
        }
        let mut bad = Body::Chunked(Chunked::Size(Vec::new()));
        assert_eq!(bad.skip(b"zz\r\n", &mut |_| {}), Err(Malformed));
        let mut long = Body::Chunked(Chunked::Size(Vec::new()));
        assert_eq!(long.skip(&[b'1'; 2000], &mut |_| {}), Err(Malformed));
        // The content handed on is the chunks' data alone.
        let mut content = Vec::new();
        let mut b = Body::Chunked(Chunked::Size(Vec::new()));
        b.skip(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", &mut |d| {
            content.extend_from_slice(d)
        })
        .unwrap();
        assert_eq!(content, b"abcde");
    }

    #[test]
    fn a_body_of_known_length_is_skipped_by_its_length() {
        let mut b = Body::Length(5);
        assert_eq!(
            b.skip(b"abc", &mut |_| {}),
            Ok(Skipped {
                used: 3,
                ended: false
            })
        );
        assert_eq!(
            b.skip(b"deGET", &mut |_| {}),
            Ok(Skipped {
                used: 2,
                ended: true
            })
        );
    }
}
