//! Validated identifiers. A device serial becomes part of store keys (`devices/<serial>/...`), so
//! it is checked once here and nothing unchecked ever reaches a path.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest accepted device serial, in bytes.
pub const MAX_SERIAL_LEN: usize = 64;

/// A device serial: 1 to 64 characters from `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Serial(String);

impl Serial {
    /// Checks `s` and wraps it; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<Self, String> {
        check_id(s, MAX_SERIAL_LEN).map(|()| Serial(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks an identifier that may become a path component: non-empty, at most `max` bytes,
/// only `A-Z a-z 0-9 . _ -`, and not starting with `.` or `-`.
pub fn check_id(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty".to_owned());
    }
    if s.len() > max {
        return Err(format!(
            "is {} bytes long, at most {max} are allowed",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "contains {c:?}; only letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    if s.starts_with(['.', '-']) {
        return Err("must start with a letter or digit".to_owned());
    }
    Ok(())
}

impl TryFrom<String> for Serial {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        check_id(&s, MAX_SERIAL_LEN)
            .map(|()| Serial(s))
            .map_err(|e| format!("device serial {e}"))
    }
}

impl From<Serial> for String {
    fn from(s: Serial) -> String {
        s.0
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_accepts_plain_ids_and_refuses_path_tricks() {
        assert!(Serial::parse("PA-0001").is_ok());
        assert!(Serial::parse("fw.lab_2").is_ok());
        for bad in [
            "",
            "..",
            "../etc",
            "a/b",
            ".hidden",
            "-x",
            "a b",
            "é",
            &"x".repeat(65),
        ] {
            assert!(Serial::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
