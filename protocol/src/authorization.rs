//! The customer's authorization documents: a `Grant` allows captures on one device for a period;
//! a `Revocation` withdraws it. Every document for a device carries a `sequence` that increases
//! with each document the administrator issues, so the newest one wins and an older one cannot be
//! replayed.

use std::fmt;
use std::str::FromStr;

use jiff::{Timestamp, ToSpan, tz::TimeZone};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::Envelope;
use crate::error::VerifyError;
use crate::ids::Serial;
use crate::keys::{VerifyKeys, hex};
use crate::schema::{Document, Schema};

/// Longest accepted device name, in characters.
pub const MAX_NAME_LEN: usize = 128;

/// Whether `name` may be a device name: at most [`MAX_NAME_LEN`] printable characters.
pub fn is_valid_name(name: &str) -> bool {
    name.chars().count() <= MAX_NAME_LEN && !name.chars().any(char::is_control)
}

/// Whether captures may run on a device, and if not, why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthState {
    /// No valid grant: none exists, or the one there was refused.
    Unauthorized,
    /// A valid grant whose `not_before` is still ahead.
    NotYetValid,
    /// A valid grant in force.
    Authorized,
    /// A valid grant whose `expires_at` has passed.
    Expired,
    /// The customer withdrew the authorization.
    Revoked,
}

impl AuthState {
    pub const ALL: [AuthState; 5] = [
        AuthState::Unauthorized,
        AuthState::NotYetValid,
        AuthState::Authorized,
        AuthState::Expired,
        AuthState::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthState::Unauthorized => "unauthorized",
            AuthState::NotYetValid => "not_yet_valid",
            AuthState::Authorized => "authorized",
            AuthState::Expired => "expired",
            AuthState::Revoked => "revoked",
        }
    }
}

impl fmt::Display for AuthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How long a grant lasts: one or three calendar months from `not_before`, or without end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Period {
    #[serde(rename = "1m")]
    OneMonth,
    #[serde(rename = "3m")]
    ThreeMonths,
    #[serde(rename = "unlimited")]
    Unlimited,
}

impl Period {
    /// When a grant of this period starting at `from` ends (`None`: never). Months are calendar
    /// months in UTC, clamped to the month's last day (Jan 31 + 1m = Feb 28 or 29).
    pub fn expires_at(self, from: Timestamp) -> Option<Timestamp> {
        let months = match self {
            Period::OneMonth => 1,
            Period::ThreeMonths => 3,
            Period::Unlimited => return None,
        };
        // Adding at most 3 months to a valid timestamp stays within jiff's range except at the
        // very end of it; saturate there rather than fail.
        Some(
            from.to_zoned(TimeZone::UTC)
                .checked_add(months.months())
                .map(|z| z.timestamp())
                .unwrap_or(Timestamp::MAX),
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::OneMonth => "1m",
            Period::ThreeMonths => "3m",
            Period::Unlimited => "unlimited",
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "1m" => Ok(Period::OneMonth),
            "3m" => Ok(Period::ThreeMonths),
            "unlimited" => Ok(Period::Unlimited),
            other => Err(format!(
                "{other:?} is not a period; use 1m, 3m or unlimited"
            )),
        }
    }
}

/// Permission to capture on one device from `not_before` until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    #[serde(default)]
    pub schema: Schema,
    pub grant_id: Uuid,
    pub serial: Serial,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub period: Period,
    pub not_before: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub sequence: u64,
    pub issued_at: Timestamp,
}

impl Grant {
    /// A grant for `period` starting at `now` (rounded down to the second).
    pub fn new(
        serial: Serial,
        name: Option<String>,
        period: Period,
        sequence: u64,
        now: Timestamp,
    ) -> Self {
        let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
        Grant {
            schema: AuthorizationDocument::SCHEMA,
            grant_id: Uuid::now_v7(),
            serial,
            name,
            period,
            not_before: now,
            expires_at: period.expires_at(now),
            sequence,
            issued_at: now,
        }
    }
}

/// Where a moment lies relative to a grant's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Before `not_before`.
    NotYetValid,
    /// From `not_before` up to (not including) `expires_at`.
    InForce,
    /// At or after `expires_at`.
    Expired,
}

impl Grant {
    /// Whether the grant is in force at `now`.
    pub fn validity_at(&self, now: Timestamp) -> Validity {
        if now < self.not_before {
            Validity::NotYetValid
        } else if self.expires_at.is_some_and(|end| now >= end) {
            Validity::Expired
        } else {
            Validity::InForce
        }
    }
}

/// Withdrawal of every earlier grant for a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    #[serde(default)]
    pub schema: Schema,
    pub serial: Serial,
    pub sequence: u64,
    pub issued_at: Timestamp,
}

/// What a grant document in a file or the store may hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuthorizationDocument {
    Grant(Grant),
    Revocation(Revocation),
}

impl Document for AuthorizationDocument {
    const KIND: &'static str = "grant or revocation";
    const SCHEMA: Schema = Schema::V1_0;
}

impl Revocation {
    /// A revocation of every grant of `serial` up to `sequence - 1`.
    pub fn new(serial: Serial, sequence: u64, now: Timestamp) -> Self {
        Revocation {
            schema: AuthorizationDocument::SCHEMA,
            serial,
            sequence,
            issued_at: now,
        }
    }
}

impl AuthorizationDocument {
    pub fn serial(&self) -> &Serial {
        match self {
            AuthorizationDocument::Grant(g) => &g.serial,
            AuthorizationDocument::Revocation(r) => &r.serial,
        }
    }

    pub fn sequence(&self) -> u64 {
        match self {
            AuthorizationDocument::Grant(g) => g.sequence,
            AuthorizationDocument::Revocation(r) => r.sequence,
        }
    }

    /// Parses envelope bytes, verifies the signature under `keys`, parses the document, and
    /// checks that it is consistent and meant for `serial`.
    pub fn verify(bytes: &[u8], keys: &VerifyKeys, serial: &Serial) -> Result<Self, VerifyError> {
        Self::verify_with_digest(bytes, keys, serial).map(|(doc, _)| doc)
    }

    /// As [`Self::verify`], also returning the lowercase hex SHA-256 of the signed payload,
    /// which identifies the document whatever whitespace surrounds its envelope.
    pub fn verify_with_digest(
        bytes: &[u8],
        keys: &VerifyKeys,
        serial: &Serial,
    ) -> Result<(Self, String), VerifyError> {
        let payload = Envelope::parse(bytes)?.verify(keys)?;
        let doc: Self = crate::schema::decode(&payload)?;
        doc.check()?;
        if doc.serial() != serial {
            return Err(VerifyError::SerialMismatch {
                expected: serial.to_string(),
                found: doc.serial().to_string(),
            });
        }
        let digest = hex(ring::digest::digest(&ring::digest::SHA256, &payload).as_ref());
        Ok((doc, digest))
    }

    /// Checks what the signature cannot: that the fields agree with each other.
    pub fn check(&self) -> Result<(), VerifyError> {
        let AuthorizationDocument::Grant(g) = self else {
            return Ok(());
        };
        let inconsistent = |reason: String| Err(VerifyError::Inconsistent { reason });
        if let Some(name) = g.name.as_deref().filter(|n| !is_valid_name(n)) {
            return inconsistent(format!(
                "the device name {name:?} is not at most {MAX_NAME_LEN} printable characters"
            ));
        }
        match (g.period, g.expires_at) {
            (Period::Unlimited, Some(_)) => inconsistent("an unlimited grant has an expiry".into()),
            (Period::Unlimited, None) => Ok(()),
            (_, None) => inconsistent(format!("a {} grant has no expiry", g.period)),
            (_, Some(end)) if end <= g.not_before => inconsistent(format!(
                "the grant expires ({end}) before it starts ({})",
                g.not_before
            )),
            (_, Some(_)) => Ok(()),
        }
    }
}
