//! The scheduler: the one owner of running captures.
//!
//! It starts a capture only if [`admission`](super::admission) admits the request; it stops
//! every running capture within a second when the authorization ends, and with `shutdown` when
//! the daemon drains, waiting for each worker to seal its open segment. Requests arrive as
//! [`SchedulerCommand`]s with a oneshot reply; the answers are the domain's
//! ([`StartRefused`], [`StopError`]), never HTTP.

use std::collections::HashMap;
use std::sync::Arc;

use pcap_capture::{CaptureSpec, Outcome, SegmentInfo, SessionSpec, SharedSharing, Worker};
use pcap_config::Config;
use pcap_protocol::{CaptureId, CaptureRequest, CaptureState, StopReason};
use pcap_spool::Spool;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::admission::{Admitted, Capacity, StartRefused, admit};
use super::record::{CaptureRecord, Origin, RecordStore, SegmentSummary};
use super::{manifest, recovery};
use crate::authz::AuthStatus;
use crate::clock::Clock;
use crate::incidents::Incidents;
use crate::metrics::Metrics;
use crate::spool::SpoolContext;

/// Sealed segments waiting to be recorded; the writer never blocks on this.
const SEGMENT_QUEUE: usize = 1024;

/// Why a capture could not be stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StopError {
    #[error("there is no capture {0}")]
    NotFound(CaptureId),
    #[error("capture {0} has already ended")]
    NotRunning(CaptureId),
}

/// Requests to the scheduler.
#[derive(Debug)]
pub enum SchedulerCommand {
    Start {
        request: Box<CaptureRequest>,
        origin: Origin,
        reply: oneshot::Sender<Result<CaptureRecord, StartRefused>>,
    },
    /// Stop a capture; the reply comes once it has stopped and sealed its segment.
    Stop {
        id: CaptureId,
        reply: oneshot::Sender<Result<CaptureRecord, StopError>>,
    },
    List {
        reply: oneshot::Sender<Vec<CaptureRecord>>,
    },
    Get {
        id: CaptureId,
        reply: oneshot::Sender<Option<CaptureRecord>>,
    },
}

/// What `/v1/status` and the heartbeat show about captures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub running: usize,
    pub total: usize,
}

type StopWaiter = oneshot::Sender<Result<CaptureRecord, StopError>>;

/// Owns the running captures; see the module docs.
#[derive(Debug)]
pub struct Scheduler {
    config: watch::Receiver<Arc<Config>>,
    auth: watch::Receiver<AuthStatus>,
    records: RecordStore,
    running: HashMap<CaptureId, Worker>,
    waiters: HashMap<CaptureId, Vec<StopWaiter>>,
    segments_tx: mpsc::Sender<SegmentInfo>,
    segments_rx: mpsc::Receiver<SegmentInfo>,
    outcomes: JoinSet<(CaptureId, Option<Outcome>)>,
    summary: watch::Sender<Summary>,
    metrics: Metrics,
    incidents: Incidents,
    clock: Arc<dyn Clock>,
    /// The `[sharing]` switches every capture's recorder reads, updated on reload.
    sharing: SharedSharing,
    spool: SpoolContext,
}

impl Scheduler {
    /// Loads the capture records and recovers the spool (see [`recovery`]).
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
        recovery::recover(
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
                        Some(_) => StopError::NotRunning(id),
                        None => StopError::NotFound(id),
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

    /// Admits the request, builds the capture's spec, launches its worker and records it.
    fn start(
        &mut self,
        request: CaptureRequest,
        origin: Origin,
    ) -> Result<CaptureRecord, StartRefused> {
        let config = self.config.borrow().clone();
        let auth = self.auth.borrow().clone();
        let capacity = Capacity {
            running: self.running.len(),
            gate: &self.spool.gate,
            journal: &self.spool.journal,
        };
        let admitted = admit(&config, &auth, &request, self.clock.now(), capacity)?;
        let id = CaptureId::generate();
        let spec = self.spec(&config, &id, &request.interface, &admitted);
        let (worker, done) = self.launch(&config, spec)?;
        let record = CaptureRecord {
            id: id.clone(),
            state: CaptureState::Running,
            origin,
            interface: request.interface.clone(),
            request,
            effective_filter: admitted.effective_filter,
            inner_filter: admitted.inner.as_ref().map(|i| i.filter.clone()),
            limits: admitted.limits,
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
        self.persist(record, worker, done)
    }

    /// What the worker of an admitted capture runs with.
    fn spec(
        &self,
        config: &Config,
        id: &CaptureId,
        interface: &str,
        admitted: &Admitted,
    ) -> CaptureSpec {
        CaptureSpec {
            id: id.clone(),
            interface: interface.to_owned(),
            filter: admitted.effective_filter.clone(),
            inner: admitted.inner.clone(),
            limits: admitted.limits,
            promiscuous: config.capture.promiscuous,
            immediate: config.capture.immediate_mode,
            buffer_size: config.capture.buffer_size,
            rotate_size: config.capture.rotate_size,
            rotate_interval: config.capture.rotate_interval,
            sessions: Some(SessionSpec {
                settings: config.sessions.clone(),
                sharing: self.sharing.clone(),
                virtual_system: config.sessions.virtual_systems.get(interface).cloned(),
            }),
        }
    }

    /// Opens the device and starts the capture's thread, writing into the spool.
    fn launch(
        &self,
        config: &Config,
        spec: CaptureSpec,
    ) -> Result<(Worker, oneshot::Receiver<Outcome>), StartRefused> {
        let failed = |message: String| StartRefused::CaptureFailed { message };
        let spool = Spool::new(&config.paths.spool_dir, config.upload.recipients.clone())
            .map_err(|e| failed(e.to_string()))?
            .with_journal(self.spool.journal.clone())
            .with_gate(self.spool.gate.clone())
            .with_checksum(config.upload.checksum);
        Worker::start(spec, spool, self.segments_tx.clone()).map_err(|e| failed(e.to_string()))
    }

    /// Records a launched capture, durably before it is announced; a capture that cannot be
    /// recorded is stopped.
    fn persist(
        &mut self,
        record: CaptureRecord,
        worker: Worker,
        done: oneshot::Receiver<Outcome>,
    ) -> Result<CaptureRecord, StartRefused> {
        if let Err(e) = self.records.save(record.clone()) {
            worker.stop_handle().stop(StopReason::Error);
            return Err(StartRefused::CaptureFailed {
                message: format!("cannot record the capture in the state directory: {e}"),
            });
        }
        let id = record.id.clone();
        self.running.insert(id.clone(), worker);
        self.outcomes.spawn(async move { (id, done.await.ok()) });
        self.metrics.captures_started.inc();
        self.publish();
        info!(capture = %record.id, interface = %record.interface, filter = %record.effective_filter, "Capture accepted.");
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
        self.spool.wake();
    }

    /// Records how a capture ended, queues its manifest, and answers whoever waits for it.
    fn finish(&mut self, id: &CaptureId, outcome: Option<Outcome>) {
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
        let outcome = outcome.unwrap_or_else(|| Outcome {
            reason: StopReason::Error,
            error: Some("the capture thread ended without a result".to_owned()),
            stats: record.stats,
            ended_at: self.clock.now(),
            sessions: None,
            sessions_file: None,
        });
        record.end(&outcome);
        if let Some(e) = &outcome.error {
            warn!(capture = %id, reason = ?outcome.reason, error = %e, "Capture ended with an error.");
            self.incidents
                .record(self.clock.now(), "capture", format!("capture {id}: {e}"));
        }
        self.metrics
            .captures_stopped
            .get_or_create(&crate::metrics::ReasonLabel {
                reason: outcome.reason.as_str(),
            })
            .inc();
        if let Err(e) = self.records.save(record.clone()) {
            error!(capture = %id, error = %e, "Cannot record the end of the capture.");
        }
        let config = self.config.borrow().clone();
        if let Err(e) = manifest::write(
            &config.paths.spool_dir,
            &self.spool.journal,
            &config.device,
            &record,
            self.clock.now(),
        ) {
            error!(capture = %id, error = %e, "Cannot write the capture's manifest; it will not be uploaded.");
        }
        self.spool.wake();
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
