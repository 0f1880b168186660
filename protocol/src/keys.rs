//! Ed25519 key files and key ids.
//!
//! Key file format (what `pcap-portal keygen` writes, and what `openssl genpkey -algorithm
//! ed25519` / `openssl pkey -pubout` also produce):
//!
//! ```text
//! private key: PEM block "PRIVATE KEY" holding a PKCS#8 (v1 or v2) Ed25519 key, file mode 0600
//! public key:  PEM block "PUBLIC KEY"  holding an X.509 SubjectPublicKeyInfo for Ed25519
//! key id:      lowercase hex of SHA-256 over the 32 raw public key bytes (64 digits)
//! ```

use std::fmt;
use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::error::KeyError;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 }, BIT STRING (32 bytes) }. The raw key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const PUBLIC_KEY_LEN: usize = 32;
const PRIVATE_TAG: &str = "PRIVATE KEY";
const PUBLIC_TAG: &str = "PUBLIC KEY";

/// The id of a public key: lowercase hex of its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    fn of(public: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, public);
        KeyId(hex(digest.as_ref()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A private Ed25519 key that signs documents.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
    id: KeyId,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("id", &self.id).finish()
    }
}

impl SigningKey {
    /// Generates a new key from the system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let doc =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Random)?;
        Self::from_pkcs8(doc.as_ref().to_vec(), Path::new("<generated>"))
    }

    fn from_pkcs8(pkcs8: Vec<u8>, path: &Path) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).map_err(|e| {
            KeyError::NotEd25519 {
                path: path.to_owned(),
                reason: e.to_string(),
            }
        })?;
        let id = KeyId::of(pair.public_key().as_ref());
        Ok(SigningKey { pair, pkcs8, id })
    }

    /// Reads a private key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = read(path)?;
        let der = decode_pem(&text, PRIVATE_TAG, path)?;
        Self::from_pkcs8(der, path)
    }

    /// The PEM text of this key, for a 0600 file.
    pub fn to_pem(&self) -> String {
        pem::encode(&pem::Pem::new(PRIVATE_TAG, self.pkcs8.clone()))
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The matching public key.
    pub fn verify_key(&self) -> VerifyKey {
        VerifyKey::from_raw(self.pair.public_key().as_ref())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// A public Ed25519 key that verifies documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyKey {
    raw: [u8; PUBLIC_KEY_LEN],
    id: KeyId,
}

impl VerifyKey {
    fn from_raw(raw: &[u8]) -> Self {
        let mut key = [0u8; PUBLIC_KEY_LEN];
        key.copy_from_slice(&raw[..PUBLIC_KEY_LEN]);
        VerifyKey {
            raw: key,
            id: KeyId::of(&key),
        }
    }

    /// Reads a public key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = read(path)?;
        Self::from_pem(&text, path)
    }

    /// Parses the PEM text of a public key; `path` only names it in errors.
    pub fn from_pem(text: &str, path: &Path) -> Result<Self, KeyError> {
        let der = decode_pem(text, PUBLIC_TAG, path)?;
        match der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
            Some(raw) if raw.len() == PUBLIC_KEY_LEN => Ok(Self::from_raw(raw)),
            _ => Err(KeyError::NotEd25519 {
                path: path.to_owned(),
                reason: "the SubjectPublicKeyInfo is not an Ed25519 key (OID 1.3.101.112)".into(),
            }),
        }
    }

    /// The PEM text of this key.
    pub fn to_pem(&self) -> String {
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.raw);
        pem::encode(&pem::Pem::new(PUBLIC_TAG, der))
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.raw)
            .verify(message, signature)
            .is_ok()
    }
}

/// The set of keys a verifier trusts for one kind of document (several during a key rotation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyKeys(Vec<VerifyKey>);

impl VerifyKeys {
    pub fn new(keys: Vec<VerifyKey>) -> Self {
        VerifyKeys(keys)
    }

    /// Reads every key file; the first unreadable one is the error.
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<Self, KeyError> {
        paths
            .iter()
            .map(|p| VerifyKey::load(p.as_ref()))
            .collect::<Result<_, _>>()
            .map(VerifyKeys)
    }

    pub fn find(&self, id: &str) -> Option<&VerifyKey> {
        self.0.iter().find(|k| k.id.as_str() == id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &KeyId> {
        self.0.iter().map(|k| &k.id)
    }
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })
}

fn decode_pem(text: &str, tag: &'static str, path: &Path) -> Result<Vec<u8>, KeyError> {
    let block = pem::parse(text).map_err(|source| KeyError::Pem {
        path: path.to_owned(),
        source,
    })?;
    if block.tag() != tag {
        return Err(KeyError::WrongBlock {
            path: path.to_owned(),
            expected: tag,
            found: block.tag().to_owned(),
        });
    }
    Ok(block.into_contents())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip_through_pem() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::load_from_str_for_test(&key.to_pem());
        assert_eq!(again.id(), key.id());
        let public = key.verify_key();
        let parsed = VerifyKey::from_pem(&public.to_pem(), Path::new("t")).unwrap();
        assert_eq!(parsed, public);
        assert_eq!(parsed.id().as_str().len(), 64);
    }

    #[test]
    fn a_private_key_is_not_accepted_as_a_public_key() {
        let key = SigningKey::generate().unwrap();
        let err = VerifyKey::from_pem(&key.to_pem(), Path::new("k.pub")).unwrap_err();
        assert!(matches!(err, KeyError::WrongBlock { .. }), "{err}");
    }

    impl SigningKey {
        fn load_from_str_for_test(text: &str) -> Self {
            let der = decode_pem(text, PRIVATE_TAG, Path::new("t")).unwrap();
            Self::from_pkcs8(der, Path::new("t")).unwrap()
        }
    }
}
