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
use super::users::UserMap;

/// What a record needs besides the session.
#[derive(Debug, Clone, Copy)]
pub struct RecordContext<'a> {
    pub sharing: &'a Sharing,
    /// The virtual system of the capture's interface, from the config's map.
    pub virtual_system: Option<&'a str>,
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

#[derive(Serialize)]
#[serde(untagged)]
enum Protocol {
    Name(&'static str),
    Number(u8),
}

impl Serialize for Record<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let s = self.session;
        let on = self.ctx.sharing;
        let mut m = ser.serialize_map(None)?;
        let protocol = match s.proto {
            TCP => Protocol::Name("tcp"),
            UDP => Protocol::Name("udp"),
            ICMP => Protocol::Name("icmp"),
            ICMPV6 => Protocol::Name("icmpv6"),
            other => Protocol::Number(other),
        };
        m.serialize_entry("protocol", &protocol)?;
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
            m.serialize_entry("virtual_system", &self.ctx.virtual_system)?;
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
