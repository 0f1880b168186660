//! The signed envelope: `{"payload": base64, "key_id": hex, "signature": base64}`.
//!
//! The signature is Ed25519 over the exact payload bytes, so verification needs no canonical
//! JSON: what was signed is what is parsed. Decoding is strict everywhere: unknown envelope fields,
//! non-canonical base64 and upper-case key ids are refused, so that no altered envelope verifies.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::VerifyError;
use crate::keys::{SigningKey, VerifyKeys};
use crate::schema::Document;

/// Largest envelope accepted, in bytes; documents are a few hundred bytes.
pub const MAX_ENVELOPE_LEN: usize = 256 * 1024;

/// A signed document as stored in a file or object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub payload: String,
    pub key_id: String,
    pub signature: String,
}

impl Envelope {
    /// Serializes `doc` to JSON and signs those exact bytes.
    pub fn sign<T: Serialize>(doc: &T, key: &SigningKey) -> Self {
        // Serializing plain data structs to a Vec cannot fail.
        let payload = serde_json::to_vec(doc).unwrap_or_default();
        let signature = key.sign(&payload);
        Envelope {
            payload: STANDARD.encode(&payload),
            key_id: key.id().as_str().to_owned(),
            signature: STANDARD.encode(signature),
        }
    }

    /// Parses envelope JSON (at most [`MAX_ENVELOPE_LEN`] bytes).
    pub fn parse(bytes: &[u8]) -> Result<Self, VerifyError> {
        if bytes.len() > MAX_ENVELOPE_LEN {
            return Err(VerifyError::Inconsistent {
                reason: format!(
                    "the envelope is {} bytes, more than the {MAX_ENVELOPE_LEN} allowed",
                    bytes.len()
                ),
            });
        }
        serde_json::from_slice(bytes).map_err(|source| VerifyError::Envelope { source })
    }

    /// The envelope as pretty JSON with a trailing newline, as written to files and the store.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Checks the signature under one of `keys` and returns the payload bytes it covers.
    pub fn verify(&self, keys: &VerifyKeys) -> Result<Vec<u8>, VerifyError> {
        let id_ok = self.key_id.len() == 64
            && self
                .key_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !id_ok {
            return Err(VerifyError::MalformedKeyId {
                key_id: self.key_id.chars().take(80).collect(),
            });
        }
        let key = keys
            .find(&self.key_id)
            .ok_or_else(|| VerifyError::UnknownKey {
                key_id: self.key_id.clone(),
            })?;
        let payload = decode("payload", &self.payload)?;
        let signature = decode("signature", &self.signature)?;
        if !key.verify(&payload, &signature) {
            return Err(VerifyError::BadSignature {
                key_id: self.key_id.clone(),
            });
        }
        Ok(payload)
    }

    /// Verifies, then parses the payload as `T` (refusing a newer major schema version).
    pub fn open<T: Document>(&self, keys: &VerifyKeys) -> Result<T, VerifyError> {
        let payload = self.verify(keys)?;
        Ok(crate::schema::decode(&payload)?)
    }

    /// Parses the payload as `T` without checking the signature. Only for tools that need a
    /// document's sequence or serial to issue the next one; never for a decision to trust it.
    pub fn peek<T: Document>(&self) -> Result<T, VerifyError> {
        let payload = decode("payload", &self.payload)?;
        Ok(crate::schema::decode(&payload)?)
    }
}

fn decode(field: &'static str, text: &str) -> Result<Vec<u8>, VerifyError> {
    STANDARD
        .decode(text)
        .map_err(|source| VerifyError::Base64 { field, source })
}
