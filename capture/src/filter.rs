//! BPF filters: checked before a request is accepted, and combined with the agent's exclusions
//! so that a capture never contains the agent's own upload traffic.

use pcap::{Capture, Linktype};

/// Longest accepted filter expression, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("the filter is {len} characters long; at most {MAX_FILTER_LEN} are allowed")]
    TooLong { len: usize },
    #[error(
        "the filter has a non-printable or non-ASCII character at position {position}; only printable ASCII is allowed"
    )]
    BadCharacter { position: usize },
    #[error("the filter {filter:?} does not compile: {message}")]
    Invalid { filter: String, message: String },
}

/// Checks `filter`: length, characters, and that libpcap compiles it for `linktype`.
pub fn validate(filter: &str, linktype: Linktype) -> Result<(), FilterError> {
    if filter.len() > MAX_FILTER_LEN {
        return Err(FilterError::TooLong { len: filter.len() });
    }
    if let Some(position) = filter.bytes().position(|b| !(0x20..=0x7e).contains(&b)) {
        return Err(FilterError::BadCharacter { position });
    }
    compile(filter, linktype)
}

/// Compiles `filter` with libpcap for `linktype`, without a device.
pub fn compile(filter: &str, linktype: Linktype) -> Result<(), FilterError> {
    let invalid = |message: String| FilterError::Invalid {
        filter: filter.chars().take(200).collect(),
        message,
    };
    let dead = Capture::dead(linktype).map_err(|e| invalid(e.to_string()))?;
    dead.compile(filter, true)
        .map(drop)
        .map_err(|e| invalid(message(e)))
}

/// libpcap's own text of an error.
pub fn message(e: pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m,
        other => other.to_string(),
    }
}

/// The filter actually installed: `not (<exclusions>) and (<requested>)`, or the parts that
/// exist.
pub fn effective(requested: &str, exclusions: &[String]) -> String {
    let requested = requested.trim();
    let excluded: Vec<String> = exclusions
        .iter()
        .filter(|e| !e.trim().is_empty())
        .map(|e| format!("({})", e.trim()))
        .collect();
    match (excluded.is_empty(), requested.is_empty()) {
        (true, _) => requested.to_owned(),
        (false, true) => format!("not ({})", excluded.join(" or ")),
        (false, false) => format!("not ({}) and ({requested})", excluded.join(" or ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_filters_compile_and_invalid_ones_carry_libpcaps_message() {
        assert!(validate("udp and host 10.1.2.3", Linktype::ETHERNET).is_ok());
        assert!(validate("", Linktype::ETHERNET).is_ok());
        let err = validate("udp and hots 10.1.2.3", Linktype::ETHERNET).unwrap_err();
        assert!(matches!(err, FilterError::Invalid { .. }), "{err}");
        assert!(
            err.to_string().contains("syntax error") || err.to_string().contains("hots"),
            "{err}"
        );
        assert_eq!(
            validate(&"a".repeat(5000), Linktype::ETHERNET),
            Err(FilterError::TooLong { len: 5000 })
        );
        assert_eq!(
            validate("udp\nor tcp", Linktype::ETHERNET),
            Err(FilterError::BadCharacter { position: 3 })
        );
    }

    #[test]
    fn the_effective_filter_excludes_the_agents_own_traffic() {
        let excl = vec![
            "host 127.0.0.1 and tcp port 9000".to_owned(),
            "port 22".to_owned(),
        ];
        assert_eq!(
            effective("udp", &excl),
            "not ((host 127.0.0.1 and tcp port 9000) or (port 22)) and (udp)"
        );
        assert_eq!(
            effective("", &excl),
            "not ((host 127.0.0.1 and tcp port 9000) or (port 22))"
        );
        assert_eq!(effective("udp", &[]), "udp");
        assert!(validate(&effective("udp", &excl), Linktype::ETHERNET).is_ok());
    }
}
