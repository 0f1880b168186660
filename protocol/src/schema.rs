//! Schema versions of the documents that travel through the store.
//!
//! Every document carries `"schema": "MAJOR.MINOR"`. A minor version adds optional fields that
//! older readers may ignore; a major version changes what existing fields mean. A reader takes
//! every minor version of the majors it knows and refuses a newer major with a message that
//! says so, instead of misreading the document. A document without `schema` was written before
//! versions existed and is read as 1.0.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// A schema version, written `"1.0"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Schema {
    pub major: u16,
    pub minor: u16,
}

impl Schema {
    /// The first version of every document, and what a document without `schema` is read as.
    pub const V1_0: Schema = Schema { major: 1, minor: 0 };
    /// 1.1: the heartbeat says how the device hears of new documents (`channel`).
    pub const V1_1: Schema = Schema { major: 1, minor: 1 };

    /// For `#[serde(default = "Schema::initial")]`.
    pub fn initial() -> Self {
        Self::V1_0
    }
}

impl Default for Schema {
    fn default() -> Self {
        Self::V1_0
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl std::str::FromStr for Schema {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a schema version (MAJOR.MINOR, e.g. \"1.0\")");
        let (major, minor) = s.split_once('.').ok_or_else(bad)?;
        Ok(Schema {
            major: major.parse().map_err(|_| bad())?,
            minor: minor.parse().map_err(|_| bad())?,
        })
    }
}

impl Serialize for Schema {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Every record carries one: single digits are written without the formatter.
        if let (Ok(major @ 0..=9), Ok(minor @ 0..=9)) =
            (u8::try_from(self.major), u8::try_from(self.minor))
            && let Ok(text) = std::str::from_utf8(&[b'0' + major, b'.', b'0' + minor])
        {
            return s.serialize_str(text);
        }
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Schema {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// A document with a versioned schema.
pub trait Document: Serialize + DeserializeOwned {
    /// What the document is called in messages (`"heartbeat"`).
    const KIND: &'static str;
    /// The version this build writes. It reads every version with the same major.
    const SCHEMA: Schema;
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error(
        "the {kind} is written in schema {found}, newer than the {supported} this program reads; upgrade this program to read it"
    )]
    NewerSchema {
        kind: &'static str,
        found: Schema,
        supported: Schema,
    },
    #[error("the {kind} is not a valid {kind} document: {source}")]
    Invalid {
        kind: &'static str,
        source: serde_json::Error,
    },
}

/// Only the version, whatever else the document holds.
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    schema: Option<Schema>,
}

/// Checks that `bytes` are in a schema version this build reads, without parsing the rest.
pub fn check<T: Document>(bytes: &[u8]) -> Result<(), DocumentError> {
    let invalid = |source| DocumentError::Invalid {
        kind: T::KIND,
        source,
    };
    let found = serde_json::from_slice::<Probe>(bytes)
        .map_err(invalid)?
        .schema
        .unwrap_or(Schema::V1_0);
    if found.major > T::SCHEMA.major {
        return Err(DocumentError::NewerSchema {
            kind: T::KIND,
            found,
            supported: T::SCHEMA,
        });
    }
    Ok(())
}

/// Reads a document: refuses a newer major version, then parses.
pub fn decode<T: Document>(bytes: &[u8]) -> Result<T, DocumentError> {
    check::<T>(bytes)?;
    serde_json::from_slice(bytes).map_err(|source| DocumentError::Invalid {
        kind: T::KIND,
        source,
    })
}

/// Writes a document as pretty JSON with a trailing newline, as files and the store hold it.
pub fn encode<T: Document>(doc: &T) -> Vec<u8> {
    // Serializing plain data structs to a Vec cannot fail.
    let mut out = serde_json::to_vec_pretty(doc).unwrap_or_default();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Note {
        #[serde(default)]
        schema: Schema,
        text: String,
    }

    impl Document for Note {
        const KIND: &'static str = "note";
        const SCHEMA: Schema = Schema { major: 1, minor: 2 };
    }

    #[test]
    fn older_and_newer_minor_versions_are_read_and_a_newer_major_is_refused() {
        let read = |s: &str| decode::<Note>(s.as_bytes());
        assert_eq!(read(r#"{"text": "a"}"#).unwrap().schema, Schema::V1_0);
        assert!(read(r#"{"schema": "1.0", "text": "a"}"#).is_ok());
        assert!(read(r#"{"schema": "1.7", "text": "a", "added_in_1_7": 3}"#).is_ok());
        let newer = read(r#"{"schema": "2.0", "words": ["a"]}"#).unwrap_err();
        assert_eq!(
            newer.to_string(),
            "the note is written in schema 2.0, newer than the 1.2 this program reads; upgrade this program to read it"
        );
        assert!(read(r#"{"schema": "one", "text": "a"}"#).is_err());
    }

    #[test]
    fn a_document_round_trips_with_its_version_as_text() {
        let note = Note {
            schema: Note::SCHEMA,
            text: "a".into(),
        };
        let bytes = encode(&note);
        assert!(String::from_utf8_lossy(&bytes).contains("\"schema\": \"1.2\""));
        assert_eq!(decode::<Note>(&bytes).unwrap(), note);
    }
}
