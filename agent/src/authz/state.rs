//! The five authorization states and how a document and the time decide between them. Pure:
//! no I/O and no clock of its own, so every case is a plain function call in tests.

use jiff::Timestamp;
pub use pcap_protocol::AuthState;
use pcap_protocol::{Grant, Validity};
use serde::{Deserialize, Serialize};

/// The accepted document the state rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    Nothing,
    Grant(Grant),
    /// Revoked by the document with this sequence.
    Revoked {
        sequence: u64,
    },
}

/// The state at `now`, and when it will next change by itself (`None`: not by time alone).
pub fn evaluate(basis: &Basis, now: Timestamp) -> (AuthState, Option<Timestamp>) {
    match basis {
        Basis::Nothing => (AuthState::Unauthorized, None),
        Basis::Revoked { .. } => (AuthState::Revoked, None),
        Basis::Grant(g) => match g.validity_at(now) {
            Validity::NotYetValid => (AuthState::NotYetValid, Some(g.not_before)),
            Validity::InForce => (AuthState::Authorized, g.expires_at),
            Validity::Expired => (AuthState::Expired, None),
        },
    }
}

/// What the agent reports about its authorization (`GET /v1/authorization`, the watch channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthStatus {
    pub state: AuthState,
    /// When this state was entered.
    pub since: Timestamp,
    /// The grant behind the state, if one was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<Grant>,
    /// Sequence of the document the state rests on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// Why the agent is not authorized, or why the last document was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The highest sequence this device ever accepted (its ledger): a new document must be
    /// above it, whatever the store holds now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highest_sequence: Option<u64>,
}

impl AuthStatus {
    pub fn is_authorized(&self) -> bool {
        self.state == AuthState::Authorized
    }

    /// The status before anything has been read.
    pub fn initial(now: Timestamp) -> Self {
        AuthStatus {
            state: AuthState::Unauthorized,
            since: now,
            grant: None,
            sequence: None,
            reason: Some("the grant has not been read yet".to_owned()),
            highest_sequence: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_protocol::{Period, Serial};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn grant(period: Period, start: &str) -> Basis {
        Basis::Grant(Grant::new(
            Serial::parse("PA-1").unwrap(),
            None,
            period,
            1,
            ts(start),
        ))
    }

    #[test]
    fn a_month_grant_is_not_yet_valid_then_authorized_then_expired() {
        let g = grant(Period::OneMonth, "2026-03-01T00:00:00Z");
        assert_eq!(
            evaluate(&g, ts("2026-02-28T23:59:59Z")),
            (AuthState::NotYetValid, Some(ts("2026-03-01T00:00:00Z")))
        );
        assert_eq!(
            evaluate(&g, ts("2026-03-01T00:00:00Z")),
            (AuthState::Authorized, Some(ts("2026-04-01T00:00:00Z")))
        );
        assert_eq!(
            evaluate(&g, ts("2026-04-01T00:00:00Z")),
            (AuthState::Expired, None)
        );
    }

    #[test]
    fn an_unlimited_grant_never_expires() {
        let g = grant(Period::Unlimited, "2026-03-01T00:00:00Z");
        assert_eq!(
            evaluate(&g, ts("2099-01-01T00:00:00Z")),
            (AuthState::Authorized, None)
        );
    }

    #[test]
    fn nothing_and_revoked_do_not_change_with_time() {
        assert_eq!(
            evaluate(&Basis::Nothing, ts("2026-01-01T00:00:00Z")),
            (AuthState::Unauthorized, None)
        );
        assert_eq!(
            evaluate(&Basis::Revoked { sequence: 4 }, ts("2026-01-01T00:00:00Z")),
            (AuthState::Revoked, None)
        );
    }
}
