//! The agent's side of the spool: it opens the journal and the store, and runs the uploader
//! and the reaper as tasks, with the handles the scheduler and the control socket use.

use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use pcap_config::{Config, SpoolPolicy};
use pcap_protocol::store::SpoolSummary;
use pcap_spool::{Journal, SpoolGate};
use pcap_uploader::bandwidth::Bandwidth;
use pcap_uploader::reaper::{ReapCommand, ReapReport, Reaper, ReaperInputs};
use pcap_uploader::store::Store;
use pcap_uploader::upload::{UploadHandle, UploadSettings, Uploader};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::authz::{AuthState, AuthStatus};

/// Name of the upload runtime's threads.
pub const UPLOAD_THREAD: &str = "pcap-upload";

/// The runtime the uploads run on, apart from the daemon's: its threads (workers and blocking
/// pool alike, where the store client copies and hashes) run at niceness `nice`. Reading a
/// segment back, hashing it and sending it can wait; draining the kernel's capture ring cannot,
/// so on a busy core the capture and segment threads, at the daemon's own priority, come first.
pub fn upload_runtime(nice: i32) -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(UPLOAD_THREAD)
        .on_thread_start(move || lower_priority(nice))
        .enable_all()
        .build()
}

/// Sets the calling thread's niceness to `nice` unless it already runs at a lower priority.
#[allow(unsafe_code)]
fn lower_priority(nice: i32) {
    // SAFETY: gettid, getpriority and setpriority only read or set the scheduling priority of
    // the calling thread (Linux keeps the nice value per thread; PRIO_PROCESS with a thread id
    // names that thread). No memory is shared with the kernel.
    let tid = unsafe { libc::gettid() } as libc::id_t;
    nix::errno::Errno::clear();
    // SAFETY: as above.
    let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) };
    if nix::errno::Errno::last_raw() == 0 && current >= nice {
        return;
    }
    // SAFETY: as above.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
    if rc != 0 {
        tracing::warn!(
            nice,
            error = %std::io::Error::last_os_error(),
            "Cannot lower the priority of an upload thread; uploads compete with captures for CPU."
        );
    }
}

/// The spool's shared parts the scheduler hands to captures and notifies.
#[derive(Debug, Clone)]
pub struct SpoolContext {
    pub journal: Arc<Journal>,
    pub gate: SpoolGate,
    pub uploads: UploadHandle,
    /// Wakes the reaper.
    pub reaper: Arc<Notify>,
}

impl SpoolContext {
    /// Tells the uploader and the reaper that files were sealed or a capture ended.
    pub fn wake(&self) {
        self.uploads.wake();
        self.reaper.notify_one();
    }
}

/// What the control socket needs of the spool.
#[derive(Debug, Clone)]
pub struct SpoolApi {
    pub journal: Arc<Journal>,
    pub uploads: UploadHandle,
    pub reap: mpsc::Sender<ReapCommand>,
    pub reaped: watch::Receiver<ReapReport>,
    /// The reaper's deletions since start.
    pub reap_totals: watch::Receiver<ReapReport>,
    pub gate: SpoolGate,
}

impl SpoolApi {
    /// What the spool in `dir` holds, and whether it refuses new segments.
    pub fn summary(&self, dir: &Path) -> SpoolSummary {
        let usage = pcap_spool::usage::usage(dir);
        SpoolSummary {
            capture_bytes: usage.capture_bytes,
            unuploaded_bytes: self.journal.unuploaded_bytes(),
            journal_bytes: usage.journal_bytes,
            refusing_new_segments: self.gate.is_refusing(),
        }
    }
}

/// The spool's parts, before they run.
#[derive(Debug)]
pub struct SpoolService {
    pub context: SpoolContext,
    pub api: SpoolApi,
    /// The reaper's policy; the daemon sends a reloaded config's policy here.
    pub policy: watch::Sender<SpoolPolicy>,
    uploader: Uploader,
    reaper: Reaper,
    inputs: ReaperInputs,
}

impl SpoolService {
    /// Opens the journal (replaying it) and the store.
    pub fn open(config: &Config) -> Result<Self, String> {
        let dir = &config.paths.spool_dir;
        let (journal, replay) = Journal::open(dir)
            .map_err(|e| format!("cannot open the spool journal in {}: {e}", dir.display()))?;
        if replay.torn_bytes > 0 {
            tracing::warn!(
                bytes = replay.torn_bytes,
                "The spool journal ended in a torn record, now cut."
            );
        }
        let journal = Arc::new(journal);
        let store =
            Store::open(&config.upload.store, &config.upload.s3).map_err(|e| e.to_string())?;
        let (uploader, uploads) = Uploader::new(
            store,
            journal.clone(),
            UploadSettings {
                serial: config.device.serial.clone(),
                spool_dir: dir.clone(),
                part_size: config.upload.part_size as usize,
                concurrency: config.upload.concurrency,
            },
            Bandwidth::new(config.upload.max_bps),
        );
        let gate = SpoolGate::default();
        let nudge = Arc::new(Notify::new());
        let uploader = uploader.notify_after_upload(nudge.clone());
        let reaper = Reaper::new(journal.clone(), dir, gate.clone());
        let (policy, policy_rx) = watch::channel(config.spool.clone());
        let (reap, reap_rx) = mpsc::channel(8);
        let (last, reaped) = watch::channel(ReapReport::default());
        let (totals, reap_totals) = watch::channel(ReapReport::default());
        let (_revoked_tx, revoked) = watch::channel(false);
        Ok(SpoolService {
            context: SpoolContext {
                journal: journal.clone(),
                gate: gate.clone(),
                uploads: uploads.clone(),
                reaper: nudge.clone(),
            },
            api: SpoolApi {
                journal,
                uploads,
                reap,
                reaped,
                reap_totals,
                gate,
            },
            policy,
            uploader,
            reaper,
            inputs: ReaperInputs {
                policy: policy_rx,
                revoked,
                commands: reap_rx,
                nudge,
                last,
                totals,
            },
        })
    }

    /// Starts the uploader on `uploads` (see [`upload_runtime`]) and the reaper (which follows
    /// `auth` for revocations).
    pub fn spawn(
        self,
        tasks: &mut JoinSet<()>,
        mut auth: watch::Receiver<AuthStatus>,
        cancel: &CancellationToken,
        uploads: &Handle,
    ) {
        let (revoked_tx, revoked_rx) = watch::channel(auth.borrow().state == AuthState::Revoked);
        let mut inputs = self.inputs;
        inputs.revoked = revoked_rx;
        let stop = cancel.child_token();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    changed = auth.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let revoked = auth.borrow_and_update().state == AuthState::Revoked;
                        revoked_tx.send_if_modified(|r| std::mem::replace(r, revoked) != revoked);
                    }
                }
            }
        });
        tasks.spawn_on(self.uploader.run(cancel.child_token()), uploads);
        tasks.spawn(
            self.reaper
                .run(inputs, Timestamp::now, cancel.child_token()),
        );
    }
}
