//! The daemon: builds every part from the config, runs them until SIGTERM or SIGINT, reloads the
//! config on SIGHUP or `POST /v1/reload`, and drains within a grace period.
//!
//! One cancellation token tells every task to stop; the daemon knows they are done when the
//! last task in its join set has finished.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use pcap_config::Config;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::authz::{Authority, Settings};
use crate::captures::Scheduler;
use crate::clock::{Clock, SystemClock};
use crate::control::{self, Access, Api, Command, ReloadReport};
use crate::fsutil;
use crate::incidents::Incidents;
use crate::logging::LogHandle;
use crate::metrics::Metrics;
use crate::spool::SpoolService;
use crate::systemd;

/// Quiet time after a config file change before it is reloaded.
const CONFIG_SETTLE: Duration = Duration::from_millis(300);

/// How long the tasks get to finish after a stop signal.
pub const GRACE: Duration = Duration::from_secs(10);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Startup(String),
}

/// Runs the daemon with `config` (read from `config_path`, which reloads re-read).
/// Uploads run on `uploads` (see [`crate::spool::upload_runtime`]).
pub async fn run(
    config_path: PathBuf,
    config: Config,
    log: LogHandle,
    uploads: tokio::runtime::Handle,
) -> Result<(), DaemonError> {
    raise_descriptor_limit();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let incidents = Incidents::default();
    prepare_dirs(&config)?;
    let mut signals = Signals::new()?;
    let metrics_listener = match config.control.metrics_listen {
        Some(addr) => Some((
            addr,
            control::metrics::bind(addr)
                .await
                .map_err(|e| DaemonError::Startup(e.to_string()))?,
        )),
        None => None,
    };

    let cancel = CancellationToken::new();
    let (config_tx, config_rx) = watch::channel(Arc::new(config.clone()));
    let (doorbell, listener) = match &config.doorbell {
        Some(d) => {
            let broker = pcap_doorbell::Broker::from_config(d);
            let (doorbell, task) =
                pcap_doorbell::listen(broker, &config.device.serial, cancel.child_token());
            (doorbell, Some(task))
        }
        None => (pcap_doorbell::Doorbell::none(), None),
    };
    let (authority, auth_rx) = Authority::new(
        Settings::from_config(&config),
        clock.clone(),
        incidents.clone(),
    );
    let authority = authority.with_doorbell(doorbell.clone());
    let socket = control::bind(&config.control).map_err(DaemonError::Startup)?;
    let access = match Access::resolve(&config.control, socket.gid) {
        Ok(a) => a,
        Err(e) => {
            socket.file.remove();
            return Err(DaemonError::Startup(e));
        }
    };
    let metrics = Metrics::new();
    let spool = match SpoolService::open(&config) {
        Ok(s) => s,
        Err(e) => {
            socket.file.remove();
            return Err(DaemonError::Startup(e));
        }
    };
    let (scheduler, captures_rx) = Scheduler::new(
        config_rx.clone(),
        auth_rx.clone(),
        metrics.clone(),
        incidents.clone(),
        clock.clone(),
        spool.context.clone(),
    )
    .map_err(|e| {
        socket.file.remove();
        DaemonError::Startup(format!("cannot recover the capture records and spool: {e}"))
    })?;
    let (scheduler_tx, scheduler_rx) = mpsc::channel(64);
    let (core_tx, mut core_rx) = mpsc::channel(16);
    let api = Arc::new(Api {
        config: config_rx.clone(),
        auth: auth_rx,
        core: core_tx,
        scheduler: scheduler_tx,
        captures: captures_rx,
        spool: spool.api.clone(),
        metrics,
        incidents: incidents.clone(),
        access: RwLock::new(Arc::new(access)),
        clock: clock.clone(),
        started_at: clock.now(),
        doorbell,
    });

    let mut tasks = JoinSet::new();
    if let Some(listener) = listener {
        tasks.spawn(listener);
    }
    let spool_policy = spool.policy.clone();
    spool.spawn(&mut tasks, api.auth.clone(), &cancel, &uploads);
    tasks.spawn(authority.run(config_rx, cancel.child_token()));
    tasks.spawn(scheduler.run(scheduler_rx, cancel.child_token()));
    match crate::remote::Remote::new(api.clone(), &config) {
        Ok(remote) => {
            tasks.spawn(remote.run(cancel.child_token()));
        }
        Err(e) => {
            tracing::error!(error = %e, "No request feed or heartbeat: the store cannot be opened.")
        }
    }
    let (listener, socket_gid, socket_file) = (socket.listener, socket.gid, socket.file);
    let socket_path = socket.path;
    tasks.spawn(control::serve(listener, api.clone(), cancel.child_token()));
    if let Some((addr, listener)) = metrics_listener {
        info!(address = %addr, "Serving GET /metrics over TCP.");
        tasks.spawn(control::metrics::serve(
            listener,
            api.clone(),
            cancel.child_token(),
        ));
    }
    systemd::spawn_watchdog(cancel.child_token());
    systemd::ready();
    info!(
        version = crate::VERSION,
        serial = %config.device.serial,
        socket = %socket_path.display(),
        "pcap-agent started."
    );

    let mut config_watch = fsutil::watch_file(&config_path);
    let mut reloader = Reloader {
        last_seen: std::fs::read(&config_path).ok(),
        path: config_path,
        config: config_tx,
        api: api.clone(),
        log,
        socket_gid,
        incidents,
        spool_policy,
    };
    loop {
        tokio::select! {
            name = stop_signal(&mut signals.term, &mut signals.int) => {
                info!(signal = name, "Shutting down.");
                break;
            }
            _ = signals.hangup.recv() => { let _ = reloader.reload(); }
            Some(()) = fsutil::changed(&mut config_watch) => {
                // Let a file written in several steps settle, then reload if its content changed.
                tokio::time::sleep(CONFIG_SETTLE).await;
                if config_watch.as_ref().is_some_and(|w| !w.complete) {
                    config_watch = fsutil::watch_file(&reloader.path);
                }
                if reloader.file_changed() {
                    let _ = reloader.reload();
                }
            }
            Some(command) = core_rx.recv() => match command {
                Command::Reload { reply } => { let _ = reply.send(reloader.reload()); }
            },
        }
    }

    systemd::stopping();
    cancel.cancel();
    let drained =
        tokio::time::timeout(GRACE, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        warn!(grace = ?GRACE, "Tasks still running after the grace period; stopping them.");
        tasks.abort_all();
    }
    socket_file.remove();
    info!("pcap-agent stopped.");
    Ok(())
}

/// The signals the daemon follows.
struct Signals {
    term: Signal,
    int: Signal,
    hangup: Signal,
}

impl Signals {
    fn new() -> Result<Self, DaemonError> {
        let install = |kind: SignalKind| {
            signal(kind)
                .map_err(|e| DaemonError::Startup(format!("cannot install a signal handler: {e}")))
        };
        Ok(Signals {
            term: install(SignalKind::terminate())?,
            int: install(SignalKind::interrupt())?,
            hangup: install(SignalKind::hangup())?,
        })
    }
}

async fn stop_signal(term: &mut Signal, int: &mut Signal) -> &'static str {
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Applies a new config file, or keeps the old one and says why.
struct Reloader {
    /// The file's content at the last reload attempt, to skip no-op change events.
    last_seen: Option<Vec<u8>>,
    path: PathBuf,
    config: watch::Sender<Arc<Config>>,
    api: Arc<Api>,
    log: LogHandle,
    socket_gid: u32,
    incidents: Incidents,
    spool_policy: watch::Sender<pcap_config::SpoolPolicy>,
}

impl Reloader {
    /// Whether the file differs from what the last reload read.
    fn file_changed(&self) -> bool {
        std::fs::read(&self.path).ok() != self.last_seen
    }

    fn reload(&mut self) -> Result<ReloadReport, Vec<String>> {
        systemd::reloading();
        self.last_seen = std::fs::read(&self.path).ok();
        let result = self.apply();
        let label = if result.is_ok() {
            "applied"
        } else {
            "rejected"
        };
        self.api
            .metrics
            .config_reloads
            .get_or_create(&crate::metrics::ResultLabel { result: label })
            .inc();
        match &result {
            Ok(report) => {
                info!(config = %self.path.display(), needs_restart = ?report.needs_restart, "Config reloaded.")
            }
            Err(problems) => {
                error!(config = %self.path.display(), ?problems, "New config rejected; the running config stays.");
                self.incidents.record(
                    self.api.clock.now(),
                    "config",
                    format!("reload rejected: {}", problems.join("; ")),
                );
            }
        }
        systemd::ready();
        result
    }

    fn apply(&self) -> Result<ReloadReport, Vec<String>> {
        let new = pcap_config::load(&self.path).map_err(|e| e.problems())?;
        let access = Access::resolve(&new.control, self.socket_gid).map_err(|e| vec![e])?;
        let old = self.config.borrow().clone();
        let needs_restart = restart_only_changes(&old, &new);
        self.api.set_access(access);
        self.log.set_level(new.logging.level);
        self.spool_policy.send_replace(new.spool.clone());
        self.config.send_replace(Arc::new(new));
        Ok(ReloadReport {
            config: self.path.display().to_string(),
            needs_restart,
        })
    }
}

/// Settings that a running daemon cannot change.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut note = |changed: bool, key: &str| {
        if changed {
            out.push(key.to_owned());
        }
    };
    note(old.control.socket != new.control.socket, "control.socket");
    note(old.control.mode != new.control.mode, "control.mode");
    note(old.control.group != new.control.group, "control.group");
    note(old.logging.format != new.logging.format, "logging.format");
    note(old.logging.output != new.logging.output, "logging.output");
    note(old.upload != new.upload, "upload");
    let broker = |c: &Config| {
        c.doorbell.as_ref().map(|d| {
            (
                d.broker.clone(),
                d.credentials_file.clone(),
                d.ca_bundle.clone(),
            )
        })
    };
    note(broker(old) != broker(new), "doorbell");
    note(old.paths != new.paths, "paths");
    out
}

fn prepare_dirs(config: &Config) -> Result<(), DaemonError> {
    for dir in [&config.paths.state_dir, &config.paths.spool_dir] {
        create_private_dir(dir)?;
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), DaemonError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            DaemonError::Startup(format!("cannot create directory {}: {e}", dir.display()))
        })
}

/// Raises the soft limit on open files to the hard one (at most 65536): every control
/// connection, capture and upload holds descriptors, and the soft default (1024 under systemd)
/// is meant for programs that use `select`.
fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let wanted = hard.min(65_536);
    if soft < wanted {
        match setrlimit(Resource::RLIMIT_NOFILE, wanted, hard) {
            Ok(()) => tracing::debug!(from = soft, to = wanted, "Raised the open-file limit."),
            Err(e) => warn!(error = %e, soft, "Cannot raise the open-file limit."),
        }
    }
}
