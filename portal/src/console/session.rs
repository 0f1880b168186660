//! Sessions and login throttling. A session id and its CSRF token are 32 random bytes each
//! (ring's system random); sessions live in memory and expire [`SESSION_LIFETIME`] after login.
//! Failed logins are counted per account and per address: from the [`FREE_FAILURES`]th on, the
//! next attempt must wait (2 s, doubling with each further failure up to [`MAX_WAIT`]), and is
//! answered 429 with `Retry-After` until then.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::users::Role;

/// How long a session lasts after login.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Failed logins allowed before attempts must wait.
pub const FREE_FAILURES: u32 = 3;
/// Longest wait imposed after failed logins.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// The cookie that carries the session id.
pub const COOKIE: &str = "pcap_session";

/// A logged-in account.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: Role,
    /// The token every form that changes something must carry.
    pub csrf: String,
    expires: Instant,
}

#[derive(Debug, Default)]
struct Failures {
    count: u32,
    last: Option<Instant>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Failures>>,
}

pub fn token() -> String {
    let mut bytes = [0u8; 32];
    // A system without randomness cannot serve logins at all.
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system's random source");
    pcap_protocol::keys::hex(&bytes)
}

impl Sessions {
    /// Starts a session for `user`; returns its id.
    pub fn start(&self, user: &str, role: Role) -> String {
        let id = token();
        let session = Session {
            user: user.to_owned(),
            role,
            csrf: token(),
            expires: Instant::now() + SESSION_LIFETIME,
        };
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, s| s.expires > Instant::now());
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

    /// How long a login for `user` from `address` must still wait (zero: it may try now).
    pub fn wait(&self, user: &str, address: &str) -> Duration {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        [format!("user:{user}"), format!("addr:{address}")]
            .iter()
            .filter_map(|k| failures.get(k))
            .map(|f| {
                if f.count < FREE_FAILURES {
                    return Duration::ZERO;
                }
                let doublings = (f.count - FREE_FAILURES + 1).min(6);
                let wait = Duration::from_secs(1 << doublings).min(MAX_WAIT);
                let since = f.last.map_or(wait, |t| t.elapsed());
                wait.saturating_sub(since)
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Counts a failed login.
    pub fn failed(&self, user: &str, address: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for key in [format!("user:{user}"), format!("addr:{address}")] {
            let f = failures.entry(key).or_default();
            f.count = f.count.saturating_add(1);
            f.last = Some(Instant::now());
        }
    }

    /// Forgets the failures of `user` and `address` after a good login.
    pub fn succeeded(&self, user: &str, address: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(&format!("user:{user}"));
        failures.remove(&format!("addr:{address}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_start_are_found_and_end() {
        let s = Sessions::default();
        let id = s.start("alice", Role::Admin);
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
    fn failed_logins_make_the_next_attempts_wait_per_account_and_per_address() {
        let s = Sessions::default();
        for _ in 0..FREE_FAILURES {
            assert_eq!(s.wait("alice", "10.0.0.1"), Duration::ZERO);
            s.failed("alice", "10.0.0.1");
        }
        assert!(s.wait("alice", "10.0.0.1") > Duration::ZERO);
        // The same account from elsewhere, and the same address for another account.
        assert!(s.wait("alice", "10.0.0.2") > Duration::ZERO);
        assert!(s.wait("bob", "10.0.0.1") > Duration::ZERO);
        assert_eq!(s.wait("bob", "10.0.0.2"), Duration::ZERO);
        s.succeeded("alice", "10.0.0.1");
        assert_eq!(s.wait("alice", "10.0.0.1"), Duration::ZERO);
    }
}
