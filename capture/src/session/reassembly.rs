//! IPv4 and IPv6 reassembly before the flow table (RFC 791, RFC 8200 section 4.5), inside
//! tunnels too: fragments of one datagram (same addresses, identification, protocol and
//! tunnel segment) are put together in etherparse's `IpDefragBuf`, and a whole datagram goes
//! on as one IP packet. Bounded in memory and time: at most [`MAX_DATAGRAMS`] datagrams and
//! [`MAX_BYTES`] of fragments at once, each given [`TIMEOUT_NS`] after its first fragment;
//! past a bound the oldest is given up. A fragment that overlaps one already there gives up
//! its datagram (RFC 5722), as does one past 64 KiB or a second last fragment that disagrees.
//! Every fragment given up is counted. Only the sessions see reassembled datagrams: capture
//! files keep the packets as captured. An atomic fragment (offset 0, no more fragments,
//! RFC 6946) is a whole packet and never comes here.

use std::collections::HashMap;
use std::net::IpAddr;

use etherparse::IpNumber;
use etherparse::defrag::IpDefragBuf;

use super::packet::Fragment;
use super::tunnel::Tunnels;

/// Datagrams reassembled at once at most.
pub const MAX_DATAGRAMS: usize = 4096;
/// Bytes of fragments held at once at most.
pub const MAX_BYTES: usize = 8 << 20;
/// How long a datagram may take to arrive whole: 30 s, the Linux default (`ipfrag_time`).
pub const TIMEOUT_NS: u64 = 30_000_000_000;
/// Fragments of one datagram at most.
const MAX_FRAGMENTS: u32 = 256;

/// What reassembly did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReassemblyStats {
    /// Datagrams put together whole.
    pub reassembled: u64,
    /// Fragments of datagrams given up (timed out, overlapping, too big, or evicted).
    pub fragments_given_up: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
    segment: u32,
}

#[derive(Debug)]
struct Pending {
    buf: IpDefragBuf,
    first_ns: u64,
    fragments: u32,
    /// Bytes of fragment payload held.
    bytes: usize,
    /// The frames' bytes on the wire, for the session's counters.
    wire_bytes: u64,
    tunnels: Tunnels,
}

/// A datagram put together: its IP packet (a header of the same addresses and protocol,
/// unfragmented, then the whole payload), the tunnels its first fragment was found in, and
/// how many frames and wire bytes it came in.
#[derive(Debug)]
pub struct Whole {
    pub packet: Vec<u8>,
    pub tunnels: Tunnels,
    pub frames: u32,
    pub wire_bytes: u64,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Reassembly {
    pending: HashMap<Key, Pending, foldhash::fast::RandomState>,
    bytes: usize,
    pub stats: ReassemblyStats,
}

impl Reassembly {
    /// Adds fragment `f`, seen at `ts_ns` in a frame of `wire_len` bytes; the whole datagram
    /// once its last piece is there.
    pub fn add(&mut self, f: &Fragment<'_>, ts_ns: u64, wire_len: u32) -> Option<Whole> {
        let key = Key {
            src: f.src,
            dst: f.dst,
            id: f.id,
            proto: f.proto,
            segment: f.tunnels.segment(),
        };
        self.expire(ts_ns);
        if !self.pending.contains_key(&key) {
            while self.pending.len() >= MAX_DATAGRAMS || self.bytes + f.payload.len() > MAX_BYTES {
                if !self.give_up_oldest() {
                    break;
                }
            }
            self.pending.insert(
                key,
                Pending {
                    buf: IpDefragBuf::new(IpNumber(f.proto), Vec::new(), Vec::new()),
                    first_ns: ts_ns,
                    fragments: 0,
                    bytes: 0,
                    wire_bytes: 0,
                    tunnels: f.tunnels,
                },
            );
        }
        let pending = self.pending.get_mut(&key)?;
        pending.fragments += 1;
        pending.wire_bytes += u64::from(wire_len);
        let start = u32::from(f.offset);
        let end = start + f.payload.len() as u32;
        // A fragment seen again with the same bytes (a duplicate on the wire) is ignored; one
        // that overlaps with other bytes gives the datagram up (RFC 5722, errata 3089).
        let held = pending.buf.data();
        let within = |s: &etherparse::defrag::IpFragRange| {
            u32::from(s.start) <= start && end <= u32::from(s.end)
        };
        if pending.buf.sections().iter().any(within)
            && held.get(start as usize..end as usize) == Some(f.payload)
        {
            return None;
        }
        let overlaps = pending
            .buf
            .sections()
            .iter()
            .any(|s| start < u32::from(s.end) && u32::from(s.start) < end);
        let added = !overlaps
            && pending.fragments <= MAX_FRAGMENTS
            && etherparse::IpFragOffset::try_new(f.offset / 8)
                .ok()
                .filter(|_| f.offset.is_multiple_of(8))
                .is_some_and(|offset| pending.buf.add(offset, f.more, f.payload).is_ok());
        if !added {
            self.give_up(&key);
            return None;
        }
        let pending = self.pending.get_mut(&key)?;
        pending.bytes += f.payload.len();
        self.bytes += f.payload.len();
        if !pending.buf.is_complete() {
            return None;
        }
        let done = self.pending.remove(&key)?;
        self.bytes -= done.bytes;
        let (payload, _) = done.buf.take_bufs();
        let Some(packet) = ip_packet(f.src, f.dst, f.proto, &payload) else {
            self.stats.fragments_given_up += u64::from(done.fragments);
            return None;
        };
        self.stats.reassembled += 1;
        Some(Whole {
            packet,
            tunnels: done.tunnels,
            frames: done.fragments,
            wire_bytes: done.wire_bytes,
        })
    }

    /// Gives up datagrams older than the timeout at `now_ns` (all of them at `u64::MAX`).
    pub fn expire(&mut self, now_ns: u64) {
        let old: Vec<Key> = self
            .pending
            .iter()
            .filter(|(_, p)| now_ns == u64::MAX || now_ns.saturating_sub(p.first_ns) > TIMEOUT_NS)
            .map(|(k, _)| *k)
            .collect();
        for key in old {
            self.give_up(&key);
        }
    }

    /// Datagrams being put together now.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn give_up(&mut self, key: &Key) {
        if let Some(p) = self.pending.remove(key) {
            self.bytes -= p.bytes;
            self.stats.fragments_given_up += u64::from(p.fragments);
        }
    }

    fn give_up_oldest(&mut self) -> bool {
        let oldest = self
            .pending
            .iter()
            .min_by_key(|(_, p)| p.first_ns)
            .map(|(k, _)| *k);
        match oldest {
            Some(key) => {
                self.give_up(&key);
                true
            }
            None => false,
        }
    }
}

/// An unfragmented IP packet of `payload` between `src` and `dst`; `None` if it would be
/// larger than an IP packet can be.
fn ip_packet(src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8]) -> Option<Vec<u8>> {
    let mut p = Vec::with_capacity(40 + payload.len());
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = u16::try_from(20 + payload.len()).ok()?;
            p.extend_from_slice(&[0x45, 0]);
            p.extend_from_slice(&total.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 0, 64, proto, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let len = u16::try_from(payload.len()).ok()?;
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&len.to_be_bytes());
            p.extend_from_slice(&[proto, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        _ => return None,
    }
    p.extend_from_slice(payload);
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(id: u32, offset: u16, more: bool, payload: &[u8]) -> Fragment<'_> {
        Fragment {
            src: IpAddr::from([10, 0, 0, 1]),
            dst: IpAddr::from([10, 0, 0, 2]),
            proto: 17,
            id,
            offset,
            more,
            payload,
            tunnels: Tunnels::default(),
        }
    }

    #[test]
    fn fragments_in_any_order_make_the_datagram_once() {
        let data: Vec<u8> = (0..40u8).collect();
        let mut r = Reassembly::default();
        assert!(
            r.add(&fragment(7, 16, true, &data[16..32]), 0, 60)
                .is_none()
        );
        assert!(r.add(&fragment(7, 32, false, &data[32..]), 1, 60).is_none());
        let whole = r.add(&fragment(7, 0, true, &data[..16]), 2, 60).unwrap();
        assert_eq!(&whole.packet[20..], &data[..]);
        assert_eq!((whole.frames, whole.wire_bytes), (3, 180));
        assert!(r.is_empty() && r.bytes == 0);
        assert_eq!(r.stats.reassembled, 1);
    }

    #[test]
    fn overlaps_timeouts_and_floods_are_given_up_and_counted() {
        let data = [0u8; 64];
        let mut r = Reassembly::default();
        r.add(&fragment(1, 0, true, &data[..16]), 0, 60);
        assert!(r.add(&fragment(1, 8, true, &data[..16]), 0, 60).is_none());
        assert_eq!(
            r.stats.fragments_given_up, 2,
            "overlapping: the datagram is dropped"
        );
        r.add(&fragment(2, 0, true, &data[..16]), 0, 60);
        r.expire(TIMEOUT_NS + 1);
        assert_eq!(r.stats.fragments_given_up, 3, "timed out");
        for id in 0..(MAX_DATAGRAMS as u32 + 100) {
            r.add(
                &fragment(10 + id, 0, true, &data[..16]),
                1 + u64::from(id),
                60,
            );
        }
        assert!(r.len() <= MAX_DATAGRAMS && r.bytes <= MAX_BYTES);
        // Never a panic on nonsense: an offset not of 8 bytes, a fragment past 64 KiB.
        assert!(r.add(&fragment(99, 3, true, &data[..8]), 5, 60).is_none());
        assert!(
            r.add(&fragment(98, 65528, true, &data[..16]), 5, 60)
                .is_none()
        );
    }
}
