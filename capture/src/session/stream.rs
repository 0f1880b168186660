//! Bounded in-order reassembly of one direction of a TCP session: enough of its start to read
//! request lines, headers, a ClientHello or an SMTP envelope. Segments are placed by sequence
//! number; a few out-of-order segments wait; retransmitted bytes are skipped.

/// Out-of-order segments kept waiting at most.
const MAX_PENDING: usize = 4;

/// One direction's bytes, in order.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    next: Option<u32>,
    pending: Vec<(u32, Vec<u8>)>,
    /// Bytes delivered in order so far (all of them, not only those kept).
    pub delivered: u64,
}

impl Stream {
    /// Notes a SYN: the data starts after it.
    pub fn syn(&mut self, seq: u32) {
        if self.next.is_none() {
            self.next = Some(seq.wrapping_add(1));
        }
    }

    /// Places a segment; calls `out` with each run of new in-order bytes.
    pub fn segment(&mut self, seq: u32, data: &[u8], mut out: impl FnMut(&[u8])) {
        if data.is_empty() {
            return;
        }
        let next = *self.next.get_or_insert(seq);
        match offset(next, seq) {
            // In order, possibly overlapping what was delivered.
            d if d <= 0 => {
                let skip = d.unsigned_abs() as usize;
                if skip < data.len() {
                    self.deliver(&data[skip..], &mut out);
                    self.drain(&mut out);
                }
            }
            // A gap: keep the segment for later if there is room.
            d if d < 1 << 20 && self.pending.len() < MAX_PENDING => {
                self.pending.push((seq, data.to_vec()))
            }
            _ => {}
        }
    }

    fn deliver(&mut self, data: &[u8], out: &mut impl FnMut(&[u8])) {
        out(data);
        self.delivered += data.len() as u64;
        self.next = self.next.map(|n| n.wrapping_add(data.len() as u32));
    }

    fn drain(&mut self, out: &mut impl FnMut(&[u8])) {
        while let Some(next) = self.next {
            let Some(i) = self.pending.iter().position(|(s, d)| {
                let o = offset(next, *s);
                o <= 0 && (o.unsigned_abs() as usize) < d.len()
            }) else {
                self.pending
                    .retain(|(s, d)| offset(next, s.wrapping_add(d.len() as u32)) > 0);
                return;
            };
            let (seq, data) = self.pending.swap_remove(i);
            let skip = offset(next, seq).unsigned_abs() as usize;
            self.deliver(&data[skip..], out);
        }
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
            s.segment(*seq, d, |b| out.extend_from_slice(b));
        }
        out
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
        s.segment(u32::MAX, b"ab", |b| out.extend_from_slice(b));
        s.segment(1, b"cd", |b| out.extend_from_slice(b));
        assert_eq!(out, b"abcd");
    }
}
