//! Sessions. A session id and its CSRF token are 32 random bytes each (ring's system random);
//! sessions live in memory, expire [`SESSION_LIFETIME`] after login, and each carries the
//! stamp of its account ([`crate::users::User::stamp`]) so that it ends when the account is
//! removed or its password changes. At most [`MAX_SESSIONS`] are kept; past it the oldest
//! tenth ends.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::users::Role;

/// How long a session lasts after login.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// The cookie that carries the session id.
pub const COOKIE: &str = "pcap_session";
/// Most sessions kept at once.
pub const MAX_SESSIONS: usize = 10_000;

/// A logged-in account.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: Role,
    /// The token every form that changes something must carry.
    pub csrf: String,
    /// The account's stamp when it logged in.
    pub stamp: String,
    expires: Instant,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
}

pub fn token() -> String {
    let mut bytes = [0u8; 32];
    // A system without randomness cannot serve logins at all.
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system's random source");
    pcap_protocol::keys::hex(&bytes)
}

/// Whether `given` is `expected`, in time that does not depend on where they differ.
pub fn same_token(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

impl Sessions {
    /// Starts a session for `user`, whose account has the stamp `stamp`; returns its id.
    pub fn start(&self, user: &str, role: Role, stamp: String) -> String {
        let id = token();
        let now = Instant::now();
        let session = Session {
            user: user.to_owned(),
            role,
            csrf: token(),
            stamp,
            expires: now + SESSION_LIFETIME,
        };
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS {
            // The oldest tenth ends at once, so a run of logins does not scan every time.
            let mut ends: Vec<Instant> = live.values().map(|s| s.expires).collect();
            ends.sort_unstable();
            let cut = ends[MAX_SESSIONS / 10];
            live.retain(|_, s| s.expires > cut);
        }
        live.insert(id.clone(), session);
        id
    }

    /// The session `id`, if it is live.
    pub fn get(&self, id: &str) -> Option<Session> {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    pub fn end(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_start_are_found_and_end() {
        let s = Sessions::default();
        let id = s.start("alice", Role::Admin, "admin:1".to_owned());
        let session = s.get(&id).unwrap();
        assert_eq!(
            (session.user.as_str(), session.role),
            ("alice", Role::Admin)
        );
        assert_eq!(session.csrf.len(), 64);
        assert!(s.get("not-a-session").is_none());
        s.end(&id);
        assert!(s.get(&id).is_none());
    }

    #[test]
    fn sessions_are_bounded() {
        let s = Sessions::default();
        let first = s.start("alice", Role::Admin, String::new());
        for _ in 0..MAX_SESSIONS {
            s.start("alice", Role::Admin, String::new());
        }
        assert!(s.live.lock().unwrap().len() <= MAX_SESSIONS);
        assert!(s.get(&first).is_none(), "the oldest session ended");
    }
}
