//! The authority task: keeps the authorization state current and broadcasts it.
//!
//! It re-reads the grant when the file changes (directory watch), when the doorbell rings (at
//! most once a second), on a poll timer as a fallback (long while a doorbell is connected),
//! and when the config changes; between documents, a timer set to the next `not_before` or
//! `expires_at` flips the state exactly then.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use pcap_config::{Config, GrantSource};
use pcap_protocol::{AuthorizationDocument, Serial, VerifyKeys};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::ledger::Ledger;
use super::source::{self, Reading};
use super::state::{AuthStatus, Basis, evaluate};
use crate::clock::Clock;
use crate::fsutil::{self, FileWatch, watch_file};
use crate::incidents::Incidents;
use crate::wake::Wake;
use pcap_doorbell::Doorbell;
use pcap_uploader::store::Store;

/// Longest wait between evaluations, so a stepped wall clock is noticed within this time.
const MAX_TIMER_WAIT: Duration = Duration::from_secs(60);
/// Quiet time after a file change before reading, so a file written in several steps is read
/// once it is complete.
const SETTLE: Duration = Duration::from_millis(100);

/// What the authority needs from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub source: GrantSource,
    pub verify_keys: Vec<PathBuf>,
    pub serial: Serial,
    pub state_dir: PathBuf,
    pub poll_interval: Duration,
    /// The poll interval while a doorbell is connected (`None`: no doorbell).
    pub doorbell_poll: Option<Duration>,
    /// The store (URL and S3 settings), for `source = "store"`.
    pub store: (pcap_config::StoreUrl, pcap_config::S3),
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Settings {
            source: config.authorization.source.clone(),
            verify_keys: config.authorization.verify_keys.clone(),
            serial: config.device.serial.clone(),
            state_dir: config.paths.state_dir.clone(),
            poll_interval: config.authorization.poll_interval,
            doorbell_poll: config.doorbell.as_ref().map(|d| d.poll_interval),
            store: (config.upload.store.clone(), config.upload.s3.clone()),
        }
    }

    /// The grant file, when the source is a file.
    fn grant_file(&self) -> Option<&std::path::Path> {
        match &self.source {
            GrantSource::File(p) => Some(p),
            GrantSource::Store => None,
        }
    }

    /// How long until the next poll: long while the doorbell is connected.
    fn interval(&self, doorbell: &Doorbell) -> Duration {
        match self.doorbell_poll {
            Some(long) if doorbell.is_connected() => long,
            _ => self.poll_interval,
        }
    }

    fn open_store(&self) -> Option<Result<Store, String>> {
        matches!(self.source, GrantSource::Store)
            .then(|| Store::open(&self.store.0, &self.store.1).map_err(|e| e.to_string()))
    }
}

/// Owns the authorization state; see the module docs.
#[derive(Debug)]
pub struct Authority {
    settings: Settings,
    keys: Result<VerifyKeys, String>,
    ledger: Result<Ledger, String>,
    clock: Arc<dyn Clock>,
    incidents: Incidents,
    basis: Basis,
    reason: Option<String>,
    tx: watch::Sender<AuthStatus>,
    watcher: Option<FileWatch>,
    store: Option<Result<Store, String>>,
    /// Rings re-read the grant at once; the link's state picks the poll interval.
    wake: Wake,
    link: Doorbell,
}

impl Authority {
    /// Builds the authority and reads the grant once, so the first status is already real.
    pub fn new(
        settings: Settings,
        clock: Arc<dyn Clock>,
        incidents: Incidents,
    ) -> (Self, watch::Receiver<AuthStatus>) {
        let (tx, rx) = watch::channel(AuthStatus::initial(clock.now()));
        // Watch before the first read, so that no change can slip in between.
        let watcher = settings.grant_file().and_then(watch_file);
        let mut authority = Authority {
            watcher,
            store: settings.open_store(),
            keys: load_keys(&settings),
            ledger: Ledger::open(&settings.state_dir),
            settings,
            clock,
            incidents,
            basis: Basis::Nothing,
            reason: None,
            tx,
            wake: Wake::new(Doorbell::none()),
            link: Doorbell::none(),
        };
        if authority.store.is_none() {
            authority.apply(None);
        }
        authority.publish();
        (authority, rx)
    }

    /// Re-reads the grant when `doorbell` rings, and polls at its long interval while it is
    /// connected.
    pub fn with_doorbell(mut self, doorbell: Doorbell) -> Self {
        self.wake = Wake::new(doorbell.clone());
        self.link = doorbell;
        self
    }

    /// Runs until `cancel`, following grant changes, time and config reloads.
    pub async fn run(
        mut self,
        mut config: watch::Receiver<Arc<Config>>,
        cancel: CancellationToken,
    ) {
        // The store is read at once (the file was read in `new`), then every poll interval.
        let mut next_poll = if self.store.is_some() {
            tokio::time::Instant::now()
        } else {
            tokio::time::Instant::now() + crate::clock::jittered(self.settings.interval(&self.link))
        };
        loop {
            let wait = self.publish();
            tokio::select! {
                _ = cancel.cancelled() => return,
                Some(()) = fsutil::changed(&mut self.watcher) => {
                    tokio::time::sleep(SETTLE).await;
                    if self.watcher.as_ref().is_some_and(|w| !w.complete) {
                        // A directory on the way to the grant file may have appeared.
                        self.watcher = self.settings.grant_file().and_then(watch_file);
                    }
                    self.refresh().await;
                }
                _ = tokio::time::sleep_until(next_poll) => {
                    self.refresh().await;
                    next_poll = tokio::time::Instant::now() + crate::clock::jittered(self.settings.interval(&self.link));
                }
                _ = self.wake.next() => self.refresh().await,
                _ = self.link.state_changed() => {
                    // Connected: the long interval from the next poll on. Down: poll soon.
                    let soon = tokio::time::Instant::now() + crate::clock::jittered(self.settings.interval(&self.link));
                    next_poll = next_poll.min(soon);
                }
                _ = tokio::time::sleep(wait) => {}
                Ok(()) = config.changed() => {
                    let settings = Settings::from_config(&config.borrow_and_update());
                    if settings != self.settings {
                        info!(source = ?settings.source, "Authorization settings changed.");
                        if settings.source != self.settings.source {
                            self.watcher = settings.grant_file().and_then(watch_file);
                        }
                        if settings.source != self.settings.source || settings.store != self.settings.store {
                            self.store = settings.open_store();
                        }
                        if settings.interval(&self.link) != self.settings.interval(&self.link) {
                            next_poll = tokio::time::Instant::now() + crate::clock::jittered(settings.interval(&self.link));
                        }
                        if settings.state_dir != self.settings.state_dir {
                            self.ledger = Ledger::open(&settings.state_dir);
                        }
                        self.keys = load_keys(&settings);
                        self.settings = settings;
                        self.refresh().await;
                    }
                }
            }
        }
    }

    /// Re-reads the grant source and updates the basis.
    async fn refresh(&mut self) {
        let reading = match (&self.store, &self.keys) {
            (Some(Ok(store)), Ok(keys)) => {
                Some(source::fetch_grant(store, keys, &self.settings.serial).await)
            }
            _ => None,
        };
        self.apply(reading);
    }

    /// Updates the basis from `reading` (the store's answer), or from the grant file.
    fn apply(&mut self, reading: Option<Reading>) {
        if let Some(Reading::Unavailable(reason)) = &reading {
            // Nothing is known: the current document (and its expiry) stays in force.
            if self.reason.as_ref() != Some(reason) {
                warn!(reason = %reason, "The grant in the store cannot be read; the current authorization stays in force.");
                self.incidents
                    .record(self.clock.now(), "authorization", reason.clone());
            }
            return;
        }
        let (basis, reason) = self.read(reading);
        if let Some(r) = &reason
            && self.reason.as_ref() != Some(r)
            && !matches!(basis, Basis::Grant(_))
        {
            warn!(reason = %r, "Authorization document not accepted.");
            self.incidents
                .record(self.clock.now(), "authorization", r.clone());
        }
        self.basis = basis;
        self.reason = reason;
    }

    fn read(&mut self, reading: Option<Reading>) -> (Basis, Option<String>) {
        let keys = match &self.keys {
            Ok(k) => k,
            Err(e) => return (Basis::Nothing, Some(e.clone())),
        };
        let ledger = match &mut self.ledger {
            Ok(l) => l,
            Err(e) => return (Basis::Nothing, Some(e.clone())),
        };
        // A refused document leaves a revocation in force; otherwise there is no authorization.
        let refused = |ledger: &Ledger, reason: String| match ledger.revoked_at() {
            Some(sequence) => (Basis::Revoked { sequence }, Some(reason)),
            None => (Basis::Nothing, Some(reason)),
        };
        let reading = match (reading, &self.store, self.settings.grant_file()) {
            (Some(r), _, _) => r,
            (None, Some(Err(e)), _) => Reading::Refused(format!("the store: {e}")),
            (None, _, Some(file)) => source::read_grant(file, keys, &self.settings.serial),
            (None, _, None) => Reading::Refused("no grant source".to_owned()),
        };
        let (doc, digest) = match reading {
            Reading::Document { doc, digest } => (doc, digest),
            Reading::Missing(reason) | Reading::Refused(reason) | Reading::Unavailable(reason) => {
                return refused(ledger, reason);
            }
        };
        if let Err(reason) = ledger
            .check(&doc, &digest)
            .and_then(|()| ledger.record(&doc, &digest))
        {
            let origin = match self.settings.grant_file() {
                Some(f) => format!("grant file {}", f.display()),
                None => "grant in the store".to_owned(),
            };
            return refused(ledger, format!("{origin}: {reason}"));
        }
        match doc {
            AuthorizationDocument::Grant(g) => (Basis::Grant(g), None),
            AuthorizationDocument::Revocation(r) => (
                Basis::Revoked {
                    sequence: r.sequence,
                },
                Some(format!("revoked by the customer at {}", r.issued_at)),
            ),
        }
    }

    /// Evaluates the state now, broadcasts it if it changed, and returns how long until the
    /// next evaluation.
    fn publish(&mut self) -> Duration {
        let now = self.clock.now();
        let (state, next) = evaluate(&self.basis, now);
        let (grant, sequence) = match &self.basis {
            Basis::Nothing => (None, None),
            Basis::Grant(g) => (Some(g.clone()), Some(g.sequence)),
            Basis::Revoked { sequence } => (None, Some(*sequence)),
        };
        let reason = self.reason.clone().or_else(|| match state {
            super::AuthState::NotYetValid => grant
                .as_ref()
                .map(|g| format!("the grant starts at {}", g.not_before)),
            super::AuthState::Expired => grant
                .as_ref()
                .and_then(|g| g.expires_at)
                .map(|t| format!("the grant expired at {t}")),
            _ => None,
        });
        let highest_sequence = self.ledger.as_ref().ok().and_then(Ledger::highest_sequence);
        self.tx.send_if_modified(|current| {
            if current.state == state
                && current.grant == grant
                && current.sequence == sequence
                && current.reason == reason
                && current.highest_sequence == highest_sequence
            {
                return false;
            }
            let since = if current.state == state {
                current.since
            } else {
                now
            };
            if current.state != state {
                info!(
                    state = state.as_str(),
                    previous = current.state.as_str(),
                    serial = %self.settings.serial,
                    sequence,
                    expires_at = ?grant.as_ref().and_then(|g| g.expires_at),
                    "Authorization changed."
                );
            }
            *current = AuthStatus {
                state,
                since,
                grant,
                sequence,
                reason,
                highest_sequence,
            };
            true
        });
        match next {
            Some(t) => until(now, t).min(MAX_TIMER_WAIT),
            // Nothing changes by time alone; the poll timer and file events still wake the loop.
            None => Duration::from_secs(24 * 3600),
        }
    }
}

fn load_keys(settings: &Settings) -> Result<VerifyKeys, String> {
    VerifyKeys::load(&settings.verify_keys).map_err(|e| e.to_string())
}

fn until(now: Timestamp, then: Timestamp) -> Duration {
    Duration::try_from(then.duration_since(now)).unwrap_or(Duration::ZERO)
}
