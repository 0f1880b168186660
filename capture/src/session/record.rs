//! A session as it leaves the host: the twelve fields of DESIGN.md, each present only if its
//! sharing switch is on (a field switched off is absent: no key at all), plus the session's
//! protocol, times and counters. Serialized straight from the session, without building an
//! intermediate JSON value.

// Sessions are large; boxed, they move as pointers when the table grows, sorts and hands
// them over.
#![allow(clippy::vec_box)]

use std::collections::BTreeMap;

use jiff::Timestamp;
use pcap_config::Sharing;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::flow::{Session, TO_CLIENT, TO_SERVER};
use super::packet::{ICMP, ICMPV6, TCP, UDP};
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

/// The record of one session, ready to serialize.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    session: &'a Session,
    ctx: &'a RecordContext<'a>,
}

/// The record of `s`, with the sharing switches of `ctx` applied.
pub fn record<'a>(s: &'a Session, ctx: &'a RecordContext<'a>) -> Record<'a> {
    Record { session: s, ctx }
}

#[derive(Serialize)]
struct Directions {
    to_server: u64,
    to_client: u64,
}

fn time(ns: u64) -> Option<String> {
    Timestamp::from_nanosecond(i128::from(ns))
        .ok()
        .map(|t| t.to_string())
}

/// Where a tunnelled session was found: its layers, outermost first, and the carrier's
/// addresses and ports (the addresses under the source_ip and destination_ip switches).
struct TunnelRecord<'a> {
    t: &'a Tunnels,
    on: &'a Sharing,
}

#[derive(Serialize)]
struct LayerRecord {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u8>,
}

/// The carrier's 5-tuple; an address whose sharing switch is off is absent.
#[derive(Serialize)]
struct OuterRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    source_ip: Option<std::net::IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_ip: Option<std::net::IpAddr>,
    protocol: Protocol,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_port: Option<u16>,
}

impl Serialize for TunnelRecord<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(None)?;
        let layers: Vec<LayerRecord> = self
            .t
            .layers()
            .map(|l| LayerRecord {
                kind: l.kind.as_str(),
                id: l.id,
                version: (l.version != 0).then_some(l.version),
            })
            .collect();
        m.serialize_entry("layers", &layers)?;
        if let Some(o) = &self.t.outer {
            let ported = matches!(o.proto, TCP | UDP);
            let outer = OuterRecord {
                source_ip: self.on.source_ip.then_some(o.src),
                destination_ip: self.on.destination_ip.then_some(o.dst),
                protocol: Protocol::of(o.proto),
                source_port: ported.then_some(o.sport),
                destination_port: ported.then_some(o.dport),
            };
            m.serialize_entry("outer", &outer)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum Protocol {
    Name(&'static str),
    Number(u8),
}

impl Protocol {
    fn of(proto: u8) -> Self {
        match proto {
            TCP => Protocol::Name("tcp"),
            UDP => Protocol::Name("udp"),
            ICMP => Protocol::Name("icmp"),
            ICMPV6 => Protocol::Name("icmpv6"),
            other => Protocol::Number(other),
        }
    }
}

impl Serialize for Record<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let s = self.session;
        let on = self.ctx.sharing;
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("protocol", &Protocol::of(s.proto))?;
        m.serialize_entry("first_seen", &time(s.first_seen_ns))?;
        m.serialize_entry("last_seen", &time(s.last_seen_ns))?;
        m.serialize_entry(
            "packets",
            &Directions {
                to_server: s.packets[TO_SERVER],
                to_client: s.packets[TO_CLIENT],
            },
        )?;
        m.serialize_entry(
            "bytes",
            &Directions {
                to_server: s.bytes[TO_SERVER],
                to_client: s.bytes[TO_CLIENT],
            },
        )?;
        let ported = matches!(s.proto, TCP | UDP);
        let port = |p: u16| ported.then_some(p);
        if on.source_ip {
            m.serialize_entry("source_ip", &s.client.0)?;
        }
        if on.source_port {
            m.serialize_entry("source_port", &port(s.client.1))?;
        }
        if on.destination_ip {
            m.serialize_entry("destination_ip", &s.server.0)?;
        }
        if on.destination_port {
            m.serialize_entry("destination_port", &port(s.server.1))?;
        }
        if on.virtual_system {
            let by_tunnel = s
                .tunnels()
                .zip(self.ctx.virtual_systems)
                .and_then(|(t, map)| {
                    t.layers().find_map(|l| {
                        let key = match (l.kind, l.id) {
                            (Kind::Vxlan | Kind::Geneve, Some(vni)) => format!("vni:{vni}"),
                            (Kind::Gre, Some(key)) => format!("gre:{key}"),
                            _ => return None,
                        };
                        map.get(&key).map(String::as_str)
                    })
                });
            m.serialize_entry("virtual_system", &by_tunnel.or(self.ctx.virtual_system))?;
        }
        if let Some(t) = s.tunnels() {
            m.serialize_entry("tunnel", &TunnelRecord { t, on })?;
        }
        if on.application {
            m.serialize_entry("application", s.application())?;
            // ALPN tells the application inside TLS; it goes with the application switch.
            if !s.found().alpn.is_empty() {
                m.serialize_entry("alpn", &s.found().alpn)?;
            }
        }
        if on.user {
            let mapped = self.ctx.users.and_then(|u| u.get(&s.client.0));
            let mut users: Vec<&str> = mapped.into_iter().collect();
            users.extend(
                s.found()
                    .users
                    .iter()
                    .map(String::as_str)
                    .filter(|u| Some(*u) != mapped),
            );
            m.serialize_entry("user", &users)?;
        }
        if on.url {
            m.serialize_entry("url", &s.found().url)?;
        }
        if on.filename {
            m.serialize_entry("filename", &s.found().filenames)?;
        }
        if on.email_sender {
            m.serialize_entry("email_sender", &s.found().email_sender)?;
        }
        if on.email_recipient {
            m.serialize_entry("email_recipient", &s.found().email_recipients)?;
        }
        if on.email_subject {
            m.serialize_entry("email_subject", &s.found().email_subject)?;
        }
        m.end()
    }
}

/// Sessions per application, for the capture's record (no field values, only counts).
pub fn count_by_application<'a>(
    sessions: impl IntoIterator<Item = &'a Box<Session>>,
    counts: &mut BTreeMap<String, u64>,
) {
    for s in sessions {
        *counts.entry(s.application().to_owned()).or_default() += 1;
    }
}
