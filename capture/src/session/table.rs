//! The flow table: bidirectional sessions keyed by their 5-tuple, bounded in number and in
//! bytes. Idle sessions are evicted on a sweep; when the table is full, the oldest one percent
//! go. Over its memory budget, the sessions longest without a packet stop being inspected
//! (their buffers and parsers go, what they found stays) until it is back under 7/8 of it;
//! only if that is not enough do sessions leave. An evicted session is not lost: it is handed
//! out as finished, to be recorded.

// Sessions are large; boxed, they move as pointers when the table grows, sorts and hands
// them over.
#![allow(clippy::vec_box)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use super::flow::Session;
use pcap_config::{TunnelMode, TunnelSettings};

use super::packet::{self, Decode, Decoded};
use pcap_protocol::session::App;

use super::proto::{Bounds, Expected, Side};
use super::reassembly::{Reassembly, ReassemblyStats, Whole};
use super::tunnel::{self, Decap};

/// Sessions are boxed: the table moves pointers, not sessions, when it grows or sorts.
type Map = HashMap<Key, Box<Session>, foldhash::fast::RandomState>;

/// A session's identity, the same for both directions: both ends as a 128-bit address (IPv4
/// mapped into IPv6) and a port, the lower end first, and the protocol. Plain integers hash
/// and compare faster than `IpAddr`s, and the key is smaller in the table. Keys
/// are ordered so that sessions that leave the table together leave in one order, whatever
/// the map's hash seed: the same file gives the same output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// The lower end's address (high and low 64 bits) and the higher end's; in 64-bit halves,
    /// which align the key to 8 bytes (a `u128` would make it 64 bytes, not 48).
    low: [u64; 2],
    high: [u64; 2],
    /// Their ports.
    ports: [u16; 2],
    proto: u8,
    /// IPv6 (an IPv4-mapped IPv6 address on the wire is not the IPv4 one).
    v6: bool,
    /// The network segment of tunnelled traffic (its VNIs), 0 outside tunnels: overlapping
    /// address spaces of two segments are two sessions.
    segment: u32,
}

const _: () = assert!(std::mem::size_of::<Key>() == 48);

impl std::hash::Hash for Key {
    /// Three words: each end's address halves folded into one, then the ports, protocol,
    /// family and segment. Keys that fold alike only share a bucket's probe; equality still
    /// compares every field.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let [a, b] = self.low;
        let [c, d] = self.high;
        let rest = u64::from(self.ports[0])
            | u64::from(self.ports[1]) << 16
            | u64::from(self.proto) << 32
            | u64::from(self.v6) << 40;
        for word in [
            a.rotate_left(32) ^ b,
            c.rotate_left(32) ^ d,
            rest ^ u64::from(self.segment).rotate_left(44),
        ] {
            state.write_u64(word);
        }
    }
}

/// An address as the key holds it.
fn bytes(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().to_bits(),
        IpAddr::V6(a) => a.to_bits(),
    }
}

impl Key {
    /// A number that orders keys the same way in every run (a hash with a fixed seed).
    fn order(&self) -> u64 {
        use std::hash::BuildHasher;
        foldhash::fast::FixedState::with_seed(0x0bde_5e55).hash_one(self)
    }

    pub fn of(p: &Decoded<'_>) -> Self {
        let mut key = Key::new((p.src, p.sport), (p.dst, p.dport), p.proto);
        key.segment = p.tunnels.segment();
        key
    }

    #[inline]
    fn new(a: (IpAddr, u16), b: (IpAddr, u16), proto: u8) -> Self {
        let v6 = a.0.is_ipv6();
        let (a, b) = ((bytes(a.0), a.1), (bytes(b.0), b.1));
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        let halves = |x: u128| [(x >> 64) as u64, x as u64];
        Key {
            low: halves(low.0),
            high: halves(high.0),
            ports: [low.1, high.1],
            proto,
            v6,
            segment: 0,
        }
    }
}

/// The session key and source of a frame whose session is likely known and done with: an
/// untagged Ethernet IPv4 TCP or UDP frame that is not a fragment, read at fixed offsets, also
/// inside one VXLAN header (traffic mirroring's usual carrier) when `tunnels` is set. Only a
/// hint: a frame is counted on it alone when its session exists and its inspection is over
/// (every field known); anything else takes the full decode. Most frames of a capture belong
/// to sessions past their first packets, and this spares them the full parse.
fn quick_ipv4(
    linktype: u32,
    data: &[u8],
    decap: &Decap,
    tunnels: bool,
) -> Option<(Key, (IpAddr, u16))> {
    if linktype != packet::linktype::ETHERNET {
        return None;
    }
    quick_frame(data, decap, tunnels, 0)
}

fn quick_frame(
    data: &[u8],
    decap: &Decap,
    tunnels: bool,
    segment: u32,
) -> Option<(Key, (IpAddr, u16))> {
    const ETH: usize = packet::ETHERNET_HEADER;
    let (ip, ihl, _) = packet::plain_ipv4(data)?;
    let proto = ip[9];
    let ports = data.get(ETH + ihl..ETH + ihl + 4)?;
    let src = IpAddr::from([ip[12], ip[13], ip[14], ip[15]]);
    let dst = IpAddr::from([ip[16], ip[17], ip[18], ip[19]]);
    let a = (src, u16::from_be_bytes([ports[0], ports[1]]));
    let b = (dst, u16::from_be_bytes([ports[2], ports[3]]));
    // A datagram that may carry a tunnel: the frame inside one VXLAN header is read the same
    // way; anything else takes the full decode.
    if proto == packet::UDP && decap.may_carry(a.1, b.1) {
        if !tunnels || segment != 0 || !decap.vxlan_ports.contains(&b.1) {
            return None;
        }
        let at = ETH + ihl + 8;
        let vxlan = data.get(at..at + 8)?;
        if vxlan[0] & 0x08 == 0 {
            return None;
        }
        let vni = u32::from_be_bytes([0, vxlan[4], vxlan[5], vxlan[6]]);
        return quick_frame(
            data.get(at + 8..)?,
            decap,
            tunnels,
            tunnel::vni_segment(vni),
        );
    }
    let mut key = Key::new(a, b, proto);
    key.segment = segment;
    Some((key, a))
}

/// Counters of the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableStats {
    pub sessions: u64,
    pub evicted_idle: u64,
    pub evicted_full: u64,
    /// Packets that carried no IP session (ARP, other link protocols, fragments, runts).
    pub not_ip: u64,
    /// Packets of a link type the decoder does not read (counted, never misread).
    pub unknown_link: u64,
    /// IP fragments: datagrams put together, fragments given up.
    pub reassembly: ReassemblyStats,
    /// Sessions whose inspection stopped early because the table was over its memory budget.
    pub inspection_stopped: u64,
    /// Sessions that left the table early because it was over its memory budget.
    pub evicted_memory: u64,
}

/// Bytes a session's entry in the map costs besides the session: its key and pointer, with
/// the room a hash table keeps free (it grows by doubling, and is at most 7/8 full).
const ENTRY: usize = 2 * (std::mem::size_of::<Key>() + std::mem::size_of::<usize>() + 1);

/// The flow table of one capture.
#[derive(Debug)]
pub struct SessionTable {
    map: Map,
    max: usize,
    idle_ns: u64,
    next_sweep_ns: u64,
    finished: Vec<Box<Session>>,
    decap: Decap,
    /// `[sessions] tunnels = "both"`: a tunnelled packet also counts in its carrier's session.
    both: bool,
    /// What each session keeps of what it finds.
    bounds: Bounds,
    /// IP fragments waiting for the rest of their datagram.
    fragments: Reassembly,
    /// The memory budget of the sessions (`[sessions] max_bytes`), and what they hold.
    max_bytes: usize,
    used: usize,
    /// Connections sessions announced (FTP data, TFTP transfers), by the address and port
    /// they will reach and the address they come from.
    expected: HashMap<(IpAddr, u16, IpAddr), Expectation, foldhash::fast::RandomState>,
    /// Their keys in the order they were announced.
    expected_order: std::collections::VecDeque<(IpAddr, u16, IpAddr)>,
    pub stats: TableStats,
}

/// A connection a session announced, waiting for its session (or holding it, to give it the
/// file name the announcing session names later).
#[derive(Debug)]
struct Expectation {
    app: App,
    file: Option<String>,
    /// The session that came, once it has.
    session: Option<Key>,
    /// When it was announced or last updated.
    at_ns: u64,
}

/// Announced connections kept at most, and how long one waits for its session.
const MAX_EXPECTED: usize = 4096;
const EXPECTED_FOR_NS: u64 = 120_000_000_000;

impl SessionTable {
    /// A table of at most `max` sessions (at least 1), evicting sessions idle for `idle`.
    pub fn new(max: usize, idle: Duration) -> Self {
        SessionTable {
            map: Map::default(),
            max: max.max(1),
            idle_ns: idle.as_nanos().min(u128::from(u64::MAX)) as u64,
            next_sweep_ns: 0,
            finished: Vec::new(),
            decap: Decap::standard(),
            both: false,
            bounds: Bounds::DEFAULT,
            fragments: Reassembly::default(),
            max_bytes: usize::MAX,
            used: 0,
            expected: HashMap::default(),
            expected_order: std::collections::VecDeque::new(),
            stats: TableStats::default(),
        }
    }

    /// The table holding at most `max_bytes` in its sessions (see the module docs).
    pub fn with_memory(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Bytes the sessions in the table hold (their entries, state, values and buffers).
    pub fn memory(&self) -> usize {
        self.used
    }

    /// The table the config's `[sessions]` describe.
    pub fn configured(settings: &pcap_config::Sessions) -> Self {
        SessionTable::new(settings.max, settings.idle_timeout)
            .with_tunnels(&settings.tunnels)
            .with_bounds(settings.into())
            .with_memory(usize::try_from(settings.max_bytes).unwrap_or(usize::MAX))
    }

    /// The table keeping at most `bounds` of what each session finds.
    pub fn with_bounds(mut self, bounds: Bounds) -> Self {
        self.bounds = bounds;
        self
    }

    /// The table with the `[sessions]` tunnel settings (the default: inner sessions, 4 layers).
    pub fn with_tunnels(mut self, settings: &TunnelSettings) -> Self {
        self.decap = Decap::from(settings);
        self.both = settings.mode == TunnelMode::Both && self.decap.max_depth > 0;
        self
    }

    /// Accounts one captured frame of `linktype`. A plain IPv4 TCP/UDP frame is looked up once,
    /// by the key read at fixed offsets; the full decode runs only while its session is
    /// inspected, or for a new session.
    pub fn packet(&mut self, linktype: u32, ts_ns: u64, data: &[u8], wire_len: u32) {
        if ts_ns >= self.next_sweep_ns {
            self.sweep(ts_ns);
        }
        // In "both" mode a tunnelled frame also counts in its carrier's session: no shortcut.
        let quick = quick_ipv4(linktype, data, &self.decap, !self.both);
        if let Some((key, src)) = &quick
            && let Some(s) = self.map.get_mut(key)
        {
            // A plain frame is read at fixed offsets; a frame in a tunnel, or one the quick
            // read refuses, takes the general decode.
            let quick_decode = || {
                (key.segment == 0)
                    .then(|| packet::quick_decode(data, &self.decap))
                    .flatten()
            };
            if !s.reads(*src) {
                s.count(*src, ts_ns, wire_len);
            } else if let Some(p) =
                quick_decode().or_else(|| packet::decode_with(linktype, data, &self.decap))
            {
                let before = s.memory();
                s.packet(&p, ts_ns, wire_len, self.bounds);
                self.used = (self.used + s.memory()).saturating_sub(before);
                let announced = s.take_expected();
                if !announced.is_empty() {
                    let ends = (s.client, s.server);
                    self.announce(ends, announced, ts_ns);
                }
                self.within_budget();
            } else {
                self.stats.not_ip += 1;
            }
            return;
        }
        // A new session's plain frame: read at fixed offsets too.
        if let Some((key, _)) = quick
            && key.segment == 0
            && let Some(p) = packet::quick_decode(data, &self.decap)
        {
            self.account(key, &p, ts_ns, wire_len);
            return;
        }
        let p = match packet::decode_frame(linktype, data, &self.decap) {
            Some(Decode::Packet(p)) => p,
            Some(Decode::Fragment(f)) => {
                if let Some(whole) = self.fragments.add(&f, ts_ns, wire_len) {
                    self.reassembled(&whole, ts_ns);
                }
                self.stats.reassembly = self.fragments.stats;
                return;
            }
            None => {
                if packet::linktype::known(linktype) {
                    self.stats.not_ip += 1;
                } else {
                    self.stats.unknown_link += 1;
                }
                return;
            }
        };
        if self.both
            && !p.tunnels.is_empty()
            && let Some(carrier) = packet::decode_with(linktype, data, &Decap::off())
        {
            self.account(Key::of(&carrier), &carrier, ts_ns, wire_len);
        }
        let key = match quick {
            // Only a plain frame has a quick key, and its decode is the same packet.
            Some((key, _)) if p.tunnels.is_empty() => key,
            _ => Key::of(&p),
        };
        self.account(key, &p, ts_ns, wire_len);
    }

    /// A datagram put together from its fragments: one packet of its session, counted as the
    /// frames it came in.
    fn reassembled(&mut self, whole: &Whole, ts_ns: u64) {
        let Some(mut p) = packet::decode_with(packet::linktype::RAW, &whole.packet, &self.decap)
        else {
            return;
        };
        p.tunnels = whole.tunnels.then(&p.tunnels);
        let key = Key::of(&p);
        let wire = u32::try_from(whole.wire_bytes).unwrap_or(u32::MAX);
        self.account(key, &p, ts_ns, wire);
        if let Some(s) = self.map.get_mut(&key) {
            for _ in 1..whole.frames {
                s.count((p.src, p.sport), ts_ns, 0);
            }
        }
    }

    /// Counts `p` in the session of `key`, starting it if there is none.
    fn account(&mut self, key: Key, p: &Decoded<'_>, ts_ns: u64, wire_len: u32) {
        if let Some(s) = self.map.get_mut(&key) {
            let before = s.memory();
            s.packet(p, ts_ns, wire_len, self.bounds);
            self.used = (self.used + s.memory()).saturating_sub(before);
            let announced = s.take_expected();
            if !announced.is_empty() {
                let ends = (s.client, s.server);
                self.announce(ends, announced, ts_ns);
            }
            self.within_budget();
            return;
        }
        if self.map.len() >= self.max {
            self.evict_oldest();
        }
        let mut session = Box::new(Session::new(p, ts_ns));
        if !self.expected.is_empty()
            && let Some(e) = self.expected.get_mut(&(p.dst, p.dport, p.src))
            && ts_ns.saturating_sub(e.at_ns) <= EXPECTED_FOR_NS
        {
            session.announced(e.app, e.file.clone(), self.bounds);
            e.session = Some(key);
        }
        session.packet(p, ts_ns, wire_len, self.bounds);
        let announced = session.take_expected();
        if !announced.is_empty() {
            self.announce((session.client, session.server), announced, ts_ns);
        }
        self.stats.sessions += 1;
        self.used += session.memory() + ENTRY;
        self.map.insert(key, session);
        self.within_budget();
    }

    /// Keeps the connections a session with `ends` (client and server) announced; a file
    /// name for one that came already is given to its session.
    fn announce(
        &mut self,
        (client, server): ((IpAddr, u16), (IpAddr, u16)),
        list: Vec<Expected>,
        ts_ns: u64,
    ) {
        for e in list {
            // Port 0: the side's own port in the announcing session.
            let key = match e.side {
                Side::Server => (
                    server.0,
                    if e.port == 0 { server.1 } else { e.port },
                    client.0,
                ),
                Side::Client => (
                    client.0,
                    if e.port == 0 { client.1 } else { e.port },
                    server.0,
                ),
            };
            if let Some(have) = self.expected.get_mut(&key) {
                have.at_ns = ts_ns;
                if let Some(file) = e.file {
                    if let Some(s) = have.session.and_then(|k| self.map.get_mut(&k)) {
                        s.add_file(file.clone(), self.bounds);
                    }
                    have.file = Some(file);
                }
                continue;
            }
            // Full: the first announced goes (in constant time: announcements are kept in
            // the order they came).
            while self.expected.len() >= MAX_EXPECTED {
                let Some(oldest) = self.expected_order.pop_front() else {
                    break;
                };
                self.expected.remove(&oldest);
            }
            self.expected_order.push_back(key);
            self.expected.insert(
                key,
                Expectation {
                    app: e.app,
                    file: e.file,
                    session: None,
                    at_ns: ts_ns,
                },
            );
        }
    }

    /// A session leaves the table, to be recorded; its inspection's buffers go now.
    fn remove(&mut self, key: &Key) -> Option<Box<Session>> {
        let mut s = self.map.remove(key)?;
        self.used = self.used.saturating_sub(s.memory() + ENTRY);
        s.stop_inspecting();
        Some(s)
    }

    /// Over the memory budget: the sessions longest without a packet stop being inspected
    /// until the table holds at most 7/8 of it; if they are not enough, sessions leave, the
    /// longest without a packet first.
    fn within_budget(&mut self) {
        if self.used <= self.max_bytes {
            return;
        }
        let target = self.max_bytes / 8 * 7;
        let mut inspecting: Vec<(u64, Key)> = self
            .map
            .iter()
            .filter(|(_, s)| s.inspecting())
            .map(|(k, s)| (s.last_seen_ns, *k))
            .collect();
        inspecting.sort_unstable();
        for (_, key) in inspecting {
            if self.used <= target {
                return;
            }
            if let Some(s) = self.map.get_mut(&key) {
                let before = s.memory();
                s.stop_inspecting();
                self.used = (self.used + s.memory()).saturating_sub(before);
                self.stats.inspection_stopped += 1;
            }
        }
        if self.used <= target {
            return;
        }
        let mut ages: Vec<(u64, Key)> =
            self.map.iter().map(|(k, s)| (s.last_seen_ns, *k)).collect();
        ages.sort_unstable();
        for (_, key) in ages {
            if self.used <= target {
                break;
            }
            if let Some(s) = self.remove(&key) {
                self.stats.evicted_memory += 1;
                self.finished.push(s);
            }
        }
    }

    /// Gives up the datagrams still waiting for fragments (the capture or the file ended),
    /// counting their fragments.
    pub fn end_fragments(&mut self) {
        self.fragments.expire(u64::MAX);
        self.stats.reassembly = self.fragments.stats;
    }

    /// Sessions that left the table since the last call.
    pub fn take_finished(&mut self) -> Vec<Box<Session>> {
        std::mem::take(&mut self.finished)
    }

    /// Sessions in the table now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every session: those that left the table, then those still in it, oldest first.
    pub fn finish(mut self) -> Vec<Box<Session>> {
        // Ties in time are broken by a fixed hash of the key: the same order in every run, and
        // small entries to sort.
        let mut rest: Vec<(u64, u64, Box<Session>)> = self
            .map
            .into_iter()
            .map(|(k, s)| (s.first_seen_ns, k.order(), s))
            .collect();
        rest.sort_unstable_by_key(|(t, k, _)| (*t, *k));
        self.finished.extend(rest.into_iter().map(|(_, _, s)| s));
        self.finished
    }

    fn sweep(&mut self, now_ns: u64) {
        self.next_sweep_ns = now_ns.saturating_add(self.idle_ns / 2).max(now_ns + 1);
        self.fragments.expire(now_ns);
        self.stats.reassembly = self.fragments.stats;
        let cutoff = now_ns.saturating_sub(self.idle_ns);
        let mut idle: Vec<(u64, Key)> = self
            .map
            .iter()
            .filter(|(_, s)| s.last_seen_ns < cutoff)
            .map(|(k, s)| (s.first_seen_ns, *k))
            .collect();
        // They leave oldest first.
        idle.sort_unstable();
        for (_, key) in idle {
            if let Some(s) = self.remove(&key) {
                self.stats.evicted_idle += 1;
                self.finished.push(s);
            }
        }
    }

    fn evict_oldest(&mut self) {
        let n = (self.max / 100).max(1);
        let mut ages: Vec<(u64, Key)> =
            self.map.iter().map(|(k, s)| (s.last_seen_ns, *k)).collect();
        if ages.len() > n {
            ages.select_nth_unstable(n - 1);
            ages.truncate(n);
        }
        ages.sort_unstable();
        for (_, key) in ages {
            if let Some(s) = self.remove(&key) {
                self.stats.evicted_full += 1;
                self.finished.push(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
        let builder = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src.0, dst.0, 64)
            .udp(src.1, dst.1);
        let mut frame = Vec::new();
        builder.write(&mut frame, payload).unwrap();
        frame
    }

    #[test]
    fn frames_of_a_session_past_its_inspection_are_counted_as_the_full_decode_counts_them() {
        let mut table = SessionTable::new(100, Duration::from_secs(60));
        let client = ([10, 0, 0, 1], 40000);
        let server = ([10, 0, 0, 2], 9999);
        // Enough datagrams both ways for the inspection to end, then many more.
        for i in 0..50u64 {
            let out = udp(client, server, b"unrecognised payload");
            let back = udp(server, client, b"reply of some length");
            table.packet(packet::linktype::ETHERNET, i * 1000, &out, out.len() as u32);
            table.packet(
                packet::linktype::ETHERNET,
                i * 1000 + 1,
                &back,
                back.len() as u32,
            );
        }
        // A later fragment of the same addresses is no packet of the session (no ports).
        let mut fragment = udp(client, server, b"unrecognised payload");
        fragment[20] = 0x00;
        fragment[21] = 0x10; // offset 16 * 8 bytes
        table.packet(
            packet::linktype::ETHERNET,
            60_000,
            &fragment,
            fragment.len() as u32,
        );
        let sessions = table.finish();
        assert_eq!(sessions.len(), 1);
        let s = &sessions[0];
        assert!(!s.inspecting());
        assert_eq!(s.packets, [50, 50]);
        let (out, back) = (
            udp(client, server, b"unrecognised payload").len() as u64,
            udp(server, client, b"reply of some length").len() as u64,
        );
        assert_eq!(s.bytes, [50 * out, 50 * back]);
        assert_eq!(s.last_seen_ns, 49 * 1000 + 1);
    }

    fn in_vxlan(vni: u32, inner: &[u8]) -> Vec<u8> {
        let mut payload = vec![0x08, 0, 0, 0];
        payload.extend_from_slice(&(vni << 8).to_be_bytes());
        payload.extend_from_slice(inner);
        udp(([192, 0, 2, 1], 50000), ([192, 0, 2, 2], 4789), &payload)
    }

    #[test]
    fn vxlan_frames_take_the_quick_read_to_the_same_session_as_the_full_decode() {
        let client = ([10, 0, 0, 1], 40000);
        let server = ([10, 0, 0, 2], 9999);
        let frame = in_vxlan(77, &udp(client, server, b"unrecognised payload"));
        let (quick, _) =
            quick_ipv4(packet::linktype::ETHERNET, &frame, &Decap::standard(), true).unwrap();
        let full = packet::decode(packet::linktype::ETHERNET, &frame).unwrap();
        assert_eq!(quick, Key::of(&full));
        // Not in "both" mode, where the carrier counts too; not another VNI's session.
        assert!(
            quick_ipv4(
                packet::linktype::ETHERNET,
                &frame,
                &Decap::standard(),
                false
            )
            .is_none()
        );
        let other = in_vxlan(78, &udp(client, server, b"unrecognised payload"));
        let (other, _) =
            quick_ipv4(packet::linktype::ETHERNET, &other, &Decap::standard(), true).unwrap();
        assert_ne!(quick, other);

        // Counted on the quick read past the inspection, as the full decode counts.
        let mut table = SessionTable::new(100, Duration::from_secs(60));
        for i in 0..50u64 {
            let out = in_vxlan(77, &udp(client, server, b"unrecognised payload"));
            let back = in_vxlan(77, &udp(server, client, b"reply of some length"));
            table.packet(packet::linktype::ETHERNET, i * 1000, &out, out.len() as u32);
            table.packet(
                packet::linktype::ETHERNET,
                i * 1000 + 1,
                &back,
                back.len() as u32,
            );
        }
        let sessions = table.finish();
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].packets, [50, 50]);
        assert_eq!(
            sessions[0].tunnels().unwrap().segment(),
            tunnel::vni_segment(77)
        );
    }

    #[test]
    fn frames_of_unknown_link_types_are_counted_apart() {
        let mut table = SessionTable::new(10, Duration::from_secs(60));
        let frame = udp(([10, 0, 0, 1], 1), ([10, 0, 0, 2], 2), b"x");
        table.packet(147, 0, &frame, frame.len() as u32);
        table.packet(packet::linktype::ETHERNET, 1, &frame[..20], 20);
        assert_eq!(table.stats.unknown_link, 1);
        assert_eq!(table.stats.not_ip, 1);
        assert!(table.is_empty());
    }

    #[test]
    fn the_quick_read_takes_only_plain_ipv4_tcp_and_udp() {
        let frame = udp(([10, 0, 0, 1], 1), ([10, 0, 0, 2], 2), b"x");
        assert!(quick_ipv4(packet::linktype::ETHERNET, &frame, &Decap::standard(), true).is_some());
        assert!(quick_ipv4(packet::linktype::RAW, &frame, &Decap::standard(), true).is_none());
        for cut in 0..frame.len().min(14 + 20 + 4) {
            assert!(
                quick_ipv4(
                    packet::linktype::ETHERNET,
                    &frame[..cut],
                    &Decap::standard(),
                    true
                )
                .is_none(),
                "{cut}"
            );
        }
        let mut more_fragments = frame.clone();
        more_fragments[20] = 0x20;
        assert!(
            quick_ipv4(
                packet::linktype::ETHERNET,
                &more_fragments,
                &Decap::standard(),
                true
            )
            .is_none()
        );
        let mut icmp = frame.clone();
        icmp[23] = 1;
        assert!(quick_ipv4(packet::linktype::ETHERNET, &icmp, &Decap::standard(), true).is_none());
        let mut vlan = frame;
        vlan[12..14].copy_from_slice(&[0x81, 0x00]);
        assert!(quick_ipv4(packet::linktype::ETHERNET, &vlan, &Decap::standard(), true).is_none());
    }
}

#[cfg(test)]
mod inspection {
    use super::*;

    /// An Ethernet IPv4 TCP frame from `src` to `dst` with `flags` (SYN, ACK: the etherparse
    /// builder's), sequence `seq` and `payload`.
    fn tcp(
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        syn: bool,
        seq: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src.0, dst.0, 64)
            .tcp(src.1, dst.1, seq, 65535);
        let b = if syn { b.syn() } else { b.ack(1) };
        let mut frame = Vec::new();
        b.write(&mut frame, payload).unwrap();
        frame
    }

    /// A TLS 1.2 record holding a ClientHello for `sni`, padded with a padding extension to
    /// about `pad` bytes more.
    fn client_hello(sni: &str, pad: usize) -> Vec<u8> {
        let mut ext = Vec::new();
        let name = sni.as_bytes();
        ext.extend_from_slice(&[0, 0]);
        ext.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
        ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
        ext.push(0);
        ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
        ext.extend_from_slice(name);
        ext.extend_from_slice(&[0, 21]);
        ext.extend_from_slice(&(pad as u16).to_be_bytes());
        ext.extend(std::iter::repeat_n(0, pad));
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut record = vec![0x16, 3, 1];
        record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        record.extend_from_slice(&hs);
        record
    }

    #[test]
    fn a_client_hello_longer_than_the_detection_head_in_one_segment_gives_its_sni() {
        let client = ([10, 0, 0, 1], 40000);
        let server = ([10, 0, 0, 2], 8443);
        let hello = client_hello("big-hello.example", 900);
        assert!(hello.len() > 900);
        let mut table = SessionTable::new(10, Duration::from_secs(60));
        for (i, frame) in [
            tcp(client, server, true, 99, b""),
            tcp(client, server, false, 100, &hello),
        ]
        .iter()
        .enumerate()
        {
            table.packet(
                packet::linktype::ETHERNET,
                i as u64,
                frame,
                frame.len() as u32,
            );
        }
        let sessions = table.finish();
        assert_eq!(sessions[0].application(), pcap_protocol::session::App::Tls);
        assert_eq!(sessions[0].found().urls, ["tls://big-hello.example"]);
    }

    /// A session that announces connection after connection (a hostile FTP server's 227s)
    /// holds the table to its bound, the oldest announcements given up first.
    #[test]
    fn announced_connections_are_bounded() {
        let mut table = SessionTable::new(16, Duration::from_secs(60));
        let client = ("10.0.0.1".parse().unwrap(), 40000);
        let server = ("10.0.0.2".parse().unwrap(), 21);
        for port in 1..=10_000u16 {
            let e = Expected {
                app: App::FtpData,
                side: Side::Server,
                port,
                file: None,
            };
            table.announce((client, server), vec![e], u64::from(port));
        }
        assert_eq!(table.expected.len(), MAX_EXPECTED);
        assert!(table.expected.contains_key(&(server.0, 10_000, client.0)));
        assert!(!table.expected.contains_key(&(server.0, 1, client.0)));
    }
}
