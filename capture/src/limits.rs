//! A request's limits, resolved against the configured defaults and ceilings. Ceilings are
//! always in force; a request above one is refused with a message naming it.

use std::time::Duration;

use pcap_config::Limits;
use pcap_protocol::units::{format_duration, format_size};
use pcap_protocol::{EffectiveLimits, RequestLimits};

/// A requested limit above its ceiling (or zero).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LimitError {
    pub message: String,
}

/// Resolves `requested` against `defaults` and `ceilings` (whose fields are all set).
pub fn resolve(
    requested: &RequestLimits,
    defaults: &Limits,
    ceilings: &Limits,
) -> Result<EffectiveLimits, LimitError> {
    let secs = |d: Duration| d.as_nanos().min(u128::from(u64::MAX)) as u64;
    let dur = |ns: u64| format_duration(Duration::from_nanos(ns));
    let num = |n: u64| n.to_string();
    let pick = |name: &str,
                asked: Option<u64>,
                default: Option<u64>,
                ceiling: Option<u64>,
                show: &dyn Fn(u64) -> String| {
        if asked == Some(0) {
            return Err(LimitError {
                message: format!("{name} must be larger than zero"),
            });
        }
        match (asked, ceiling) {
            (Some(a), Some(c)) if a > c => Err(LimitError {
                message: format!(
                    "{name} {} is above the ceiling capture.ceilings.{name} = {}",
                    show(a),
                    show(c)
                ),
            }),
            _ => Ok(match (asked.or(default), ceiling) {
                (Some(v), Some(c)) => Some(v.min(c)),
                (v, c) => v.or(c),
            }),
        }
    };
    let max_duration = pick(
        "max_duration",
        requested.max_duration.map(|d| secs(d.0)),
        defaults.max_duration.map(secs),
        ceilings.max_duration.map(secs),
        &dur,
    )?
    .map(Duration::from_nanos)
    .unwrap_or(Duration::from_secs(60));
    let snaplen = pick(
        "snaplen",
        requested.snaplen.map(u64::from),
        defaults.snaplen.map(u64::from),
        ceilings.snaplen.map(u64::from),
        &num,
    )?
    .unwrap_or(65_535) as u32;
    Ok(EffectiveLimits {
        max_duration,
        max_packets: pick(
            "max_packets",
            requested.max_packets,
            defaults.max_packets,
            ceilings.max_packets,
            &num,
        )?,
        max_bytes: pick(
            "max_bytes",
            requested.max_bytes.map(|s| s.0),
            defaults.max_bytes,
            ceilings.max_bytes,
            &format_size,
        )?,
        snaplen,
        max_pps: pick(
            "max_pps",
            requested.max_pps,
            defaults.max_pps,
            ceilings.max_pps,
            &num,
        )?,
        max_bps: pick(
            "max_bps",
            requested.max_bps.map(|s| s.0),
            defaults.max_bps,
            ceilings.max_bps,
            &format_size,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_protocol::units::{Size, TextDuration};

    fn ceilings() -> Limits {
        Limits {
            max_duration: Some(Duration::from_secs(3600)),
            max_packets: Some(1_000_000),
            max_bytes: Some(1 << 30),
            snaplen: Some(262_144),
            max_pps: Some(100_000),
            max_bps: Some(100 << 20),
        }
    }

    fn defaults() -> Limits {
        Limits {
            max_duration: Some(Duration::from_secs(60)),
            max_bytes: Some(100 << 20),
            snaplen: Some(65_535),
            ..Limits::default()
        }
    }

    #[test]
    fn missing_limits_take_defaults_and_ceilings_always_apply() {
        let e = resolve(&RequestLimits::default(), &defaults(), &ceilings()).unwrap();
        assert_eq!(e.max_duration, Duration::from_secs(60));
        assert_eq!(e.max_bytes, Some(100 << 20));
        assert_eq!(e.snaplen, 65_535);
        assert_eq!(
            e.max_packets,
            Some(1_000_000),
            "the ceiling applies when nothing else does"
        );
        assert_eq!(e.max_pps, Some(100_000));
    }

    #[test]
    fn a_limit_above_its_ceiling_is_refused_naming_the_ceiling() {
        let asked = RequestLimits {
            max_duration: Some(TextDuration(Duration::from_secs(7200))),
            ..RequestLimits::default()
        };
        let err = resolve(&asked, &defaults(), &ceilings()).unwrap_err();
        assert_eq!(
            err.message,
            "max_duration 2h is above the ceiling capture.ceilings.max_duration = 1h"
        );
        let asked = RequestLimits {
            max_bps: Some(Size(1 << 30)),
            ..RequestLimits::default()
        };
        assert!(
            resolve(&asked, &defaults(), &ceilings())
                .unwrap_err()
                .message
                .contains("capture.ceilings.max_bps")
        );
        let zero = RequestLimits {
            max_packets: Some(0),
            ..RequestLimits::default()
        };
        assert!(resolve(&zero, &defaults(), &ceilings()).is_err());
    }
}
