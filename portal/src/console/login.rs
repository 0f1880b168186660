//! Logins that hold up under a flood: attempts are counted before the password is hashed, per
//! account and address (so three wrong guesses from one address slow that address down for
//! that account, never the account's owner elsewhere) and per address (so one address
//! guessing many names slows down too); at most [`HASHERS`] passwords are hashed at once, each
//! in memory kept for the next login, so a flood costs the console a fixed amount of memory
//! whatever arrives; and the login form carries a token bound to a cookie of its own (login
//! CSRF: another site cannot log a browser into an account of its choosing).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use argon2::Block;

/// Failed logins allowed for one account from one address before attempts must wait.
pub const FREE_FAILURES: u32 = 3;
/// Failed logins allowed from one address, whatever the account, before attempts must wait.
pub const ADDRESS_FREE_FAILURES: u32 = 10;
/// Longest wait imposed after failed logins.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// How long failures are remembered after the last one.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Most keys the throttle remembers; past it, the quiet ones and then the oldest are dropped.
const MAX_KEYS: usize = 10_000;
/// Passwords hashed at once (each with Argon2's 19 MiB).
pub const HASHERS: usize = 2;
/// Logins that may wait for a hasher; more are answered 503 at once.
const MAX_WAITING: usize = 32;
/// How long a login waits for a hasher before it is answered 503.
const HASH_QUEUE_WAIT: Duration = Duration::from_secs(3);
/// How long a login form's token is good for.
pub const FORM_LIFETIME: Duration = Duration::from_secs(3600);
/// The cookie that carries the login form's token.
pub const FORM_COOKIE: &str = "pcap_login";

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    /// How long the next attempt must still wait at `now`, with `free` failures allowed.
    fn wait(&self, free: u32, now: Instant) -> Duration {
        if self.count < free || now.duration_since(self.last) > FORGET_AFTER {
            return Duration::ZERO;
        }
        let doublings = (self.count - free + 1).min(6);
        let wait = Duration::from_secs(1 << doublings).min(MAX_WAIT);
        wait.saturating_sub(now.duration_since(self.last))
    }
}

/// Failures by key, bounded.
#[derive(Debug)]
struct Counts<K>(HashMap<K, Failures>);

impl<K> Default for Counts<K> {
    fn default() -> Self {
        Counts(HashMap::new())
    }
}

impl<K: std::hash::Hash + Eq + Clone> Counts<K> {
    fn wait(&self, key: &K, free: u32, now: Instant) -> Duration {
        self.0
            .get(key)
            .map_or(Duration::ZERO, |f| f.wait(free, now))
    }

    fn count(&mut self, key: K, now: Instant) {
        if self.0.len() >= MAX_KEYS && !self.0.contains_key(&key) {
            self.0
                .retain(|_, f| now.duration_since(f.last) <= FORGET_AFTER);
            if self.0.len() >= MAX_KEYS {
                let mut lasts: Vec<Instant> = self.0.values().map(|f| f.last).collect();
                lasts.sort_unstable();
                let cut = lasts[MAX_KEYS / 10];
                self.0.retain(|_, f| f.last > cut);
            }
        }
        let f = self.0.entry(key).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.duration_since(f.last) > FORGET_AFTER {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
    }

    /// Takes back one counted attempt.
    fn uncount(&mut self, key: &K) {
        if let Some(f) = self.0.get_mut(key) {
            f.count = f.count.saturating_sub(1);
        }
    }

    fn forget(&mut self, key: &K) {
        self.0.remove(key);
    }
}

/// The failures the throttle remembers.
#[derive(Debug, Default)]
struct Table {
    /// Per account and address.
    pairs: Counts<(String, IpAddr)>,
    /// Per address, whatever the account.
    addresses: Counts<IpAddr>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Throttle {
    table: Mutex<Table>,
}

/// An attempt that was counted as a failure before its password is checked.
#[derive(Debug)]
pub struct Attempt {
    user: String,
    address: IpAddr,
}

impl Throttle {
    /// Counts an attempt at `user` from `address` before its password is checked: `Err` with
    /// how long it must still wait if it may not be made now.
    pub fn admit(&self, user: &str, address: IpAddr, now: Instant) -> Result<Attempt, Duration> {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let Table { pairs, addresses } = &mut *table;
        let pair = (user.to_owned(), address);
        let wait = pairs.wait(&pair, FREE_FAILURES, now).max(addresses.wait(
            &address,
            ADDRESS_FREE_FAILURES,
            now,
        ));
        if !wait.is_zero() {
            return Err(wait);
        }
        pairs.count(pair, now);
        addresses.count(address, now);
        Ok(Attempt {
            user: user.to_owned(),
            address,
        })
    }

    /// The attempt's password was right: the account's failures from that address are
    /// forgotten, and the attempt does not count against the address.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.pairs.forget(&(attempt.user, attempt.address));
        table.addresses.uncount(&attempt.address);
    }

    /// The attempt's password was never checked (the console was too busy): it counts for
    /// nothing.
    pub fn not_checked(&self, attempt: Attempt) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.pairs.uncount(&(attempt.user, attempt.address));
        table.addresses.uncount(&attempt.address);
    }
}

/// The password hashers: at most [`HASHERS`] at once, each with memory kept from one login to
/// the next.
#[derive(Debug)]
pub struct Hashers {
    permits: tokio::sync::Semaphore,
    waiting: AtomicUsize,
    memory: Mutex<Vec<Vec<Block>>>,
}

impl Default for Hashers {
    fn default() -> Self {
        Hashers {
            permits: tokio::sync::Semaphore::new(HASHERS),
            waiting: AtomicUsize::new(0),
            memory: Mutex::new(Vec::new()),
        }
    }
}

/// Why a password was not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl Hashers {
    /// Runs `check` on a blocking thread with a hasher's memory, waiting briefly for a free
    /// hasher; `Err(Busy)` if none came free.
    pub async fn run<T: Send + 'static>(
        &self,
        check: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        let permit = tokio::time::timeout(HASH_QUEUE_WAIT, self.permits.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let Ok(Ok(_permit)) = permit else {
            return Err(Busy);
        };
        // With the permit held, at most HASHERS buffers are ever out.
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default();
        let done = tokio::task::spawn_blocking(move || {
            let out = check(&mut memory);
            (out, memory)
        })
        .await;
        match done {
            Ok((out, memory)) => {
                self.memory
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(memory);
                Ok(out)
            }
            Err(_) => Err(Busy),
        }
    }
}

/// Tokens of the login form: 16 random bytes and their HMAC under a key of this run, so a
/// token the console did not make is refused.
#[derive(Debug)]
pub struct FormTokens {
    key: ring::hmac::Key,
}

impl Default for FormTokens {
    fn default() -> Self {
        let rng = ring::rand::SystemRandom::new();
        // A system without randomness cannot serve logins at all.
        let key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .expect("the system's random source");
        FormTokens { key }
    }
}

impl FormTokens {
    /// A new token.
    pub fn issue(&self) -> String {
        let mut nonce = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
            .expect("the system's random source");
        let tag = ring::hmac::sign(&self.key, &nonce);
        format!(
            "{}{}",
            pcap_protocol::keys::hex(&nonce),
            pcap_protocol::keys::hex(&tag.as_ref()[..16])
        )
    }

    /// Whether `form` is a token this console made and the same as `cookie`.
    pub fn check(&self, form: &str, cookie: Option<&str>) -> bool {
        let Some(cookie) = cookie else {
            return false;
        };
        if form.len() != 64 || !super::session::same_token(form, cookie) {
            return false;
        }
        let (Some(nonce), Some(tag)) = (unhex(&form[..32]), unhex(&form[32..])) else {
            return false;
        };
        let full = ring::hmac::sign(&self.key, &nonce);
        super::session::same_token(
            &pcap_protocol::keys::hex(&full.as_ref()[..16]),
            &pcap_protocol::keys::hex(&tag),
        )
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn attempts_count_before_the_hash_so_a_burst_gets_only_the_free_ones() {
        let t = Throttle::default();
        let now = Instant::now();
        let admitted = (0..40)
            .filter(|_| t.admit("alice", ip(1), now).is_ok())
            .count();
        assert_eq!(admitted, FREE_FAILURES as usize);
        let wait = t.admit("alice", ip(1), now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(2));
        // Waiting it out allows one more, which doubles the next wait.
        let later = now + wait;
        assert!(t.admit("alice", ip(1), later).is_ok());
        assert_eq!(
            t.admit("alice", ip(1), later).unwrap_err(),
            Duration::from_secs(4)
        );
    }

    #[test]
    fn failures_from_one_address_never_lock_the_owner_out_from_another() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert!(t.admit("admin", ip(66), now).is_ok());
        }
        assert!(t.admit("admin", ip(66), now).is_err());
        let owner = t.admit("admin", ip(1), now).expect("the owner's address");
        t.succeeded(owner);
        assert!(t.admit("admin", ip(1), now).is_ok());
    }

    #[test]
    fn one_address_guessing_many_names_slows_down_too_and_a_success_clears_its_pair() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..ADDRESS_FREE_FAILURES {
            assert!(t.admit(&format!("user{i}"), ip(9), now).is_ok());
        }
        assert!(t.admit("another", ip(9), now).is_err());
        assert!(t.admit("another", ip(10), now).is_ok());
        // An attempt never checked counts for nothing.
        let t = Throttle::default();
        for _ in 0..10 {
            let a = t.admit("bob", ip(2), now).unwrap();
            t.not_checked(a);
        }
        assert!(t.admit("bob", ip(2), now).is_ok());
    }

    #[test]
    fn the_throttle_remembers_a_bounded_number_of_keys() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..(MAX_KEYS as u32 + 500) {
            let _ = t.admit(&format!("u{i}"), IpAddr::from(i.to_be_bytes()), now);
        }
        let table = t.table.lock().unwrap();
        assert!(table.pairs.0.len() <= MAX_KEYS && table.addresses.0.len() <= MAX_KEYS);
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_while() {
        let t = Throttle::default();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES {
            t.admit("alice", ip(1), now).unwrap();
        }
        assert!(t.admit("alice", ip(1), now).is_err());
        assert!(
            t.admit("alice", ip(1), now + FORGET_AFTER + Duration::from_secs(1))
                .is_ok()
        );
    }

    #[test]
    fn a_login_token_is_good_only_with_its_cookie_and_only_if_this_console_made_it() {
        let tokens = FormTokens::default();
        let t = tokens.issue();
        assert!(tokens.check(&t, Some(&t)));
        assert!(!tokens.check(&t, None));
        assert!(!tokens.check(&t, Some(&tokens.issue())));
        let made_up = "0".repeat(64);
        assert!(!tokens.check(&made_up, Some(&made_up)));
        assert!(!FormTokens::default().check(&t, Some(&t)));
    }

    #[tokio::test]
    async fn at_most_two_passwords_are_hashed_at_once_and_their_memory_is_reused() {
        let hashers = std::sync::Arc::new(Hashers::default());
        let running = std::sync::Arc::new(AtomicUsize::new(0));
        let most = std::sync::Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (hashers, running, most) = (hashers.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                hashers
                    .run(move |memory| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        memory.resize(1024, Block::default());
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(()));
        }
        assert!(most.load(Ordering::SeqCst) <= HASHERS);
        let kept = hashers.memory.lock().unwrap();
        assert!(kept.len() <= HASHERS && kept.iter().all(|m| m.len() == 1024));
    }
}
