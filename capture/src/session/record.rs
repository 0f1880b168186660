//! A session as it leaves the host: the [`SessionRecord`] of `pcap-protocol`, each of the twelve
//! fields present only if its sharing switch is on (a field switched off is absent: no key at
//! all), plus the session's protocol, times and counters. The record borrows the session's
//! values; nothing is copied to write it.

// Sessions are large; boxed, they move as pointers when the table grows, sorts and hands
// them over.
#![allow(clippy::vec_box)]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine;
use jiff::Timestamp;
use pcap_config::Sharing;
use pcap_protocol::session::{
    Directions, Field, LayerRecord, OuterRecord, SessionRecord, Shared, Transport, TunnelRecord,
};
use sha1::{Digest, Sha1};

use super::flow::{Session, TO_CLIENT, TO_SERVER};
use super::packet::{ICMP, ICMPV6, SCTP, TCP, UDP};
use super::tunnel::{Kind, Tunnels};
use super::users::UserMap;

/// What a record needs besides the session.
#[derive(Debug, Clone, Copy)]
pub struct RecordContext<'a> {
    pub sharing: &'a Sharing,
    /// The virtual system of the capture's interface, from the config's map.
    pub virtual_system: Option<&'a str>,
    /// The config's whole map, whose `vni:N` and `gre:N` keys name the virtual system of
    /// sessions inside a VXLAN or GENEVE segment or a GRE tunnel with that key.
    pub virtual_systems: Option<&'a std::collections::BTreeMap<String, String>>,
    pub users: Option<&'a UserMap>,
    /// `[sessions] community_id_seed`.
    pub community_id_seed: u16,
}

/// The record of `s`, with the sharing switches of `ctx` applied: each shared field is
/// filled, the others stay absent.
pub fn record<'a>(s: &'a Session, ctx: &RecordContext<'a>) -> SessionRecord<'a> {
    let protocol = Transport::of(s.proto);
    let mut r = SessionRecord::new(
        protocol,
        (time(s.first_seen_ns), time(s.last_seen_ns)),
        Directions {
            to_server: s.packets[TO_SERVER],
            to_client: s.packets[TO_CLIENT],
        },
        Directions {
            to_server: s.bytes[TO_SERVER],
            to_client: s.bytes[TO_CLIENT],
        },
    );
    let port = |p: u16| protocol.has_ports().then_some(p);
    let found = s.found();
    let list = |v: &'a [String]| Shared::On(Cow::Borrowed(v));
    let text = |v: &'a Option<String>| Shared::On(v.as_deref().map(Cow::Borrowed));
    for field in ctx.sharing.iter() {
        match field {
            Field::SourceIp => r.source_ip = Shared::On(s.client.0),
            Field::SourcePort => r.source_port = Shared::On(port(s.client.1)),
            Field::DestinationIp => r.destination_ip = Shared::On(s.server.0),
            Field::DestinationPort => r.destination_port = Shared::On(port(s.server.1)),
            Field::VirtualSystem => {
                r.virtual_system = Shared::On(virtual_system(s, ctx).map(Cow::Borrowed));
            }
            Field::Application => {
                r.application = Shared::On(s.application());
                // ALPN tells the application inside TLS; it goes with the application switch.
                r.alpn = Cow::Borrowed(&found.alpn);
            }
            Field::User => {
                r.user = Shared::On(users(s, ctx));
                r.dropped.user = found.dropped.users;
            }
            Field::Url => {
                r.urls = list(&found.urls);
                r.dropped.urls = found.dropped.urls;
            }
            Field::Filename => {
                r.filename = list(&found.filenames);
                r.dropped.filename = found.dropped.filenames;
            }
            Field::EmailSender => r.email_sender = text(&found.email_sender),
            Field::EmailRecipient => {
                r.email_recipient = list(&found.email_recipients);
                r.dropped.email_recipient = found.dropped.email_recipients;
            }
            Field::EmailSubject => r.email_subject = text(&found.email_subject),
        }
    }
    r.tunnel = s.tunnels().map(|t| tunnel(t, ctx.sharing));
    if ctx.sharing.contains_all(ADDRESSES) {
        r.community_id = community_id(s, ctx.community_id_seed);
    }
    r
}

/// The fields a Community ID is a hash of.
const ADDRESSES: [Field; 4] = [
    Field::SourceIp,
    Field::SourcePort,
    Field::DestinationIp,
    Field::DestinationPort,
];

/// The session's Community ID v1: TCP and UDP with their ports, ICMP and ICMPv6 with the type
/// and code of the session's first message (the way the standard pairs a request with its
/// reply), any other protocol with its addresses alone.
pub fn community_id(s: &Session, seed: u16) -> Option<String> {
    let (sport, dport) = match s.proto {
        TCP | UDP => (Some(s.client.1), Some(s.server.1)),
        ICMP | ICMPV6 => {
            let (kind, code) = s.icmp?;
            (Some(kind.into()), Some(code.into()))
        }
        // Others with ports (SCTP) are not decoded to them: no hash rather than a wrong one.
        SCTP => return None,
        _ => (None, None),
    };
    if let (TCP | UDP, Some(sport), Some(dport)) = (s.proto, sport, dport) {
        return Some(ported_community_id(
            seed,
            (s.client.0, sport),
            (s.server.0, dport),
            s.proto,
        ));
    }
    community_id::calculate_community_id(seed, s.client.0, s.server.0, sport, dport, s.proto, false)
        .ok()
}

/// Community ID v1 of a TCP or UDP session, the common case, hashed on the stack (the crate's
/// general path costs several times the hash in allocations): the seed, both ends in order
/// (the lower address, or the lower port between equal addresses, first), the protocol and a
/// zero byte, both ports, all in network order; SHA-1, base64, `1:` before it. The other
/// protocols, ICMP with its type and code pairing, take `community_id`'s path. Both are
/// checked against Corelight's reference implementation in the session tests.
fn ported_community_id(seed: u16, a: (IpAddr, u16), b: (IpAddr, u16), proto: u8) -> String {
    // An address as its network-order bytes: byte order is the standard's address order.
    let bytes = |ip: IpAddr| -> ([u8; 16], usize) {
        match ip {
            IpAddr::V4(v4) => {
                let mut b = [0; 16];
                b[..4].copy_from_slice(&v4.octets());
                (b, 4)
            }
            IpAddr::V6(v6) => (v6.octets(), 16),
        }
    };
    let ((a_buf, a_len), (b_buf, b_len)) = (bytes(a.0), bytes(b.0));
    let (a_addr, b_addr) = (&a_buf[..a_len], &b_buf[..b_len]);
    let ((first, first_port), (second, second_port)) = if (a_addr, a.1) <= (b_addr, b.1) {
        ((a_addr, a.1), (b_addr, b.1))
    } else {
        ((b_addr, b.1), (a_addr, a.1))
    };
    let mut hash = Sha1::new();
    hash.update(seed.to_be_bytes());
    hash.update(first);
    hash.update(second);
    hash.update([proto, 0]);
    hash.update(first_port.to_be_bytes());
    hash.update(second_port.to_be_bytes());
    let mut id = String::with_capacity(30);
    id.push_str("1:");
    base64::engine::general_purpose::STANDARD.encode_string(hash.finalize(), &mut id);
    id
}

fn time(ns: u64) -> Option<Timestamp> {
    Timestamp::from_nanosecond(i128::from(ns)).ok()
}

/// The virtual system of `s`: its tunnel's (`vni:N`, `gre:N` in the map), else the interface's.
fn virtual_system<'a>(s: &Session, ctx: &RecordContext<'a>) -> Option<&'a str> {
    let by_tunnel = s.tunnels().zip(ctx.virtual_systems).and_then(|(t, map)| {
        t.layers().find_map(|l| {
            let key = match (l.kind, l.id) {
                (Kind::Vxlan | Kind::Geneve, Some(vni)) => format!("vni:{vni}"),
                (Kind::Gre, Some(key)) => format!("gre:{key}"),
                _ => return None,
            };
            map.get(&key).map(String::as_str)
        })
    });
    by_tunnel.or(ctx.virtual_system)
}

/// The session's users: the operator's map's for its client first, then those its protocols
/// carried.
fn users<'a>(s: &'a Session, ctx: &RecordContext<'_>) -> Cow<'a, [String]> {
    let found = &s.found().users;
    match ctx.users.and_then(|u| u.get(&s.client.0)) {
        None => Cow::Borrowed(found),
        Some(mapped) => {
            let mut all = vec![mapped.to_owned()];
            all.extend(found.iter().filter(|u| *u != mapped).cloned());
            Cow::Owned(all)
        }
    }
}

/// Where a tunnelled session was found: its layers, outermost first, and the carrier's
/// addresses (under the `source_ip` and `destination_ip` switches) and ports.
fn tunnel(t: &Tunnels, on: &Sharing) -> TunnelRecord<'static> {
    let layers = t
        .layers()
        .map(|l| LayerRecord {
            kind: Cow::Borrowed(l.kind.as_str()),
            id: l.id,
            version: (l.version != 0).then_some(l.version),
        })
        .collect();
    let outer = t.outer.as_ref().map(|o| {
        let protocol = Transport::of(o.proto);
        OuterRecord {
            source_ip: on.contains(Field::SourceIp).then_some(o.src),
            destination_ip: on.contains(Field::DestinationIp).then_some(o.dst),
            protocol,
            source_port: protocol.has_ports().then_some(o.sport),
            destination_port: protocol.has_ports().then_some(o.dport),
        }
    });
    TunnelRecord { layers, outer }
}

/// Sessions per application, for the capture's record (no field values, only counts).
pub fn count_by_application<'a>(
    sessions: impl IntoIterator<Item = &'a Box<Session>>,
    counts: &mut BTreeMap<String, u64>,
) {
    for s in sessions {
        *counts
            .entry(s.application().as_str().to_owned())
            .or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::session::packet::linktype::ETHERNET;
    use crate::session::table::SessionTable;

    fn session_of(frames: &[Vec<u8>]) -> Box<Session> {
        let mut table = SessionTable::new(10, Duration::from_secs(60));
        for (i, f) in frames.iter().enumerate() {
            table.packet(ETHERNET, i as u64, f, f.len() as u32);
        }
        let mut sessions = table.finish();
        assert_eq!(sessions.len(), 1);
        sessions.remove(0)
    }

    #[test]
    fn the_community_id_is_the_standards_and_needs_all_four_address_switches() {
        let eth = || etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let mut syn = Vec::new();
        eth()
            .ipv4([1, 2, 3, 4], [5, 6, 7, 8], 64)
            .tcp(1122, 3344, 1, 1024)
            .syn()
            .write(&mut syn, &[])
            .unwrap();
        let tcp = session_of(&[syn]);
        let sharing = Sharing::default();
        let mut ctx = RecordContext {
            sharing: &sharing,
            virtual_system: None,
            virtual_systems: None,
            users: None,
            community_id_seed: 0,
        };
        // The standard's own example: 1.2.3.4:1122 to 5.6.7.8:3344 over TCP, seed 0.
        assert_eq!(
            record(&tcp, &ctx).community_id.as_deref(),
            Some("1:wCb3OG7yAFWelaUydu0D+125CLM=")
        );
        ctx.community_id_seed = 1;
        assert_ne!(
            record(&tcp, &ctx).community_id.as_deref(),
            Some("1:wCb3OG7yAFWelaUydu0D+125CLM="),
            "another seed, another hash"
        );
        for field in ADDRESSES {
            let without = Sharing::default().with(field, false);
            let ctx = RecordContext {
                sharing: &without,
                ..ctx
            };
            assert_eq!(record(&tcp, &ctx).community_id, None, "{field} off");
        }

        // An echo request and its reply are one session and one hash, whichever came first.
        let echo = |from: [u8; 4], to: [u8; 4], request: bool| {
            let mut f = Vec::new();
            let icmp = eth().ipv4(from, to, 64);
            let icmp = if request {
                icmp.icmpv4_echo_request(7, 1)
            } else {
                icmp.icmpv4_echo_reply(7, 1)
            };
            icmp.write(&mut f, b"ping").unwrap();
            f
        };
        let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        ctx.community_id_seed = 0;
        let asked = session_of(&[echo(a, b, true), echo(b, a, false)]);
        let answered = session_of(&[echo(b, a, false)]);
        let id = record(&asked, &ctx).community_id;
        assert!(id.as_deref().is_some_and(|i| i.starts_with("1:")));
        assert_eq!(record(&answered, &ctx).community_id, id);
    }
}
