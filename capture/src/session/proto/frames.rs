//! Length-framed messages (SMB over NetBIOS or direct TCP, Kerberos over TCP, the database
//! protocols) split from a byte stream as it comes: each message's first bytes, up to a limit,
//! are handed over once they are in; the rest of a long message (a file's data) is skipped
//! without being buffered. A gap inside what is skipped costs nothing; a gap anywhere else
//! loses the framing.

use super::{Dir, Found, Inspect, Wants};

/// How a protocol frames its messages.
pub trait Framing {
    /// Bytes of a message's header, enough to know its length.
    const HEADER: usize;
    /// The whole length of the message whose header is `header` (header included); `None`
    /// if it is not one of this protocol's headers.
    fn length(header: &[u8]) -> Option<u64>;
}

/// The splitter of one direction.
#[derive(Debug, Default, Clone)]
pub struct Frames {
    /// The current message's first bytes, as far as they have come.
    buf: Vec<u8>,
    /// The current message's length, once its header is in.
    length: Option<u64>,
    /// Bytes of the current message still to skip after its first bytes were handed over.
    skip: u64,
    /// The framing was lost (a header that is not one, or bytes missing where no skip
    /// covers them).
    lost: bool,
}

impl Frames {
    /// Feeds `data`; calls `each` with the first bytes (at most `limit`) of every message as it
    /// is known, and its whole length. Returns `false` once the framing is lost.
    pub fn feed<F: Framing>(
        &mut self,
        mut data: &[u8],
        limit: usize,
        mut each: impl FnMut(&[u8], u64),
    ) -> bool {
        while !data.is_empty() && !self.lost {
            if self.skip > 0 {
                let n = usize::try_from(self.skip).map_or(data.len(), |s| s.min(data.len()));
                data = &data[n..];
                self.skip -= n as u64;
                continue;
            }
            let Some(length) = self.length else {
                let need = F::HEADER - self.buf.len();
                let n = need.min(data.len());
                self.buf.extend_from_slice(&data[..n]);
                data = &data[n..];
                if self.buf.len() == F::HEADER {
                    match F::length(&self.buf) {
                        Some(len) if len >= F::HEADER as u64 => self.length = Some(len),
                        _ => self.lost = true,
                    }
                }
                continue;
            };
            let keep = usize::try_from(length).map_or(limit, |l| l.min(limit));
            if self.buf.len() < keep {
                let n = (keep - self.buf.len()).min(data.len());
                // The whole message is in `data`: handed over without a copy.
                if self.buf.len() == F::HEADER && n == keep - F::HEADER {
                    let mut whole = std::mem::take(&mut self.buf);
                    whole.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    self.finish(&whole, length, &mut each);
                    whole.clear();
                    self.buf = whole;
                    continue;
                }
                self.buf.extend_from_slice(&data[..n]);
                data = &data[n..];
            }
            if self.buf.len() >= keep {
                let message = std::mem::take(&mut self.buf);
                self.finish(&message, length, &mut each);
                self.buf = message;
                self.buf.clear();
            }
        }
        if self.buf.capacity() > 2 * limit.max(F::HEADER) {
            self.buf.shrink_to(F::HEADER);
        }
        !self.lost
    }

    fn finish(&mut self, message: &[u8], length: u64, each: &mut impl FnMut(&[u8], u64)) {
        each(message, length);
        self.skip = length - message.len() as u64;
        self.length = None;
    }

    /// `len` bytes are missing. Returns `false` if that loses the framing (they were not all
    /// in what was to be skipped).
    pub fn gap(&mut self, len: u64) -> bool {
        if self.skip >= len && !self.lost {
            self.skip -= len;
            return true;
        }
        self.lost = true;
        false
    }

    /// Whether the framing was lost.
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }
}

/// A protocol whose client opens with a few framed messages that say who logs in (the
/// database logins, RDP's connection request): each message's first bytes are read until the
/// reader says it is done; the server's side is not read.
pub trait ClientMessages: std::fmt::Debug + Default + Send {
    type Framing: Framing;
    /// Bytes of a message read at most.
    const LIMIT: usize;
    /// The first bytes (at most [`Self::LIMIT`]) of the client's next message, of `len` bytes
    /// in all.
    fn message(&mut self, msg: &[u8], len: u64, found: &mut Found) -> Wants;
}

/// The parser of a [`ClientMessages`] protocol.
#[derive(Debug, Default)]
pub struct ClientFrames<C> {
    frames: Frames,
    client: C,
    done: bool,
}

impl<C: ClientMessages> Inspect for ClientFrames<C> {
    fn feed(&mut self, dir: Dir, data: &[u8], found: &mut Found) -> Wants {
        if self.done {
            return Wants::Done;
        }
        if dir == Dir::ToClient {
            return Wants::More;
        }
        let (client, done) = (&mut self.client, &mut self.done);
        let framed = self.frames.feed::<C::Framing>(data, C::LIMIT, |msg, len| {
            if !*done {
                *done = client.message(msg, len, found) == Wants::Done;
            }
        });
        if framed && !self.done {
            Wants::More
        } else {
            Wants::Done
        }
    }

    fn wants(&self, dir: Dir) -> bool {
        dir == Dir::ToServer
    }

    fn gap(&mut self, dir: Dir, len: u64) -> Wants {
        if dir == Dir::ToClient || self.frames.gap(len) {
            Wants::More
        } else {
            Wants::Done
        }
    }

    fn buffered(&self) -> usize {
        self.frames.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2-byte big-endian length of what follows.
    struct Short;
    impl Framing for Short {
        const HEADER: usize = 2;
        fn length(h: &[u8]) -> Option<u64> {
            Some(u64::from(u16::from_be_bytes([h[0], h[1]])) + 2)
        }
    }

    fn split(stream: &[u8], chunk: usize, limit: usize) -> Vec<(Vec<u8>, u64)> {
        let mut frames = Frames::default();
        let mut out = Vec::new();
        for piece in stream.chunks(chunk) {
            assert!(frames.feed::<Short>(piece, limit, |m, len| out.push((m.to_vec(), len))));
        }
        out
    }

    #[test]
    fn messages_come_whole_or_cut_to_the_limit_however_the_stream_is_cut() {
        let mut stream = vec![0, 3, b'a', b'b', b'c', 0, 0];
        stream.extend_from_slice(&[0, 10]);
        stream.extend_from_slice(b"0123456789");
        stream.extend_from_slice(&[0, 1, b'z']);
        for chunk in 1..stream.len() {
            let got = split(&stream, chunk, 6);
            assert_eq!(
                got,
                [
                    (b"\0\x03abc".to_vec(), 5),
                    (b"\0\0".to_vec(), 2),
                    (b"\0\x0a0123".to_vec(), 12),
                    (b"\0\x01z".to_vec(), 3),
                ],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn a_gap_in_skipped_data_keeps_the_framing_and_any_other_loses_it() {
        let mut frames = Frames::default();
        let mut seen = 0;
        assert!(frames.feed::<Short>(&[0, 100, 1, 2, 3], 4, |_, _| seen += 1));
        assert_eq!(seen, 1);
        assert!(frames.gap(90), "inside the 98 bytes to skip");
        assert!(frames.feed::<Short>(&[0; 7], 4, |_, _| seen += 1));
        assert!(frames.feed::<Short>(&[0, 1, b'q'], 4, |m, _| {
            assert_eq!(m, [0, 1, b'q']);
            seen += 1
        }));
        assert_eq!(seen, 2);
        assert!(!frames.gap(1), "a gap in a header");
        assert!(!frames.feed::<Short>(&[0, 1, 1], 4, |_, _| seen += 1));
        assert_eq!(seen, 2);
    }
}
