//! A session as it leaves the host: the twelve fields of DESIGN.md, each present only if its
//! sharing switch is on (a field switched off is absent: no key at all), plus the session's
//! protocol, times and counters.

use std::collections::BTreeMap;

use jiff::Timestamp;
use pcap_config::Sharing;
use serde_json::{Map, Value, json};

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

fn time(ns: u64) -> Value {
    Timestamp::from_nanosecond(i128::from(ns))
        .map(|t| Value::String(t.to_string()))
        .unwrap_or(Value::Null)
}

fn protocol(proto: u8) -> Value {
    match proto {
        TCP => "tcp".into(),
        UDP => "udp".into(),
        ICMP => "icmp".into(),
        ICMPV6 => "icmpv6".into(),
        other => other.into(),
    }
}

/// The record of `s`, with the sharing switches of `ctx` applied.
pub fn record(s: &Session, ctx: &RecordContext<'_>) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("protocol".into(), protocol(s.proto));
    r.insert("first_seen".into(), time(s.first_seen_ns));
    r.insert("last_seen".into(), time(s.last_seen_ns));
    r.insert(
        "packets".into(),
        json!({"to_server": s.packets[TO_SERVER], "to_client": s.packets[TO_CLIENT]}),
    );
    r.insert(
        "bytes".into(),
        json!({"to_server": s.bytes[TO_SERVER], "to_client": s.bytes[TO_CLIENT]}),
    );
    let ported = matches!(s.proto, TCP | UDP);
    let port = |p: u16| if ported { Value::from(p) } else { Value::Null };
    let mut users: Vec<String> = ctx
        .users
        .and_then(|m| m.get(&s.client.0))
        .map(|u| vec![u.to_owned()])
        .unwrap_or_default();
    for u in &s.found.users {
        if !users.contains(u) {
            users.push(u.clone());
        }
    }
    let fields: [(&str, Value); 12] = [
        ("source_ip", s.client.0.to_string().into()),
        ("source_port", port(s.client.1)),
        ("destination_ip", s.server.0.to_string().into()),
        ("destination_port", port(s.server.1)),
        (
            "virtual_system",
            ctx.virtual_system.map_or(Value::Null, Value::from),
        ),
        ("application", s.application().into()),
        ("user", users.into()),
        ("url", s.found.url.clone().map_or(Value::Null, Value::from)),
        ("filename", s.found.filenames.clone().into()),
        (
            "email_sender",
            s.found
                .email_sender
                .clone()
                .map_or(Value::Null, Value::from),
        ),
        ("email_recipient", s.found.email_recipients.clone().into()),
        (
            "email_subject",
            s.found
                .email_subject
                .clone()
                .map_or(Value::Null, Value::from),
        ),
    ];
    for (name, value) in fields {
        if ctx.sharing.is_shared(name) {
            r.insert(name.into(), value);
        }
    }
    // ALPN tells the application inside TLS; it goes with the application switch.
    if ctx.sharing.application && !s.found.alpn.is_empty() {
        r.insert("alpn".into(), s.found.alpn.clone().into());
    }
    r
}

/// Sessions per application, for the capture's record (no field values, only counts).
pub fn count_by_application<'a>(
    sessions: impl IntoIterator<Item = &'a Session>,
    counts: &mut BTreeMap<String, u64>,
) {
    for s in sessions {
        *counts.entry(s.application().to_owned()).or_default() += 1;
    }
}
