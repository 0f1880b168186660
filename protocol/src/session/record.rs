//! One session's record, as `sessions.json` holds it (one JSON line per session) and
//! `pcap-agent analyze` prints it.
//!
//! ```text
//! {"schema":"2.1","protocol":"tcp","first_seen":"...","last_seen":"...",
//!  "packets":{"to_server":5,"to_client":4},"bytes":{...},
//!  "source_ip":"10.0.0.1","source_port":40000,"destination_ip":"10.0.0.2","destination_port":80,
//!  "virtual_system":null,"application":"http","user":["alice"],
//!  "urls":["http://lab/a","http://lab/b"],"filename":["b"],
//!  "email_sender":null,"email_recipient":[],"email_subject":null}
//! ```
//!
//! Each of the twelve fields is [`Shared`]: switched off, it is absent (no key at all); on, it
//! is there, `null` or `[]` when the session had no value. The record borrows what it can from
//! the session it describes (`Cow`), so writing one copies no string; read back, it owns them.
//!
//! Versions: 1.0 had one `url`; 2.0 has `urls`, every URL of the session, and `dropped`, what
//! did not fit in a list; 2.1 adds `community_id`, the session's Community ID (v1), present
//! only when the four address and port fields are all shared (it is a hash of them).

use std::borrow::Cow;
use std::net::IpAddr;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::App;
use crate::schema::{Document, Schema};

/// A field as a record holds it: absent when its switch is off, else its value (which may
/// itself be empty: `null`, `[]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Shared<T> {
    /// Switched off: the record has no key for it.
    #[default]
    Off,
    On(T),
}

impl<T> Shared<T> {
    pub fn is_off(&self) -> bool {
        matches!(self, Shared::Off)
    }

    /// The value, if the field is shared.
    pub fn get(&self) -> Option<&T> {
        match self {
            Shared::Off => None,
            Shared::On(v) => Some(v),
        }
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Shared::On(v) => v.serialize(s),
            // Never reached through a record: its fields skip `Off`.
            Shared::Off => s.serialize_none(),
        }
    }
}

/// Present in a record means shared (a missing key is `Off` through `#[serde(default)]`).
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shared<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Shared::On)
    }
}

/// The transport protocol: a name for the common ones, else the IP protocol number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Other(u8),
}

impl Transport {
    /// The transport of IP protocol number `proto`.
    pub const fn of(proto: u8) -> Transport {
        match proto {
            6 => Transport::Tcp,
            17 => Transport::Udp,
            1 => Transport::Icmp,
            58 => Transport::Icmpv6,
            n => Transport::Other(n),
        }
    }

    /// The IP protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Transport::Tcp => 6,
            Transport::Udp => 17,
            Transport::Icmp => 1,
            Transport::Icmpv6 => 58,
            Transport::Other(n) => n,
        }
    }

    /// Whether the transport has ports.
    pub const fn has_ports(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Udp)
    }

    fn name(self) -> Option<&'static str> {
        Some(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Icmp => "icmp",
            Transport::Icmpv6 => "icmpv6",
            Transport::Other(_) => return None,
        })
    }
}

impl Serialize for Transport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.name() {
            Some(name) => s.serialize_str(name),
            None => s.serialize_u8(self.number()),
        }
    }
}

impl<'de> Deserialize<'de> for Transport {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Transport;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("tcp, udp, icmp, icmpv6 or an IP protocol number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Transport, E> {
                [6, 17, 1, 58]
                    .map(Transport::of)
                    .into_iter()
                    .find(|t| t.name() == Some(v))
                    .ok_or_else(|| E::custom(format!("{v:?} is not a transport")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Transport, E> {
                u8::try_from(v)
                    .map(Transport::of)
                    .map_err(|_| E::custom(format!("{v} is not an IP protocol number")))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// Packets or bytes each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directions {
    pub to_server: u64,
    pub to_client: u64,
}

/// Where a tunnelled session was found: its layers, outermost first, and the carrier's
/// addresses and ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelRecord<'a> {
    pub layers: Vec<LayerRecord<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer: Option<OuterRecord>,
}

/// One layer of a tunnel: its kind (`vxlan`, `gre`, `mpls`, ...) and id (VNI, key, label).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord<'a> {
    pub kind: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u8>,
}

/// The carrier's 5-tuple; an address whose sharing switch is off is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OuterRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_ip: Option<IpAddr>,
    pub protocol: Transport,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_port: Option<u16>,
}

fn is_empty(list: &[String]) -> bool {
    list.is_empty()
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Values a session found but left out of a shared list because the list was full
/// (`[sessions] max_values`); only lists that dropped some appear.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub user: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub urls: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub filename: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub email_recipient: u32,
}

impl Dropped {
    pub fn is_empty(&self) -> bool {
        *self == Dropped::default()
    }
}

/// See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord<'a> {
    #[serde(default)]
    pub schema: Schema,
    pub protocol: Transport,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    pub packets: Directions,
    pub bytes: Directions,
    #[serde(default, skip_serializing_if = "Shared::is_off")]
    pub source_ip: Shared<IpAddr>,
    /// `null` for a transport without ports.
    #[serde(default, skip_serializing_if = "Shared::is_off")]
    pub source_port: Shared<Option<u16>>,
    #[serde(default, skip_serializing_if = "Shared::is_off")]
    pub destination_ip: Shared<IpAddr>,
    #[serde(default, skip_serializing_if = "Shared::is_off")]
    pub destination_port: Shared<Option<u16>>,
    #[serde(default, skip_serializing_if = "Shared::is_off")]
    pub virtual_system: Shared<Option<Cow<'a, str>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelRecord<'a>>,
    #[serde(default, skip_serializing_if = "Shared::is_off")]
    pub application: Shared<App>,
    /// The ALPN protocols of TLS, shared with `application` (they tell the application inside).
    #[serde(default, skip_serializing_if = "is_empty")]
    pub alpn: Cow<'a, [String]>,
    #[serde(default, skip_serializing_if = "Shared::is_off")]
    pub user: Shared<Cow<'a, [String]>>,
    /// Every URL of the session (the `url` switch).
    #[serde(default, skip_serializing_if = "Shared::is_off")]
    pub urls: Shared<Cow<'a, [String]>>,
    #[serde(default, skip_serializing_if = "Shared::is_off")]
    pub filename: Shared<Cow<'a, [String]>>,
    #[serde(default, skip_serializing_if = "Shared::is_off")]
    pub email_sender: Shared<Option<Cow<'a, str>>>,
    #[serde(default, skip_serializing_if = "Shared::is_off")]
    pub email_recipient: Shared<Cow<'a, [String]>>,
    #[serde(default, skip_serializing_if = "Shared::is_off")]
    pub email_subject: Shared<Option<Cow<'a, str>>>,
    #[serde(default, skip_serializing_if = "Dropped::is_empty")]
    pub dropped: Dropped,
    /// The Community ID v1 of the session's addresses, ports and protocol (`1:` and a base64
    /// SHA-1), the flow hash Zeek, Suricata, Arkime and Elastic share; only when
    /// `source_ip`, `source_port`, `destination_ip` and `destination_port` are all shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community_id: Option<String>,
}

impl Document for SessionRecord<'static> {
    const KIND: &'static str = "session record";
    const SCHEMA: Schema = Schema { major: 2, minor: 1 };
}

fn list<'s>(field: &'s Shared<Cow<'_, [String]>>) -> &'s [String] {
    field.get().map_or(&[], |v| v)
}

fn text<'s>(field: &'s Shared<Option<Cow<'_, str>>>) -> Option<&'s str> {
    field.get().and_then(|v| v.as_deref())
}

impl<'a> SessionRecord<'a> {
    /// A record of the session's transport, times and counters, every field switched off.
    pub fn new(
        protocol: Transport,
        seen: (Option<Timestamp>, Option<Timestamp>),
        packets: Directions,
        bytes: Directions,
    ) -> Self {
        SessionRecord {
            schema: <SessionRecord<'static> as Document>::SCHEMA,
            protocol,
            first_seen: seen.0,
            last_seen: seen.1,
            packets,
            bytes,
            source_ip: Shared::Off,
            source_port: Shared::Off,
            destination_ip: Shared::Off,
            destination_port: Shared::Off,
            virtual_system: Shared::Off,
            tunnel: None,
            application: Shared::Off,
            alpn: Cow::Borrowed(&[]),
            user: Shared::Off,
            urls: Shared::Off,
            filename: Shared::Off,
            email_sender: Shared::Off,
            email_recipient: Shared::Off,
            email_subject: Shared::Off,
            dropped: Dropped::default(),
            community_id: None,
        }
    }

    /// The application, if shared.
    pub fn application(&self) -> Option<App> {
        self.application.get().copied()
    }

    /// The URLs (none if not shared).
    pub fn urls(&self) -> &[String] {
        list(&self.urls)
    }

    /// The users (none if not shared).
    pub fn users(&self) -> &[String] {
        list(&self.user)
    }

    /// The file names (none if not shared).
    pub fn filenames(&self) -> &[String] {
        list(&self.filename)
    }

    pub fn email_sender(&self) -> Option<&str> {
        text(&self.email_sender)
    }

    pub fn email_recipients(&self) -> &[String] {
        list(&self.email_recipient)
    }

    pub fn email_subject(&self) -> Option<&str> {
        text(&self.email_subject)
    }

    /// The fields this record shares (those present in it).
    pub fn shared_fields(&self) -> super::FieldSet {
        use super::Field;
        Field::ALL
            .into_iter()
            .filter(|f| match f {
                Field::SourceIp => !self.source_ip.is_off(),
                Field::SourcePort => !self.source_port.is_off(),
                Field::DestinationIp => !self.destination_ip.is_off(),
                Field::DestinationPort => !self.destination_port.is_off(),
                Field::VirtualSystem => !self.virtual_system.is_off(),
                Field::Application => !self.application.is_off(),
                Field::User => !self.user.is_off(),
                Field::Url => !self.urls.is_off(),
                Field::Filename => !self.filename.is_off(),
                Field::EmailSender => !self.email_sender.is_off(),
                Field::EmailRecipient => !self.email_recipient.is_off(),
                Field::EmailSubject => !self.email_subject.is_off(),
            })
            .collect()
    }

    /// The client's address and port, if shared (the port `None` without ports).
    pub fn source(&self) -> (Option<IpAddr>, Option<u16>) {
        (
            self.source_ip.get().copied(),
            self.source_port.get().copied().flatten(),
        )
    }

    /// The server's address and port, if shared.
    pub fn destination(&self) -> (Option<IpAddr>, Option<u16>) {
        (
            self.destination_ip.get().copied(),
            self.destination_port.get().copied().flatten(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_switched_off_is_absent_and_an_empty_one_is_null_or_empty() {
        let mut r = SessionRecord::new(
            Transport::Icmp,
            (None, None),
            Directions::default(),
            Directions::default(),
        );
        r.source_port = Shared::On(None);
        r.urls = Shared::On(Cow::Owned(vec!["http://a/".to_owned()]));
        r.email_subject = Shared::On(None);
        let json = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in ["schema", "protocol", "source_port", "urls", "email_subject"] {
            assert!(keys.contains(&key), "{key}: {json}");
        }
        for key in ["source_ip", "user", "application", "alpn", "tunnel"] {
            assert!(!keys.contains(&key), "{key}: {json}");
        }
        assert_eq!(json["source_port"], serde_json::Value::Null);
        assert_eq!(json["protocol"], "icmp");
        assert_eq!(json["schema"], "2.1");

        let back: SessionRecord<'static> =
            crate::schema::decode(serde_json::to_string(&r).unwrap().as_bytes()).unwrap();
        assert_eq!(back, r);
        assert!(back.user.is_off() && back.users().is_empty());
        let shared = back.shared_fields();
        assert!(shared.contains(super::super::Field::Url));
        assert!(!shared.contains(super::super::Field::SourceIp));
        assert_eq!(back.urls(), ["http://a/"]);
        assert_eq!(back.source(), (None, None));
    }

    #[test]
    fn transports_are_names_or_numbers() {
        for (proto, json) in [(6, "\"tcp\""), (58, "\"icmpv6\""), (47, "47")] {
            let t = Transport::of(proto);
            assert_eq!(serde_json::to_string(&t).unwrap(), json);
            assert_eq!(serde_json::from_str::<Transport>(json).unwrap(), t);
            assert_eq!(t.number(), proto);
        }
        assert!(serde_json::from_str::<Transport>("\"sctp\"").is_err());
    }
}
