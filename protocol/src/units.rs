//! Durations and sizes as people write them: `"60s"`, `"1h 30m"`, `"100MiB"`, `"10MB"`, or a
//! plain number of bytes. Used by capture requests and by the agent's config.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Parses a duration such as `"60s"` or `"1h 30m"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|_| {
        format!("{text:?} is not a duration; write e.g. \"90s\", \"5m\" or \"1h 30m\"")
    })
}

/// Parses a size such as `"100MiB"`, `"10MB"` or `"4096"`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| {
            format!("{text:?} is not a size; write e.g. \"100MiB\", \"10MB\" or a number of bytes")
        })
}

/// Formats a duration the way people write capture lengths: hours, minutes, seconds and
/// fractions, never days (`48h`, `1h 30m`, `90ms`); [`parse_duration`] reads it back.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    let parts = [
        (secs / 3600, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
        (u64::from(nanos / 1_000_000), "ms"),
        (u64::from(nanos / 1000 % 1000), "us"),
        (u64::from(nanos % 1000), "ns"),
    ];
    let text: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if text.is_empty() {
        "0s".to_owned()
    } else {
        text.join(" ")
    }
}

/// Formats bytes in binary units (`100.0 MiB`).
pub fn format_size(bytes: u64) -> String {
    bytesize::ByteSize::b(bytes).display().iec().to_string()
}

/// A duration that travels as text (`"60s"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TextDuration(pub Duration);

impl Serialize for TextDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for TextDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(TextDuration)
            .map_err(de::Error::custom)
    }
}

/// Serde helpers for a plain `Duration` field that travels as text:
/// `#[serde(with = "pcap_protocol::units::duration_text")]`.
pub mod duration_text {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        TextDuration(*d).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        TextDuration::deserialize(d).map(|t| t.0)
    }
}

/// A size that travels as a number of bytes, and may be written as text (`"100MiB"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"100MiB\" or a number of bytes")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("{v} is negative; a size must be 0 or more")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse_as_people_write_them() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("10 parsecs").is_err());
        assert_eq!(parse_size("100MiB"), Ok(100 * 1024 * 1024));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn text_values_round_trip_through_json() {
        let d: TextDuration = serde_json::from_str("\"90s\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1m 30s\"");
        for (written, echoed) in [
            ("48h", "48h"),
            ("2days", "48h"),
            ("90m", "1h 30m"),
            ("0s", "0s"),
        ] {
            let d = parse_duration(written).unwrap();
            assert_eq!(format_duration(d), echoed);
            assert_eq!(parse_duration(echoed), Ok(d));
        }
        let fine = Duration::new(5, 250_000_001);
        assert_eq!(format_duration(fine), "5s 250ms 1ns");
        assert_eq!(parse_duration(&format_duration(fine)), Ok(fine));
        let s: Size = serde_json::from_str("\"1KiB\"").unwrap();
        assert_eq!(s, Size(1024));
        assert_eq!(serde_json::from_str::<Size>("2048").unwrap(), Size(2048));
        assert!(serde_json::from_str::<Size>("-1").is_err());
    }
}
