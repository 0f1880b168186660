//! The request feed and the results: polls the device's request folder, hands each new request
//! to the scheduler, writes its result, follows its capture to the end, and writes the
//! heartbeat on the same beat.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pcap_config::Config;
use pcap_protocol::store::{RequestResult, keys};
use pcap_protocol::{CaptureId, CaptureState, Refusal, RefusalCode, RequestId, VerifyKeys};
use pcap_uploader::store::{GetError, Store};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::channel::{heartbeat_interval, poll_interval};
use super::heartbeat::heartbeat;
use super::seen::Seen;
use super::verify::{MAX_REQUEST_LIFETIME, verify_request};
use crate::captures::SchedulerCommand;
use crate::captures::record::{CaptureRecord, Origin};
use crate::clock::jittered;
use crate::control::Api;
use crate::wake::Wake;
use pcap_doorbell::Doorbell;
use pcap_protocol::store::Heartbeat;

/// Largest request document read from the store.
const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// How often ended captures of remote requests are looked for, to write their final result,
/// and whether a heartbeat is due.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);
/// With a doorbell, a heartbeat whose state changed is written at once, but not more often
/// than this.
const MIN_CHANGE_GAP: Duration = Duration::from_secs(2);

/// The request feed, the results and the heartbeat; see the module docs.
pub struct Remote {
    api: Arc<Api>,
    store: Store,
    seen: Result<Seen, String>,
    /// Captures started from remote requests whose final result is still to be written.
    following: HashMap<CaptureId, RequestId>,
    /// The last reason the feed could not work, so it is reported once, not every poll.
    last_problem: Option<String>,
    /// When each handled request's object was last written, as listed: a later write is a
    /// replay, reported (and ignored).
    written: HashMap<RequestId, i64>,
    /// When the last heartbeat was written, and what it said.
    last_beat: Option<(tokio::time::Instant, Heartbeat)>,
    wake: Wake,
    link: Doorbell,
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
            last_beat: None,
            wake: Wake::new(api.doorbell.clone()),
            link: api.doorbell.clone(),
            api,
            store,
        })
    }

    fn config(&self) -> Arc<Config> {
        self.api.config.borrow().clone()
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
                    next_poll = tokio::time::Instant::now() + jittered(self.interval());
                }
                _ = self.wake.next() => self.poll().await,
                _ = self.link.state_changed() => {
                    let soon = tokio::time::Instant::now() + jittered(self.interval());
                    next_poll = next_poll.min(soon);
                }
                _ = follow.tick() => {
                    self.follow().await;
                    self.beat_if_due().await;
                }
            }
        }
    }

    fn interval(&self) -> Duration {
        poll_interval(&self.config(), self.link.is_connected())
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
        let prefix = self.store.key(&keys::requests(&config.device.serial));
        // The request folder holds documents only: a listing with a delimiter costs the same
        // LIST requests on S3 and lets servers that walk directories walk this one alone.
        let listed = self
            .store
            .objects()
            .list_with_delimiter(Some(&prefix))
            .await;
        let objects = match listed.map(|l| l.objects) {
            Ok(o) => o,
            Err(e) => return self.problem(format!("cannot list {prefix}: {e}")),
        };
        self.last_problem = None;
        let mut ids: Vec<(RequestId, i64)> = objects
            .iter()
            .filter_map(|o| {
                let id = keys::request_id_of(o.location.filename()?)?;
                Some((id, o.last_modified.timestamp_millis()))
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

    async fn handle(&mut self, id: &RequestId, keys: &VerifyKeys) {
        let config = self.config();
        let key = self.store.key(&keys::request(&config.device.serial, id));
        let bytes = match self.store.get_limited(&key, MAX_REQUEST_BYTES).await {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(GetError::TooLarge(n)) => {
                let message = format!("the request is {n} bytes, at most {MAX_REQUEST_BYTES}");
                return self
                    .refuse(id, Refusal::new(RefusalCode::InvalidRequest, message))
                    .await;
            }
            Err(e) => return self.problem(format!("cannot read {key}: {e}")),
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
                self.following.insert(record.id.clone(), id.clone());
                let result = RequestResult::accepted(
                    id.clone(),
                    config.device.serial.clone(),
                    record.id,
                    record.effective_filter,
                    record.inner_filter,
                    self.api.clock.now(),
                );
                self.write_result(&result).await;
            }
            Some(Err(refused)) => self.refuse(id, refused.refusal()).await,
            None => {}
        }
    }

    /// Writes a refusal as the request's result and records it (a replay never gets here).
    async fn refuse(&mut self, id: &RequestId, refusal: Refusal) {
        let now = self.api.clock.now();
        warn!(request = %id, code = %refusal.code, reason = %refusal.message, "Remote request refused.");
        self.api.incidents.record(
            now,
            "requests",
            format!(
                "request {id} refused ({}): {}",
                refusal.code, refusal.message
            ),
        );
        // A document that fails verification is remembered too, so it is reported once.
        if let Ok(seen) = self.seen.as_mut() {
            let _ = seen.insert(id, now + MAX_REQUEST_LIFETIME, now);
        }
        let serial = self.config().device.serial.clone();
        self.write_result(&RequestResult::refused(id.clone(), serial, refusal, now))
            .await;
    }

    async fn write_result(&mut self, result: &RequestResult) {
        let key = self
            .store
            .key(&keys::result(&result.serial, &result.request_id));
        if let Err(e) = self.store.put_document(&key, result).await {
            self.problem(format!("cannot write {key}: {e}"));
        }
    }

    /// Writes the final result of remote captures that have ended.
    async fn follow(&mut self) {
        let following: Vec<(CaptureId, RequestId)> = self
            .following
            .iter()
            .map(|(c, r)| (c.clone(), r.clone()))
            .collect();
        for (capture, request) in following {
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
            let result = final_result(request, &self.config(), &record, self.api.clock.now());
            self.write_result(&result).await;
        }
    }

    /// Writes `status.json` when the heartbeat interval has passed since the last one, or,
    /// with a doorbell, when its state changed.
    async fn beat_if_due(&mut self) {
        let config = self.config();
        let beat = heartbeat(&self.api);
        let now = tokio::time::Instant::now();
        let due = match &self.last_beat {
            None => true,
            Some((at, last)) => {
                let age = now.duration_since(*at);
                age >= heartbeat_interval(&config, self.link.is_connected())
                    || (config.doorbell.is_some()
                        && age >= MIN_CHANGE_GAP
                        && !beat.same_state(last))
            }
        };
        if !due {
            return;
        }
        let key = self.store.key(&keys::status(&beat.serial));
        let written = self.store.put_document(&key, &beat).await;
        // A failed write is tried again at the next interval, not every second.
        self.last_beat = Some((now, beat));
        if let Err(e) = written {
            self.problem(format!("cannot write {key}: {e}"));
        }
    }
}

/// The result of a request whose capture has ended.
fn final_result(
    request: RequestId,
    config: &Config,
    record: &CaptureRecord,
    now: jiff::Timestamp,
) -> RequestResult {
    let failed = record.state == CaptureState::Failed;
    RequestResult {
        capture_id: Some(record.id.clone()),
        effective_filter: Some(record.effective_filter.clone()),
        inner_filter: record.inner_filter.clone(),
        started_at: Some(record.started_at),
        ended_at: record.ended_at,
        stop_reason: record.stop_reason,
        error: record.error.clone(),
        stats: Some(record.stats),
        segments: Some(record.segments.len() as u64),
        segments_lost: Some(record.segments_lost),
        ..RequestResult::ended(request, config.device.serial.clone(), failed, now)
    }
}
