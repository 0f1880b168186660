//! The agent's side of the store as a channel: the request feed, the results it writes back,
//! and the heartbeat. The store is the only way in: an agent needs outbound access to it and
//! nothing else.
//!
//! - **Requests** (`devices/<serial>/requests/<request_id>.json`, signed with the research
//!   team's request key) are polled every `requests.poll_interval`. A request is refused if its
//!   signature does not verify under a request key (an authorization key does not count), it
//!   names another serial, its id differs from its key, it has no `not_after` or that time has
//!   passed (or lies more than [`MAX_REQUEST_LIFETIME`] ahead), or its id was seen before (the
//!   ids seen are kept in `<state_dir>/requests-seen.json` until their `not_after` is long
//!   past, across restarts). A valid request goes to the scheduler with exactly the checks of a
//!   local one.
//! - **Results** (`devices/<serial>/results/<request_id>.json`): `accepted` with the capture id,
//!   or `refused` with the reason; then the final state, stop reason and stats when the capture
//!   ends. A replay of a request already handled gets no new result (that would overwrite the
//!   real one); it is logged and shown in `/v1/status`.
//! - **Heartbeat** (`devices/<serial>/status.json`) every poll interval: agent and libpcap
//!   versions, serial, name, authorization state and expiry, running captures, spool usage,
//!   last error, time.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use jiff::{SignedDuration, Timestamp};
use pcap_config::Config;
use pcap_protocol::ids::check_id;
use pcap_protocol::{CaptureRequest, Envelope, VerifyKeys};
use pcap_uploader::store::Store;
use serde_json::json;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::captures::SchedulerCommand;
use crate::captures::record::{CaptureRecord, CaptureState, Origin};
use crate::control::Api;
use crate::fsutil::write_atomic;
use crate::storeio;

/// Longest a request may stay valid: bounds how long its id must be remembered.
pub const MAX_REQUEST_LIFETIME: SignedDuration = SignedDuration::from_hours(30 * 24);
/// Largest request document read from the store.
const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// How long past its `not_after` a seen id is still remembered (clock steps, late copies).
const SEEN_GRACE: SignedDuration = SignedDuration::from_hours(24);
/// How often ended captures of remote requests are looked for, to write their final result.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// The version of the libpcap the agent runs with (`pcap_lib_version()`).
#[allow(unsafe_code)]
pub fn libpcap_version() -> String {
    unsafe extern "C" {
        fn pcap_lib_version() -> *const std::ffi::c_char;
    }
    // SAFETY: pcap_lib_version takes no argument and returns a pointer to a static,
    // NUL-terminated string owned by libpcap, valid for the life of the process.
    let text = unsafe { std::ffi::CStr::from_ptr(pcap_lib_version()) };
    text.to_string_lossy().into_owned()
}

/// Request ids already handled, each with its `not_after`, persisted in the state directory.
#[derive(Debug)]
pub struct Seen {
    path: PathBuf,
    ids: BTreeMap<String, Timestamp>,
}

impl Seen {
    /// Loads the ledger; an unreadable one is an error (guessing would allow replays).
    pub fn open(state_dir: &Path) -> Result<Self, String> {
        let path = state_dir.join("requests-seen.json");
        let ids = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "{} is damaged ({e}); remote requests are refused until it is repaired or removed (removing it allows requests still valid to run again)",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(Seen { path, ids })
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    /// Remembers `id` (durably, before the request is acted on) and forgets ids long expired.
    pub fn insert(&mut self, id: &str, not_after: Timestamp, now: Timestamp) -> Result<(), String> {
        self.ids.retain(|_, t| *t + SEEN_GRACE > now);
        self.ids.insert(id.to_owned(), not_after);
        let bytes = serde_json::to_vec(&self.ids).unwrap_or_default();
        write_atomic(&self.path, &bytes)
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

/// Why a request document is refused before it reaches the scheduler.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn refusal(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// Verifies a request document found at `requests/<key_id>.json`: signature under a request
/// key, the id, the serial and the validity window. The replay check is the caller's.
pub fn verify_request(
    bytes: &[u8],
    key_id: &str,
    keys: &VerifyKeys,
    serial: &pcap_protocol::Serial,
    now: Timestamp,
) -> Result<(CaptureRequest, Timestamp), Refusal> {
    let request: CaptureRequest = Envelope::parse(bytes)
        .and_then(|e| e.open(keys, "capture request"))
        .map_err(|e| {
            refusal(
                "bad_signature",
                format!("the request does not verify under the request key(s): {e}"),
            )
        })?;
    if request.request_id.as_deref() != Some(key_id) {
        return Err(refusal(
            "bad_request",
            format!(
                "the request's id {:?} is not the id of its key ({key_id})",
                request.request_id
            ),
        ));
    }
    if request.serial.as_ref() != Some(serial) {
        return Err(refusal(
            "wrong_serial",
            format!(
                "the request is for device {}, this is {serial}",
                request
                    .serial
                    .as_ref()
                    .map_or("(none)".to_owned(), ToString::to_string)
            ),
        ));
    }
    let Some(not_after) = request.not_after else {
        return Err(refusal(
            "bad_request",
            "a remote request must carry not_after",
        ));
    };
    if not_after <= now {
        return Err(refusal(
            "expired",
            format!("the request expired at {not_after}"),
        ));
    }
    if not_after > now + MAX_REQUEST_LIFETIME {
        return Err(refusal(
            "bad_request",
            format!("not_after {not_after} is more than 30 days ahead"),
        ));
    }
    request.check().map_err(|e| refusal("invalid_request", e))?;
    Ok((request, not_after))
}

/// The request feed, the results and the heartbeat; see the module docs.
pub struct Remote {
    api: Arc<Api>,
    store: Store,
    seen: Result<Seen, String>,
    /// Captures started from remote requests whose final result is still to be written.
    following: HashMap<String, String>,
    /// The last reason the feed could not work, so it is reported once, not every poll.
    last_problem: Option<String>,
    /// When each handled request's object was last written, as listed: a later write is a
    /// replay, reported (and ignored).
    written: HashMap<String, i64>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("following", &self.following)
            .finish()
    }
}

impl Remote {
    pub fn new(api: Arc<Api>, config: &Config) -> Result<Self, String> {
        let store =
            Store::open(&config.upload.store, &config.upload.s3).map_err(|e| e.to_string())?;
        Ok(Remote {
            seen: Seen::open(&config.paths.state_dir),
            following: HashMap::new(),
            last_problem: None,
            written: HashMap::new(),
            api,
            store,
        })
    }

    fn config(&self) -> Arc<Config> {
        self.api.config.borrow().clone()
    }

    fn device_key(&self, rel: &str) -> object_store::path::Path {
        let serial = self.config().device.serial.clone();
        self.store.key(&format!("devices/{serial}/{rel}"))
    }

    /// Runs until `cancel`.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut next_poll = tokio::time::Instant::now();
        let mut follow = tokio::time::interval(FOLLOW_INTERVAL);
        follow.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(next_poll) => {
                    self.poll().await;
                    self.heartbeat().await;
                    next_poll = tokio::time::Instant::now() + jittered(self.interval());
                }
                _ = follow.tick() => self.follow().await,
            }
        }
    }

    fn interval(&self) -> Duration {
        let config = self.config();
        config
            .requests
            .as_ref()
            .map_or(config.authorization.poll_interval, |r| r.poll_interval)
    }

    fn problem(&mut self, message: String) {
        if self.last_problem.as_ref() != Some(&message) {
            warn!(error = %message, "Remote requests.");
            self.api
                .incidents
                .record(self.api.clock.now(), "requests", message.clone());
            self.last_problem = Some(message);
        }
    }

    /// Lists the request folder and handles every request not handled before.
    async fn poll(&mut self) {
        let config = self.config();
        let Some(requests) = &config.requests else {
            return;
        };
        let keys = match VerifyKeys::load(&requests.verify_keys) {
            Ok(k) => k,
            Err(e) => return self.problem(format!("cannot load the request verify key(s): {e}")),
        };
        if let Err(e) = &self.seen {
            let e = e.clone();
            return self.problem(e);
        }
        let prefix = self.device_key("requests");
        let listed: Result<Vec<_>, _> =
            self.store.objects().list(Some(&prefix)).try_collect().await;
        let objects = match listed {
            Ok(o) => o,
            Err(e) => return self.problem(format!("cannot list {prefix}: {e}")),
        };
        self.last_problem = None;
        let mut ids: Vec<(String, i64)> = objects
            .iter()
            .filter_map(|o| {
                let id = o.location.filename()?.strip_suffix(".json")?;
                check_id(id, pcap_protocol::request::MAX_REQUEST_ID_LEN).ok()?;
                Some((id.to_owned(), o.last_modified.timestamp_millis()))
            })
            .collect();
        ids.sort();
        for (id, written) in ids {
            if self.seen.as_ref().is_ok_and(|s| s.contains(&id)) {
                let before = self.written.insert(id.clone(), written);
                if before.is_some_and(|b| written > b) {
                    let message = format!(
                        "request {id} was written to the store again after it was handled; ignored (a replay)"
                    );
                    warn!(request = %id, "{message}");
                    self.api
                        .incidents
                        .record(self.api.clock.now(), "requests", message);
                }
                continue;
            }
            self.written.insert(id.clone(), written);
            self.handle(&id, &keys).await;
        }
    }

    async fn handle(&mut self, id: &str, keys: &VerifyKeys) {
        let config = self.config();
        let key = self.device_key(&format!("requests/{id}.json"));
        let bytes = match self.store.get_limited(&key, MAX_REQUEST_BYTES).await {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(pcap_uploader::store::GetError::TooLarge(n)) => {
                return self
                    .refuse(
                        id,
                        refusal(
                            "bad_request",
                            format!("the request is {n} bytes, at most {MAX_REQUEST_BYTES}"),
                        ),
                    )
                    .await;
            }
            Err(pcap_uploader::store::GetError::Store(e)) => {
                return self.problem(format!("cannot read {key}: {e}"));
            }
        };
        let now = self.api.clock.now();
        let (request, not_after) =
            match verify_request(&bytes, id, keys, &config.device.serial, now) {
                Ok(r) => r,
                Err(r) => return self.refuse(id, r).await,
            };
        // Remembered before it runs: a crash right after cannot make it run twice.
        if let Err(e) = self
            .seen
            .as_mut()
            .map_err(|e| e.clone())
            .and_then(|s| s.insert(id, not_after, now))
        {
            return self.problem(e);
        }
        let (reply, answer) = oneshot::channel();
        let sent = self
            .api
            .scheduler
            .send(SchedulerCommand::Start {
                request: Box::new(request),
                origin: Origin::Remote,
                reply,
            })
            .await;
        let outcome = match sent {
            Ok(()) => answer.await.ok(),
            Err(_) => None,
        };
        match outcome {
            Some(Ok(record)) => {
                info!(request = %id, capture = %record.id, "Remote request accepted.");
                self.following.insert(record.id.clone(), id.to_owned());
                self.write_result(
                    id,
                    &json!({
                        "request_id": id,
                        "serial": config.device.serial,
                        "state": "accepted",
                        "capture_id": record.id,
                        "effective_filter": record.effective_filter,
                        "updated_at": self.api.clock.now(),
                    }),
                )
                .await;
            }
            Some(Err(e)) => {
                self.refuse(id, refusal(e.code, e.message)).await;
            }
            None => {}
        }
    }

    /// Writes a refusal as the request's result and records it (a replay never gets here).
    async fn refuse(&mut self, id: &str, r: Refusal) {
        let now = self.api.clock.now();
        warn!(request = %id, code = r.code, reason = %r.message, "Remote request refused.");
        self.api.incidents.record(
            now,
            "requests",
            format!("request {id} refused ({}): {}", r.code, r.message),
        );
        // A document that fails verification is remembered too, so it is reported once.
        if let Ok(seen) = self.seen.as_mut() {
            let _ = seen.insert(id, now + MAX_REQUEST_LIFETIME, now);
        }
        let serial = self.config().device.serial.clone();
        self.write_result(
            id,
            &json!({
                "request_id": id,
                "serial": serial,
                "state": "refused",
                "code": r.code,
                "reason": r.message,
                "updated_at": now,
            }),
        )
        .await;
    }

    async fn write_result(&mut self, id: &str, doc: &serde_json::Value) {
        let key = self.device_key(&format!("results/{id}.json"));
        let mut bytes = serde_json::to_vec_pretty(doc).unwrap_or_default();
        bytes.push(b'\n');
        if let Err(e) = storeio::put(&self.store, &key, bytes).await {
            self.problem(e);
        }
    }

    /// Writes the final result of remote captures that have ended.
    async fn follow(&mut self) {
        if self.following.is_empty() {
            return;
        }
        let ids: Vec<(String, String)> = self
            .following
            .iter()
            .map(|(c, r)| (c.clone(), r.clone()))
            .collect();
        for (capture, request) in ids {
            let (reply, answer) = oneshot::channel();
            let asked = self
                .api
                .scheduler
                .send(SchedulerCommand::Get {
                    id: capture.clone(),
                    reply,
                })
                .await;
            let Ok(Some(record)) = (match asked {
                Ok(()) => answer.await,
                Err(_) => return,
            }) else {
                continue;
            };
            if record.state == CaptureState::Running {
                continue;
            }
            self.following.remove(&capture);
            let doc = final_result(&request, &self.config(), &record, self.api.clock.now());
            self.write_result(&request, &doc).await;
        }
    }

    /// Writes `status.json`.
    async fn heartbeat(&mut self) {
        let config = self.config();
        let auth = self.api.auth.borrow().clone();
        let summary = *self.api.captures.borrow();
        let doc = json!({
            "serial": config.device.serial,
            "name": config.device.name,
            "agent_version": crate::VERSION,
            "libpcap_version": libpcap_version(),
            "authorization": {
                "state": auth.state,
                "expires_at": auth.grant.as_ref().and_then(|g| g.expires_at),
                "period": auth.grant.as_ref().map(|g| g.period),
                "sequence": auth.sequence,
                "reason": auth.reason,
            },
            "captures": {"running": summary.running, "total": summary.total},
            "spool": {
                "bytes": pcap_uploader::reaper::dir_size(&config.paths.spool_dir),
                "refusing_new_segments": self.api.spool.gate.is_refusing(),
            },
            "uploads": self.api.spool.uploads.status(),
            "last_error": self.api.incidents.recent().last().map(|i| json!({
                "time": i.time, "source": i.source, "message": i.message,
            })),
            "time": self.api.clock.now(),
        });
        let key = self.device_key("status.json");
        let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        bytes.push(b'\n');
        if let Err(e) = storeio::put(&self.store, &key, bytes).await {
            self.problem(e);
        }
    }
}

fn final_result(
    request: &str,
    config: &Config,
    record: &CaptureRecord,
    now: Timestamp,
) -> serde_json::Value {
    json!({
        "request_id": request,
        "serial": config.device.serial,
        "state": record.state,
        "capture_id": record.id,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "stop_reason": record.stop_reason,
        "error": record.error,
        "stats": record.stats,
        "segments": record.segments.len(),
        "segments_lost": record.segments_lost,
        "updated_at": now,
    })
}

/// `interval` with up to ±10% jitter, so a fleet does not poll the store in step.
pub fn jittered(interval: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte);
    // Whole milliseconds: the timer's resolution.
    let ms = interval.as_millis() as f64 * (0.9 + f64::from(byte[0]) / 255.0 * 0.2);
    Duration::from_millis(ms as u64)
}
