//! Signing and strict verification of authorization documents.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use pcap_protocol::{
    AuthorizationDocument, DocumentError, Envelope, Grant, Period, Revocation, Serial, SigningKey,
    VerifyError, VerifyKeys,
};
use proptest::prelude::*;

fn serial() -> Serial {
    Serial::parse("PA-0001").unwrap()
}

fn now() -> Timestamp {
    "2026-01-31T10:00:00Z".parse().unwrap()
}

fn signed_grant(key: &SigningKey, period: Period) -> Vec<u8> {
    let grant = Grant::new(serial(), Some("lab-fw".into()), period, 7, now());
    Envelope::sign(&AuthorizationDocument::Grant(grant), key).to_json()
}

fn keys(key: &SigningKey) -> VerifyKeys {
    VerifyKeys::new(vec![key.verify_key()])
}

#[test]
fn signed_grant_round_trips_through_verification() {
    let key = SigningKey::generate().unwrap();
    let doc = AuthorizationDocument::verify(
        &signed_grant(&key, Period::OneMonth),
        &keys(&key),
        &serial(),
    )
    .unwrap();
    let AuthorizationDocument::Grant(g) = doc else {
        panic!("not a grant")
    };
    assert_eq!(g.sequence, 7);
    assert_eq!(g.name.as_deref(), Some("lab-fw"));
    // One calendar month from Jan 31 is the last day of February.
    assert_eq!(g.expires_at, Some("2026-02-28T10:00:00Z".parse().unwrap()));
}

#[test]
fn revocation_round_trips_and_unlimited_never_expires() {
    let key = SigningKey::generate().unwrap();
    let rev = AuthorizationDocument::Revocation(Revocation::new(serial(), 9, now()));
    let bytes = Envelope::sign(&rev, &key).to_json();
    assert_eq!(
        AuthorizationDocument::verify(&bytes, &keys(&key), &serial()).unwrap(),
        rev
    );
    assert_eq!(Period::Unlimited.expires_at(now()), None);
    assert_eq!(
        Period::ThreeMonths.expires_at(now()),
        Some("2026-04-30T10:00:00Z".parse().unwrap())
    );
}

#[test]
fn a_document_signed_by_another_key_is_refused() {
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    let err = AuthorizationDocument::verify(
        &signed_grant(&other, Period::OneMonth),
        &keys(&key),
        &serial(),
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::UnknownKey { .. }), "{err}");
}

#[test]
fn a_forged_key_id_does_not_help_another_key() {
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    let mut env = Envelope::parse(&signed_grant(&other, Period::OneMonth)).unwrap();
    env.key_id = key.id().to_string();
    let err = AuthorizationDocument::verify(&env.to_json(), &keys(&key), &serial()).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { .. }), "{err}");
}

#[test]
fn a_flipped_bit_in_payload_or_signature_is_refused() {
    let key = SigningKey::generate().unwrap();
    let env = Envelope::parse(&signed_grant(&key, Period::OneMonth)).unwrap();
    for field in ["payload", "signature"] {
        let mut bad = env.clone();
        let text = if field == "payload" {
            &mut bad.payload
        } else {
            &mut bad.signature
        };
        let mut raw = STANDARD.decode(&*text).unwrap();
        raw[3] ^= 0x01;
        *text = STANDARD.encode(raw);
        let err =
            AuthorizationDocument::verify(&bad.to_json(), &keys(&key), &serial()).unwrap_err();
        assert!(
            matches!(err, VerifyError::BadSignature { .. }),
            "{field}: {err}"
        );
    }
}

#[test]
fn a_truncated_envelope_is_refused_as_malformed_json() {
    let key = SigningKey::generate().unwrap();
    let bytes = signed_grant(&key, Period::OneMonth);
    let err = AuthorizationDocument::verify(&bytes[..bytes.len() / 2], &keys(&key), &serial())
        .unwrap_err();
    assert!(matches!(err, VerifyError::Envelope { .. }), "{err}");
}

#[test]
fn a_grant_for_another_serial_is_refused() {
    let key = SigningKey::generate().unwrap();
    let err = AuthorizationDocument::verify(
        &signed_grant(&key, Period::OneMonth),
        &keys(&key),
        &Serial::parse("PA-0002").unwrap(),
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::SerialMismatch { .. }), "{err}");
}

#[test]
fn unknown_fields_and_bad_base64_get_typed_errors() {
    let key = SigningKey::generate().unwrap();
    let env = Envelope::parse(&signed_grant(&key, Period::OneMonth)).unwrap();

    let extra = format!(
        r#"{{"payload":"{}","key_id":"{}","signature":"{}","note":"x"}}"#,
        env.payload, env.key_id, env.signature
    );
    let err = AuthorizationDocument::verify(extra.as_bytes(), &keys(&key), &serial()).unwrap_err();
    assert!(matches!(err, VerifyError::Envelope { .. }), "{err}");

    let mut bad = env.clone();
    bad.signature.insert(5, '*');
    let err = AuthorizationDocument::verify(&bad.to_json(), &keys(&key), &serial()).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Base64 {
                field: "signature",
                ..
            }
        ),
        "{err}"
    );

    // A payload with an unknown field, validly signed, is still refused.
    let payload = br#"{"type":"revocation","serial":"PA-0001","sequence":1,"issued_at":"2026-01-01T00:00:00Z","extra":1}"#;
    let signed = sign_raw(&key, payload);
    let err = AuthorizationDocument::verify(&signed, &keys(&key), &serial()).unwrap_err();
    assert!(
        matches!(err, VerifyError::Document(DocumentError::Invalid { .. })),
        "{err}"
    );
}

#[test]
fn a_document_of_a_newer_major_schema_is_refused_saying_so() {
    let key = SigningKey::generate().unwrap();
    let payload = br#"{"type":"revocation","schema":"2.0","serial":"PA-0001","sequence":1,"issued_at":"2026-01-01T00:00:00Z","scope":"all"}"#;
    let err = AuthorizationDocument::verify(&sign_raw(&key, payload), &keys(&key), &serial())
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Document(DocumentError::NewerSchema { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("schema 2.0"), "{err}");
    // A document written before schema versions existed is version 1.0.
    let old = br#"{"type":"revocation","serial":"PA-0001","sequence":1,"issued_at":"2026-01-01T00:00:00Z"}"#;
    assert!(AuthorizationDocument::verify(&sign_raw(&key, old), &keys(&key), &serial()).is_ok());
}

#[test]
fn an_inconsistent_grant_is_refused_even_when_signed() {
    let key = SigningKey::generate().unwrap();
    let payload = br#"{"type":"grant","grant_id":"01934b5e-0000-7000-8000-000000000000","serial":"PA-0001","period":"1m","not_before":"2026-01-01T00:00:00Z","expires_at":null,"sequence":1,"issued_at":"2026-01-01T00:00:00Z"}"#;
    let err = AuthorizationDocument::verify(&sign_raw(&key, payload), &keys(&key), &serial())
        .unwrap_err();
    assert!(matches!(err, VerifyError::Inconsistent { .. }), "{err}");
}

/// Signs arbitrary payload bytes, as a key holder could.
fn sign_raw(key: &SigningKey, payload: &[u8]) -> Vec<u8> {
    let doc: serde_json::Value = serde_json::from_slice(payload).unwrap();
    // Envelope::sign serializes the value; serde_json keeps the map's order and content.
    Envelope::sign(&doc, key).to_json()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn no_single_byte_mutation_of_a_valid_envelope_verifies(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let key = SigningKey::generate().unwrap();
        let mut bytes = Envelope::sign(
            &AuthorizationDocument::Grant(Grant::new(serial(), None, Period::OneMonth, 1, now())),
            &key,
        ).to_json();
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        // Whitespace between JSON tokens carries no meaning; only mutations of the content count.
        prop_assume!(!(bytes[i].is_ascii_whitespace() && byte.is_ascii_whitespace()));
        bytes[i] = byte;
        let verdict = AuthorizationDocument::verify(&bytes, &keys(&key), &serial());
        prop_assert!(verdict.is_err(), "mutation at {} to {:#x} verified", i, byte);
    }
}
