//! Validated identifiers. Device serials, capture and request ids and file names become parts
//! of store keys (`devices/<serial>/...`, `captures/<serial>/<capture_id>/<file>`) and local
//! paths, so each is checked once, when it is made, and nothing unchecked reaches a key or a
//! path: a function that takes a [`CaptureId`] needs no check of its own.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest accepted identifier of any kind, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Longest accepted device serial, in bytes.
pub const MAX_SERIAL_LEN: usize = MAX_ID_LEN;

/// Why a text is not an identifier; `what` names the kind (`"capture id"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {text:?} {problem}")]
pub struct IdError {
    pub what: &'static str,
    /// The text, cut to 80 characters.
    pub text: String,
    pub problem: String,
}

/// Checks an identifier that may become a path component: non-empty, at most
/// [`MAX_ID_LEN`] bytes, only `A-Z a-z 0-9 . _ -`, and not starting with `.` or `-`.
fn check(what: &'static str, s: &str) -> Result<(), IdError> {
    let problem = if s.is_empty() {
        "is empty".to_owned()
    } else if s.len() > MAX_ID_LEN {
        format!(
            "is {} bytes long, at most {MAX_ID_LEN} are allowed",
            s.len()
        )
    } else if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        format!("contains {c:?}; only letters, digits, '.', '_' and '-' are allowed")
    } else if s.starts_with(['.', '-']) {
        "must start with a letter or digit".to_owned()
    } else {
        return Ok(());
    };
    Err(IdError {
        what,
        text: s.chars().take(80).collect(),
        problem,
    })
}

/// Defines an identifier newtype over `String`, checked by [`check`] when made or
/// deserialized.
macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// What this kind of identifier is called in messages.
            pub const WHAT: &'static str = $what;

            /// Checks `s` and wraps it; the error says what is wrong with it.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check($what, s).map(|()| $name(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                check($what, &s).map(|()| $name(s))
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            /// As written; widths and alignment (`{:<36}`) apply.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}

identifier!(
    /// A device serial: the name a device is authorized under.
    Serial,
    "device serial"
);

identifier!(
    /// A capture's id: a UUID v7 the agent makes when it accepts a request (so ids sort by
    /// time), the name of its spool directory and of its prefix in the store.
    CaptureId,
    "capture id"
);

identifier!(
    /// A remote request's id: a UUID v7 the portal makes, the name of the request's and its
    /// result's documents in the store.
    RequestId,
    "request id"
);

identifier!(
    /// The name of one file of a capture (`000001.pcap.age`, `sessions.json.age`,
    /// `manifest.json`), in the spool and in the store.
    FileName,
    "file name"
);

impl FileName {
    /// Suffix of a capture's pcap segments.
    pub const SEGMENT_SUFFIX: &'static str = ".pcap.age";
    /// The capture's session records (JSON lines, encrypted), sealed when it ends.
    pub const SESSIONS: &'static str = "sessions.json.age";
    /// The manifest: uploaded last, so its presence means the capture is complete.
    pub const MANIFEST: &'static str = "manifest.json";

    /// Segment `seq`: `000001.pcap.age`.
    pub fn segment(seq: u32) -> Self {
        FileName(format!("{seq:06}{}", Self::SEGMENT_SUFFIX))
    }

    pub fn sessions() -> Self {
        FileName(Self::SESSIONS.to_owned())
    }

    pub fn manifest() -> Self {
        FileName(Self::MANIFEST.to_owned())
    }

    /// Whether this is a pcap segment (not the session records or the manifest).
    pub fn is_segment(&self) -> bool {
        self.0.ends_with(Self::SEGMENT_SUFFIX)
    }

    pub fn is_manifest(&self) -> bool {
        self.0 == Self::MANIFEST
    }
}

impl CaptureId {
    /// A new id (UUID v7).
    pub fn generate() -> Self {
        CaptureId(uuid::Uuid::now_v7().to_string())
    }
}

impl RequestId {
    /// A new id (UUID v7).
    pub fn generate() -> Self {
        RequestId(uuid::Uuid::now_v7().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_plain_names_and_refuse_path_tricks() {
        assert!(Serial::parse("PA-0001").is_ok());
        assert!(Serial::parse("fw.lab_2").is_ok());
        assert!(CaptureId::parse(CaptureId::generate().as_str()).is_ok());
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
            assert!(FileName::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn ids_line_up_in_tables() {
        let serial = Serial::parse("PA-1").unwrap();
        assert_eq!(format!("[{serial:<6}]"), "[PA-1  ]");
    }

    #[test]
    fn an_error_names_the_kind_of_id_and_what_is_wrong() {
        let e = CaptureId::parse("../x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "capture id \"../x\" contains '/'; only letters, digits, '.', '_' and '-' are allowed"
        );
        let e = serde_json::from_str::<RequestId>("\"\"").unwrap_err();
        assert!(e.to_string().contains("request id \"\" is empty"), "{e}");
    }
}
