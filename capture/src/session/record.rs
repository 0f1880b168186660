//! A session as it leaves the host: the [`SessionRecord`] of `pcap-protocol`, each of the twelve
//! fields present only if its sharing switch is on (a field switched off is absent: no key at
//! all), plus the session's protocol, times and counters. The record borrows the session's
//! values; nothing is copied to write it.

// Sessions are large; boxed, they move as pointers when the table grows, sorts and hands
// them over.
#![allow(clippy::vec_box)]

use std::borrow::Cow;
use std::collections::BTreeMap;

use jiff::Timestamp;
use pcap_config::Sharing;
use pcap_protocol::session::{
    Directions, Field, LayerRecord, OuterRecord, SessionRecord, Shared, Transport, TunnelRecord,
};

use super::flow::{Session, TO_CLIENT, TO_SERVER};
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
    r
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
