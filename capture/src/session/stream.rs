//! Bounded in-order reassembly of one direction of a TCP session. Segments are placed by
//! sequence number; a few out-of-order segments wait (at most [`MAX_PENDING`] of them and
//! [`MAX_PENDING_BYTES`]); retransmitted bytes are skipped. When a hole is not filled while
//! the waiting room is full (the bytes were lost, or never captured), it is given up: the
//! stream says how many bytes are missing and goes on after them.

/// Out-of-order segments kept waiting at most.
pub const MAX_PENDING: usize = 4;
/// Bytes of out-of-order segments kept waiting at most.
pub const MAX_PENDING_BYTES: usize = 32 * 1024;
/// How far ahead of the next expected byte a segment may start and still be of this stream.
const WINDOW: i64 = 1 << 30;

/// What a stream hands on, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// The next bytes.
    Data(&'a [u8]),
    /// This many bytes are missing; what comes next follows them.
    Gap(u64),
}

/// One direction's bytes, in order.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    next: Option<u32>,
    pending: Vec<(u32, Vec<u8>)>,
    pending_bytes: usize,
    /// Bytes delivered in order so far (all of them, not only those kept).
    pub delivered: u64,
}

impl Stream {
    /// A stream whose SYN had sequence number `isn`, if one was seen.
    pub fn starting(isn: Option<u32>) -> Self {
        let mut s = Stream::default();
        if let Some(isn) = isn {
            s.syn(isn);
        }
        s
    }

    /// Notes a SYN: the data starts after it.
    pub fn syn(&mut self, seq: u32) {
        if self.next.is_none() {
            self.next = Some(seq.wrapping_add(1));
        }
    }

    /// Places a segment: the part of it that comes next in order (the stream moves past it),
    /// or the gap given up when it had to wait with the waiting room full. Either way, call
    /// [`Stream::next_ready`] until `None` for the waiting segments that follow.
    pub fn segment<'d>(&mut self, seq: u32, data: &'d [u8]) -> Option<Chunk<'d>> {
        if data.is_empty() {
            return None;
        }
        let next = *self.next.get_or_insert(seq);
        match offset(next, seq) {
            // In order, possibly overlapping what was delivered.
            d if d <= 0 => {
                let skip = d.unsigned_abs() as usize;
                let new = data.get(skip..).filter(|n| !n.is_empty())?;
                self.advance(new.len());
                Some(Chunk::Data(new))
            }
            d if d < WINDOW => {
                self.pending.push((seq, data.to_vec()));
                self.pending_bytes += data.len();
                if self.pending.len() <= MAX_PENDING && self.pending_bytes <= MAX_PENDING_BYTES {
                    return None;
                }
                // No room to wait: the hole before the earliest waiting segment is given up.
                let missing = self.pending.iter().map(|(s, _)| offset(next, *s)).min()?;
                self.next = Some(next.wrapping_add(missing as u32));
                Some(Chunk::Gap(missing.unsigned_abs()))
            }
            _ => None,
        }
    }

    /// The next waiting segment now in order (its new bytes), if any; the stream moves past
    /// it. Segments no longer needed are dropped on the way.
    pub fn next_ready(&mut self) -> Option<Vec<u8>> {
        let next = self.next?;
        let Some(i) = self.pending.iter().position(|(s, d)| {
            let o = offset(next, *s);
            o <= 0 && (o.unsigned_abs() as usize) < d.len()
        }) else {
            self.pending
                .retain(|(s, d)| offset(next, s.wrapping_add(d.len() as u32)) > 0);
            self.pending_bytes = self.pending.iter().map(|(_, d)| d.len()).sum();
            if self.pending.is_empty() {
                self.pending = Vec::new();
            }
            return None;
        };
        let (seq, mut data) = self.pending.swap_remove(i);
        self.pending_bytes -= data.len();
        let skip = offset(next, seq).unsigned_abs() as usize;
        data.drain(..skip);
        self.advance(data.len());
        Some(data)
    }

    /// Heap bytes held by waiting segments.
    pub fn buffered(&self) -> usize {
        self.pending.capacity() * std::mem::size_of::<(u32, Vec<u8>)>() + self.pending_bytes
    }

    fn advance(&mut self, len: usize) {
        self.delivered += len as u64;
        self.next = self.next.map(|n| n.wrapping_add(len as u32));
    }
}

/// Signed distance from `next` to `seq` in sequence space.
fn offset(next: u32, seq: u32) -> i64 {
    i64::from(seq.wrapping_sub(next) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(segments: &[(u32, &[u8])]) -> Vec<u8> {
        let mut s = Stream::default();
        s.syn(99);
        let mut out = Vec::new();
        for (seq, d) in segments {
            feed(&mut s, *seq, d, &mut out);
        }
        out
    }

    /// What a reader sees of a segment: its bytes or a gap (as `?`), then what waited.
    fn feed(s: &mut Stream, seq: u32, data: &[u8], out: &mut Vec<u8>) {
        match s.segment(seq, data) {
            Some(Chunk::Data(b)) => out.extend_from_slice(b),
            Some(Chunk::Gap(n)) => out.extend(std::iter::repeat_n(b'?', n as usize)),
            None => {}
        }
        while let Some(b) = s.next_ready() {
            out.extend_from_slice(&b);
        }
    }

    #[test]
    fn segments_come_out_in_order_without_duplicates() {
        assert_eq!(collect(&[(100, b"abc"), (103, b"def")]), b"abcdef");
        assert_eq!(
            collect(&[(103, b"def"), (100, b"abc")]),
            b"abcdef",
            "reordered"
        );
        assert_eq!(
            collect(&[(100, b"abc"), (100, b"abc"), (102, b"cdef")]),
            b"abcdef",
            "retransmitted"
        );
        assert_eq!(
            collect(&[(u32::MAX - 1, b"xy")]).len(),
            0,
            "before the start"
        );
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = Stream::default();
        s.syn(u32::MAX - 1);
        let mut out = Vec::new();
        feed(&mut s, u32::MAX, b"ab", &mut out);
        feed(&mut s, 1, b"cd", &mut out);
        assert_eq!(out, b"abcd");
    }

    #[test]
    fn a_hole_not_filled_while_the_waiting_room_is_full_is_given_up() {
        // Bytes 100..103 never come; four later segments wait, the fifth gives the hole up.
        let got = collect(&[
            (103, b"d"),
            (104, b"e"),
            (105, b"f"),
            (106, b"g"),
            (108, b"i"),
        ]);
        assert_eq!(got, b"???defg", "the gap, then what waited, in order");
        // Waiting bytes are bounded too: two segments of 20 KiB are one too many.
        let big = vec![b'x'; 20 * 1024];
        let got = collect(&[(110, &big), (110 + big.len() as u32, &big)]);
        assert_eq!(got.len(), 10 + 2 * big.len());
        assert!(got.starts_with(b"??????????x"));
        let mut s = Stream::default();
        s.syn(99);
        for i in 0..4u32 {
            assert_eq!(s.segment(200 + i * 100, &[0; 50]), None);
        }
        assert!(
            s.buffered() >= 200 && s.buffered() < 1024,
            "{}",
            s.buffered()
        );
    }
}
