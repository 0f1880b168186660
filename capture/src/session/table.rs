//! The flow table: bidirectional sessions keyed by their 5-tuple, bounded in number. Idle
//! sessions are evicted on a sweep; when the table is full, the oldest one percent go. An
//! evicted session is not lost: it is handed out as finished, to be recorded.

// Sessions are large; boxed, they move as pointers when the table grows, sorts and hands
// them over.
#![allow(clippy::vec_box)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use super::flow::Session;
use super::packet::{self, Decoded};

/// Sessions are boxed: the table moves pointers, not sessions, when it grows or sorts.
type Map = HashMap<Key, Box<Session>, foldhash::fast::RandomState>;

/// A session's identity, the same for both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    low: (IpAddr, u16),
    high: (IpAddr, u16),
    proto: u8,
}

impl Key {
    pub fn of(p: &Decoded<'_>) -> Self {
        let (a, b) = ((p.src, p.sport), (p.dst, p.dport));
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        Key {
            low,
            high,
            proto: p.proto,
        }
    }
}

/// Counters of the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableStats {
    pub sessions: u64,
    pub evicted_idle: u64,
    pub evicted_full: u64,
    /// Packets that carried no IP session (ARP, other link protocols, fragments, runts).
    pub not_ip: u64,
}

/// The flow table of one capture.
#[derive(Debug)]
pub struct SessionTable {
    map: Map,
    max: usize,
    idle_ns: u64,
    next_sweep_ns: u64,
    finished: Vec<Box<Session>>,
    pub stats: TableStats,
}

impl SessionTable {
    /// A table of at most `max` sessions (at least 1), evicting sessions idle for `idle`.
    pub fn new(max: usize, idle: Duration) -> Self {
        SessionTable {
            map: Map::default(),
            max: max.max(1),
            idle_ns: idle.as_nanos().min(u128::from(u64::MAX)) as u64,
            next_sweep_ns: 0,
            finished: Vec::new(),
            stats: TableStats::default(),
        }
    }

    /// Accounts one captured frame of `linktype`.
    pub fn packet(&mut self, linktype: u32, ts_ns: u64, data: &[u8], wire_len: u32) {
        let Some(p) = packet::decode(linktype, data) else {
            self.stats.not_ip += 1;
            return;
        };
        if ts_ns >= self.next_sweep_ns {
            self.sweep(ts_ns);
        }
        let key = Key::of(&p);
        if let Some(s) = self.map.get_mut(&key) {
            s.packet(&p, ts_ns, wire_len);
            return;
        }
        if self.map.len() >= self.max {
            self.evict_oldest();
        }
        let mut session = Box::new(Session::new(&p, ts_ns));
        session.packet(&p, ts_ns, wire_len);
        self.stats.sessions += 1;
        self.map.insert(key, session);
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
        let mut rest: Vec<Box<Session>> = self.map.into_values().collect();
        rest.sort_by_key(|s| s.first_seen_ns);
        self.finished.extend(rest);
        self.finished
    }

    fn sweep(&mut self, now_ns: u64) {
        self.next_sweep_ns = now_ns.saturating_add(self.idle_ns / 2).max(now_ns + 1);
        let cutoff = now_ns.saturating_sub(self.idle_ns);
        let idle: Vec<Key> = self
            .map
            .iter()
            .filter(|(_, s)| s.last_seen_ns < cutoff)
            .map(|(k, _)| *k)
            .collect();
        for key in idle {
            if let Some(s) = self.map.remove(&key) {
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
            ages.select_nth_unstable_by_key(n - 1, |(t, _)| *t);
            ages.truncate(n);
        }
        for (_, key) in ages {
            if let Some(s) = self.map.remove(&key) {
                self.stats.evicted_full += 1;
                self.finished.push(s);
            }
        }
    }
}
