//! A record written as its JSON line directly: the same bytes as `serde_json::to_writer` of
//! its `Serialize` (the tests hold them equal on every shape of record), without serde's
//! per-key machinery. A capture or `analyze` writes one line per session, hundreds of
//! thousands of them, and writing them through serde took a third of `analyze`'s time.
//! Keys are constants written as they are; string values are escaped the way serde_json
//! escapes them; timestamps are printed from their seconds and nanoseconds. The rare parts (a
//! tunnel, dropped counts) go through serde.

use std::net::IpAddr;

use jiff::Timestamp;

use super::record::{Directions, SessionRecord, Shared, Transport};

impl SessionRecord<'_> {
    /// Appends the record's JSON (no line end) to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"schema\":\"");
        number(out, self.schema.major.into());
        out.push(b'.');
        number(out, self.schema.minor.into());
        out.push(b'"');
        out.extend_from_slice(b",\"protocol\":");
        transport(out, self.protocol);
        out.extend_from_slice(b",\"first_seen\":");
        timestamp(out, self.first_seen);
        out.extend_from_slice(b",\"last_seen\":");
        timestamp(out, self.last_seen);
        out.extend_from_slice(b",\"packets\":");
        directions(out, self.packets);
        out.extend_from_slice(b",\"bytes\":");
        directions(out, self.bytes);
        if let Shared::On(ip) = &self.source_ip {
            out.extend_from_slice(b",\"source_ip\":");
            address(out, *ip);
        }
        if let Shared::On(port) = &self.source_port {
            out.extend_from_slice(b",\"source_port\":");
            optional(out, port.map(u64::from));
        }
        if let Shared::On(ip) = &self.destination_ip {
            out.extend_from_slice(b",\"destination_ip\":");
            address(out, *ip);
        }
        if let Shared::On(port) = &self.destination_port {
            out.extend_from_slice(b",\"destination_port\":");
            optional(out, port.map(u64::from));
        }
        if let Shared::On(vsys) = &self.virtual_system {
            out.extend_from_slice(b",\"virtual_system\":");
            text(out, vsys.as_deref());
        }
        if let Some(tunnel) = &self.tunnel {
            out.extend_from_slice(b",\"tunnel\":");
            via_serde(out, tunnel);
        }
        if let Shared::On(app) = &self.application {
            out.extend_from_slice(b",\"application\":");
            string(out, app.as_str());
        }
        if !self.alpn.is_empty() {
            out.extend_from_slice(b",\"alpn\":");
            list(out, &self.alpn);
        }
        for (key, values) in [
            (&b",\"user\":"[..], &self.user),
            (b",\"urls\":", &self.urls),
            (b",\"filename\":", &self.filename),
        ] {
            if let Shared::On(values) = values {
                out.extend_from_slice(key);
                list(out, values);
            }
        }
        if let Shared::On(sender) = &self.email_sender {
            out.extend_from_slice(b",\"email_sender\":");
            text(out, sender.as_deref());
        }
        if let Shared::On(recipients) = &self.email_recipient {
            out.extend_from_slice(b",\"email_recipient\":");
            list(out, recipients);
        }
        if let Shared::On(subject) = &self.email_subject {
            out.extend_from_slice(b",\"email_subject\":");
            text(out, subject.as_deref());
        }
        if !self.dropped.is_empty() {
            out.extend_from_slice(b",\"dropped\":");
            via_serde(out, &self.dropped);
        }
        if let Some(id) = &self.community_id {
            out.extend_from_slice(b",\"community_id\":");
            string(out, id);
        }
        out.push(b'}');
    }
}

fn via_serde(out: &mut Vec<u8>, value: &impl serde::Serialize) {
    // Writing into a Vec cannot fail, and these types always serialise.
    let _ = serde_json::to_writer(&mut *out, value);
}

fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn optional(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => number(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

fn transport(out: &mut Vec<u8>, t: Transport) {
    match t {
        Transport::Tcp => string(out, "tcp"),
        Transport::Udp => string(out, "udp"),
        Transport::Icmp => string(out, "icmp"),
        Transport::Icmpv6 => string(out, "icmpv6"),
        Transport::Other(n) => number(out, n.into()),
    }
}

fn directions(out: &mut Vec<u8>, d: Directions) {
    out.extend_from_slice(b"{\"to_server\":");
    number(out, d.to_server);
    out.extend_from_slice(b",\"to_client\":");
    number(out, d.to_client);
    out.push(b'}');
}

fn address(out: &mut Vec<u8>, ip: IpAddr) {
    out.push(b'"');
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                number(out, octet.into());
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            let _ = write!(out, "{v6}");
        }
    }
    out.push(b'"');
}

fn text(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(v) => string(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

fn list(out: &mut Vec<u8>, values: &[String]) {
    out.push(b'[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, v);
    }
    out.push(b']');
}

/// A JSON string, escaped as serde_json escapes: `"`, `\` and the C0 controls (short forms
/// where JSON has them, else `\u00XX`); everything else as it is.
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// A timestamp as jiff writes it (`2023-11-14T22:13:20.000202Z`: UTC, the fraction without
/// its trailing zeros, none when whole), printed from its seconds and nanoseconds; a time
/// before 1970 or after 9999 is left to jiff.
fn timestamp(out: &mut Vec<u8>, ts: Option<Timestamp>) {
    let Some(ts) = ts else {
        out.extend_from_slice(b"null");
        return;
    };
    let (secs, nanos) = (ts.as_second(), ts.subsec_nanosecond());
    if !(0..253_402_300_800).contains(&secs) || nanos < 0 {
        use std::io::Write;
        let _ = write!(out, "\"{ts}\"");
        return;
    }
    let secs = secs.unsigned_abs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rest = (secs % 86_400) as u32;
    let two = |n: u32| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
    let (century, years) = (two(year / 100), two(year % 100));
    let (month, day) = (two(month), two(day));
    let (hour, minute, second) = (two(rest / 3600), two(rest / 60 % 60), two(rest % 60));
    out.extend_from_slice(&[
        b'"', century[0], century[1], years[0], years[1], b'-', month[0], month[1], b'-', day[0],
        day[1], b'T', hour[0], hour[1], b':', minute[0], minute[1], b':', second[0], second[1],
    ]);
    if nanos > 0 {
        let mut digits = [0u8; 9];
        let mut n = nanos;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let len = 9 - digits.iter().rev().take_while(|&&d| d == b'0').count();
        out.push(b'.');
        out.extend_from_slice(&digits[..len]);
    }
    out.extend_from_slice(b"Z\"");
}

/// The proleptic Gregorian date of a count of days since 1970-01-01 (non-negative), by
/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: u64) -> (u32, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year as u32, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::super::App;
    use super::super::record::{Dropped, LayerRecord, OuterRecord, TunnelRecord};
    use super::*;
    use proptest::prelude::*;

    fn written(r: &SessionRecord<'_>) -> String {
        let mut out = Vec::new();
        r.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn record(
        secs: i64,
        nanos: i32,
        texts: Vec<String>,
        ip6: bool,
        shared: Vec<bool>,
    ) -> SessionRecord<'static> {
        let ts = Timestamp::new(secs, nanos).ok();
        let mut r = SessionRecord::new(
            if ip6 {
                Transport::Udp
            } else {
                Transport::Other(132)
            },
            (ts, None),
            Directions {
                to_server: secs.unsigned_abs(),
                to_client: u64::MAX,
            },
            Directions::default(),
        );
        let on = |i: usize| shared.get(i).copied().unwrap_or(true);
        let t = |i: usize| texts.get(i).cloned().unwrap_or_default();
        let ip: IpAddr = if ip6 {
            "2001:db8::1:0:0:1".parse().unwrap()
        } else {
            "192.0.2.255".parse().unwrap()
        };
        if on(0) {
            r.source_ip = Shared::On(ip);
            r.destination_ip = Shared::On("0.0.0.0".parse().unwrap());
        }
        if on(1) {
            r.source_port = Shared::On(Some(65535));
            r.destination_port = Shared::On(None);
        }
        if on(2) {
            r.virtual_system = Shared::On(Some(Cow::Owned(t(0))));
        }
        if on(3) {
            r.application = Shared::On(App::Http);
            r.alpn = Cow::Owned(vec![t(1)]);
        }
        if on(4) {
            r.user = Shared::On(Cow::Owned(texts.clone()));
            r.urls = Shared::On(Cow::Owned(vec![]));
            r.filename = Shared::On(Cow::Owned(vec![t(2), t(3)]));
        }
        if on(5) {
            r.email_sender = Shared::On(None);
            r.email_recipient = Shared::On(Cow::Owned(vec![t(4)]));
            r.email_subject = Shared::On(Some(Cow::Owned(t(5))));
        }
        if on(6) {
            r.tunnel = Some(TunnelRecord {
                layers: vec![LayerRecord {
                    kind: Cow::Borrowed("vxlan"),
                    id: Some(5001),
                    version: None,
                }],
                outer: Some(OuterRecord {
                    source_ip: Some(ip),
                    destination_ip: None,
                    protocol: Transport::Udp,
                    source_port: Some(4789),
                    destination_port: None,
                }),
            });
            r.dropped = Dropped {
                urls: 3,
                ..Dropped::default()
            };
            r.community_id = Some(t(6));
        }
        r
    }

    #[test]
    fn the_written_line_is_serdes_for_a_plain_and_a_full_record() {
        let plain = record(1_700_000_000, 202_000, vec![], false, vec![false; 7]);
        assert_eq!(written(&plain), serde_json::to_string(&plain).unwrap());
        let full = record(
            951_782_400, // 2000-02-29
            1,
            vec!["a\"b\\c\n\u{1}\u{7f}é\u{2028}".into(), "x".into()],
            true,
            vec![true; 7],
        );
        assert_eq!(written(&full), serde_json::to_string(&full).unwrap());
    }

    proptest! {
        #[test]
        fn the_written_line_is_serdes_for_any_record(
            secs in -100_000_000_000i64..300_000_000_000,
            nanos in prop_oneof![Just(0i32), 0i32..1_000_000_000, Just(999_999_999)],
            texts in proptest::collection::vec(any::<String>(), 0..8),
            ip6 in any::<bool>(),
            shared in proptest::collection::vec(any::<bool>(), 7),
        ) {
            let r = record(secs, nanos, texts, ip6, shared);
            prop_assert_eq!(written(&r), serde_json::to_string(&r).unwrap());
        }
    }
}
