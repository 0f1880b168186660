//! The scheduler: the one owner of running captures.
//!
//! It accepts a request only while the device is authorized and the request passes every
//! check (interface allowlist, filter, limits within ceilings, concurrency); it stops every
//! running capture within a second when the authorization ends, and with `shutdown` when the
//! daemon drains, waiting for each worker to seal its open segment. Requests arrive as
//! [`SchedulerCommand`]s with a oneshot reply.

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use pcap_capture::device;
use pcap_capture::filter;
use pcap_capture::limits;
use pcap_capture::{
    CaptureSpec, Outcome, SegmentInfo, SessionSpec, SharedSharing, StopReason, Worker,
};
use pcap_config::Config;
use pcap_protocol::CaptureRequest;
use pcap_uploader::Spool;
use pcap_uploader::reaper::SpoolGate;
use pcap_uploader::spool::Journal;
use pcap_uploader::upload::UploadHandle;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use uuid::Uuid;

use super::exclusions::exclusions;
use super::record::{CaptureRecord, CaptureState, Origin, RecordStore, SegmentSummary};
use crate::authz::AuthStatus;
use crate::clock::Clock;
use crate::control::response::ApiError;
use crate::incidents::Incidents;
use crate::metrics::Metrics;

/// Sealed segments waiting to be recorded; the writer never blocks on this.
const SEGMENT_QUEUE: usize = 1024;

type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// Requests to the scheduler.
#[derive(Debug)]
pub enum SchedulerCommand {
    Start {
        request: Box<CaptureRequest>,
        origin: Origin,
        reply: Reply<CaptureRecord>,
    },
    /// Stop a capture; the reply comes once it has stopped and sealed its segment.
    Stop {
        id: String,
        reply: Reply<CaptureRecord>,
    },
    List {
        reply: oneshot::Sender<Vec<CaptureRecord>>,
    },
    Get {
        id: String,
        reply: oneshot::Sender<Option<CaptureRecord>>,
    },
}

/// What `/v1/status` shows about captures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub running: usize,
    pub total: usize,
}

/// Owns the running captures; see the module docs.
#[derive(Debug)]
pub struct Scheduler {
    config: watch::Receiver<Arc<Config>>,
    auth: watch::Receiver<AuthStatus>,
    records: RecordStore,
    running: HashMap<String, Worker>,
    waiters: HashMap<String, Vec<Reply<CaptureRecord>>>,
    segments_tx: mpsc::Sender<SegmentInfo>,
    segments_rx: mpsc::Receiver<SegmentInfo>,
    outcomes: JoinSet<(String, Option<Outcome>)>,
    summary: watch::Sender<Summary>,
    metrics: Metrics,
    incidents: Incidents,
    clock: Arc<dyn Clock>,
    /// The `[sharing]` switches every capture's recorder reads, updated on reload.
    sharing: SharedSharing,
    spool: SpoolContext,
}

/// The spool's shared parts the scheduler hands to captures and notifies.
#[derive(Debug, Clone)]
pub struct SpoolContext {
    pub journal: Arc<Journal>,
    pub gate: SpoolGate,
    pub uploads: UploadHandle,
    /// Wakes the reaper.
    pub reaper: Arc<tokio::sync::Notify>,
}

impl Scheduler {
    /// Loads the capture records and recovers the spool: segments a crash left unsealed are
    /// discarded and counted as lost, and captures that were running are marked as failed.
    pub fn new(
        config: watch::Receiver<Arc<Config>>,
        auth: watch::Receiver<AuthStatus>,
        metrics: Metrics,
        incidents: Incidents,
        clock: Arc<dyn Clock>,
        spool: SpoolContext,
    ) -> std::io::Result<(Self, watch::Receiver<Summary>)> {
        let cfg = config.borrow().clone();
        let mut records = RecordStore::open(&cfg.paths.state_dir)?;
        recover(
            &mut records,
            &cfg,
            &incidents,
            clock.as_ref(),
            &spool.journal,
        )?;
        let (segments_tx, segments_rx) = mpsc::channel(SEGMENT_QUEUE);
        let summary = Summary {
            running: 0,
            total: records.list().count(),
        };
        let (summary_tx, summary_rx) = watch::channel(summary);
        let sharing = Arc::new(std::sync::RwLock::new(cfg.sharing));
        Ok((
            Scheduler {
                config,
                auth,
                records,
                running: HashMap::new(),
                waiters: HashMap::new(),
                segments_tx,
                segments_rx,
                outcomes: JoinSet::new(),
                summary: summary_tx,
                metrics,
                incidents,
                clock,
                sharing,
                spool,
            },
            summary_rx,
        ))
    }

    /// Runs until `cancel`; then stops every capture with `shutdown` and waits for them.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<SchedulerCommand>,
        cancel: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                Ok(()) = self.auth.changed() => {
                    let status = self.auth.borrow_and_update().clone();
                    if !status.is_authorized() {
                        self.stop_all(StopReason::AuthorizationEnded);
                    }
                }
                Some(command) = commands.recv() => self.handle(command),
                Ok(()) = self.config.changed() => {
                    let sharing = self.config.borrow_and_update().sharing;
                    *self.sharing.write().unwrap_or_else(|p| p.into_inner()) = sharing;
                }
                Some(segment) = self.segments_rx.recv() => self.add_segment(&segment),
                Some(done) = self.outcomes.join_next() => {
                    if let Ok((id, outcome)) = done {
                        self.finish(&id, outcome);
                    }
                }
            }
        }
        self.stop_all(StopReason::Shutdown);
        while let Some(done) = self.outcomes.join_next().await {
            if let Ok((id, outcome)) = done {
                self.finish(&id, outcome);
            }
        }
    }

    fn handle(&mut self, command: SchedulerCommand) {
        match command {
            SchedulerCommand::Start {
                request,
                origin,
                reply,
            } => {
                let _ = reply.send(self.start(*request, origin));
            }
            SchedulerCommand::Stop { id, reply } => match self.running.get(&id) {
                Some(worker) => {
                    worker.stop_handle().stop(StopReason::Stopped);
                    self.waiters.entry(id).or_default().push(reply);
                }
                None => {
                    let _ = reply.send(Err(match self.records.get(&id) {
                        Some(_) => ApiError::new(
                            StatusCode::CONFLICT,
                            "capture_not_running",
                            format!("capture {id} has already ended"),
                        ),
                        None => not_found(&id),
                    }));
                }
            },
            SchedulerCommand::List { reply } => {
                let list = self.records.list().map(|r| self.live(r)).collect();
                let _ = reply.send(list);
            }
            SchedulerCommand::Get { id, reply } => {
                let _ = reply.send(self.records.get(&id).map(|r| self.live(r)));
            }
        }
    }

    /// A record with the current counters of a running capture.
    fn live(&self, record: &CaptureRecord) -> CaptureRecord {
        let mut r = record.clone();
        if let Some(w) = self.running.get(&r.id) {
            r.stats = w.stats();
        }
        r
    }

    fn start(
        &mut self,
        request: CaptureRequest,
        origin: Origin,
    ) -> Result<CaptureRecord, ApiError> {
        let config = self.config.borrow().clone();
        let auth = self.auth.borrow().clone();
        if !auth.is_authorized() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_authorized",
                format!(
                    "this device is {}{}; captures need a valid grant from the customer",
                    auth.state.as_str(),
                    auth.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ),
            ));
        }
        let bad = |code: &'static str, message: String| {
            ApiError::new(StatusCode::BAD_REQUEST, code, message)
        };
        request.check().map_err(|m| bad("invalid_request", m))?;
        if let Some(serial) = &request.serial
            && serial != &config.device.serial
        {
            return Err(bad(
                "wrong_device",
                format!(
                    "the request is for device {serial}, this is {}",
                    config.device.serial
                ),
            ));
        }
        if let Some(t) = request.not_after
            && self.clock.now() > t
        {
            return Err(bad(
                "request_expired",
                format!("the request was valid until {t}"),
            ));
        }
        let interface = request.interface.clone();
        if !config.capture.interfaces.contains(&interface) {
            return Err(bad(
                "interface_not_allowed",
                format!(
                    "interface {interface} is not in capture.interfaces ({}); the operator allows interfaces in the config",
                    config.capture.interfaces.join(", ")
                ),
            ));
        }
        if !device::exists(&interface) {
            return Err(bad(
                "interface_not_found",
                format!("there is no interface {interface} on this host"),
            ));
        }
        let linktype = device::linktype_of(&interface);
        filter::validate(&request.filter, linktype)
            .map_err(|e| bad("filter_invalid", e.to_string()))?;
        let effective_filter = filter::effective(&request.filter, &exclusions(&config));
        filter::compile(&effective_filter, linktype).map_err(|e| {
            bad(
                "filter_invalid",
                format!("the filter with the agent's exclusions (capture.exclude, the store) does not compile: {e}"),
            )
        })?;
        let limits = limits::resolve(
            &request.limits,
            &config.capture.defaults,
            &config.capture.ceilings,
        )
        .map_err(|e| bad("limit_exceeds_ceiling", e.message))?;
        if self.running.len() >= config.capture.max_concurrent {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "too_many_captures",
                format!(
                    "{} captures are running, the most capture.max_concurrent allows; stop one or wait",
                    self.running.len()
                ),
            ));
        }
        if let Some(why) = self.spool.gate.refusal(Some(&self.spool.journal)) {
            return Err(ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "spool_full",
                format!(
                    "the spool is full ({why}); captures can start again once uploads free it (see pcapctl spool)"
                ),
            ));
        }
        let internal =
            |e: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "capture_failed", e);
        let spool = Spool::new(&config.paths.spool_dir, &config.upload.recipients)
            .map(|s| {
                s.with_journal(self.spool.journal.clone())
                    .with_gate(self.spool.gate.clone())
            })
            .map_err(|e| internal(e.to_string()))?;
        let id = Uuid::now_v7().to_string();
        let spec = CaptureSpec {
            id: id.clone(),
            interface: interface.clone(),
            filter: effective_filter.clone(),
            limits,
            promiscuous: config.capture.promiscuous,
            immediate: config.capture.immediate_mode,
            buffer_size: config.capture.buffer_size,
            rotate_size: config.capture.rotate_size,
            rotate_interval: config.capture.rotate_interval,
            sessions: Some(SessionSpec {
                max: config.sessions.max,
                idle: config.sessions.idle_timeout,
                sharing: self.sharing.clone(),
                virtual_system: config.sessions.virtual_systems.get(&interface).cloned(),
                users: config.sessions.users.clone(),
            }),
        };
        let (worker, done) = Worker::start(spec, spool, self.segments_tx.clone())
            .map_err(|e| internal(e.to_string()))?;
        let record = CaptureRecord {
            id: id.clone(),
            state: CaptureState::Running,
            origin,
            request,
            interface,
            effective_filter,
            limits,
            link_type: worker.linktype_name.clone(),
            grant_id: auth.grant.as_ref().map(|g| g.grant_id),
            started_at: self.clock.now(),
            ended_at: None,
            stop_reason: None,
            error: None,
            stats: Default::default(),
            segments: Vec::new(),
            segments_lost: 0,
            sessions: None,
        };
        if let Err(e) = self.records.save(record.clone()) {
            worker.stop_handle().stop(StopReason::Error);
            return Err(internal(format!(
                "cannot record the capture in the state directory: {e}"
            )));
        }
        self.running.insert(id.clone(), worker);
        let task_id = id.clone();
        self.outcomes
            .spawn(async move { (task_id, done.await.ok()) });
        self.metrics.captures_started.inc();
        self.publish();
        info!(capture = %id, interface = %record.interface, filter = %record.effective_filter, "Capture accepted.");
        Ok(record)
    }

    fn stop_all(&mut self, reason: StopReason) {
        for (id, worker) in &self.running {
            info!(capture = %id, reason = ?reason, "Stopping capture.");
            worker.stop_handle().stop(reason);
        }
    }

    fn add_segment(&mut self, segment: &SegmentInfo) {
        let Some(record) = self.records.get(&segment.sealed.capture_id) else {
            return;
        };
        let mut record = record.clone();
        record.segments.push(SegmentSummary::from(segment));
        record.stats.segments = record.segments.len() as u64;
        if let Err(e) = self.records.save(record) {
            error!(capture = %segment.sealed.capture_id, error = %e, "Cannot update the capture record.");
        }
        self.spool.uploads.wake();
        self.spool.reaper.notify_one();
    }

    fn finish(&mut self, id: &str, outcome: Option<Outcome>) {
        // Segments announced before the outcome belong to the record first.
        while let Ok(segment) = self.segments_rx.try_recv() {
            self.add_segment(&segment);
        }
        if let Some(worker) = self.running.remove(id) {
            tokio::task::spawn_blocking(move || worker.join());
        }
        let Some(mut record) = self.records.get(id).cloned() else {
            return;
        };
        let outcome = outcome.unwrap_or(Outcome {
            reason: StopReason::Error,
            error: Some("the capture thread ended without a result".to_owned()),
            stats: record.stats,
            ended_at: self.clock.now(),
            sessions: None,
            sessions_file: None,
        });
        record.state = if outcome.reason == StopReason::Error {
            CaptureState::Failed
        } else {
            CaptureState::Stopped
        };
        record.ended_at = Some(outcome.ended_at);
        record.stop_reason = Some(outcome.reason);
        record.error = outcome.error.clone();
        record.stats = outcome.stats;
        record.stats.segments = record.segments.len() as u64;
        record.sessions = outcome.sessions.clone();
        if let Some(e) = &outcome.error {
            warn!(capture = %id, reason = ?outcome.reason, error = %e, "Capture ended with an error.");
            self.incidents
                .record(self.clock.now(), "capture", format!("capture {id}: {e}"));
        }
        self.metrics
            .captures_stopped
            .get_or_create(&crate::metrics::ReasonLabel {
                reason: stop_reason_name(outcome.reason),
            })
            .inc();
        if let Err(e) = self.records.save(record.clone()) {
            error!(capture = %id, error = %e, "Cannot record the end of the capture.");
        }
        let config = self.config.borrow().clone();
        if let Err(e) = super::manifest::write(
            &config.paths.spool_dir,
            &self.spool.journal,
            config.device.serial.as_str(),
            config.device.name.as_deref(),
            &record,
        ) {
            error!(capture = %id, error = %e, "Cannot write the capture's manifest; it will not be uploaded.");
        }
        self.spool.uploads.wake();
        self.spool.reaper.notify_one();
        for waiter in self.waiters.remove(id).unwrap_or_default() {
            let _ = waiter.send(Ok(record.clone()));
        }
        self.publish();
    }

    fn publish(&self) {
        self.summary.send_replace(Summary {
            running: self.running.len(),
            total: self.records.list().count(),
        });
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "capture_not_found",
        format!("there is no capture {id}"),
    )
}

/// The stop reason as it appears in JSON and metrics.
pub fn stop_reason_name(reason: StopReason) -> &'static str {
    match reason {
        StopReason::Duration => "duration",
        StopReason::Packets => "packets",
        StopReason::Bytes => "bytes",
        StopReason::Stopped => "stopped",
        StopReason::AuthorizationEnded => "authorization_ended",
        StopReason::Shutdown => "shutdown",
        StopReason::DiskFull => "disk_full",
        StopReason::Error => "error",
    }
}

/// At start: discards unsealed segments a crash left, counting them as lost on their capture,
/// and marks captures that were running when the agent died as failed.
fn recover(
    records: &mut RecordStore,
    config: &Config,
    incidents: &Incidents,
    clock: &dyn Clock,
    journal: &Journal,
) -> std::io::Result<()> {
    let discarded = pcap_uploader::spool::recover(&config.paths.spool_dir, Some(journal))?;
    let mut lost: HashMap<String, u64> = HashMap::new();
    for d in discarded.iter().filter(|d| d.segment) {
        *lost.entry(d.capture_id.clone()).or_default() += 1;
    }
    let interrupted: Vec<CaptureRecord> = records.running().cloned().collect();
    for mut record in interrupted {
        let n = lost.remove(&record.id).unwrap_or(0);
        record.state = CaptureState::Failed;
        record.stop_reason = Some(StopReason::Error);
        record.ended_at = Some(clock.now());
        record.error = Some(format!(
            "the agent stopped while this capture ran; {n} unsealed segment(s) were discarded at restart"
        ));
        record.segments_lost += n;
        record.stats.segments = record.segments.len() as u64;
        error!(capture = %record.id, lost = n, "Capture interrupted by an agent crash.");
        // What was sealed before the crash still gets its manifest and reaches the store.
        super::manifest::write(
            &config.paths.spool_dir,
            journal,
            config.device.serial.as_str(),
            config.device.name.as_deref(),
            &record,
        )?;
        incidents.record(
            clock.now(),
            "capture",
            record.error.clone().unwrap_or_default(),
        );
        records.save(record)?;
    }
    for (id, n) in lost {
        if let Some(mut record) = records.get(&id).cloned() {
            record.segments_lost += n;
            records.save(record)?;
        }
    }
    Ok(())
}
