//! The control socket: HTTP/1.1 with JSON bodies over a Unix socket.
//!
//! [`socket`] binds it safely, [`peer`] decides who may talk to it (SO_PEERCRED), [`server`]
//! accepts connections and routes requests, and each endpoint has its own file. Handlers read
//! shared state from watch channels and send anything that changes the daemon to its core as a
//! [`Command`] with a oneshot reply.

pub mod accept;
pub mod api;
pub mod authorization;
pub mod captures;
pub mod linger;
pub mod metrics;
pub mod peer;
pub mod reload;
pub mod response;
pub mod server;
pub mod socket;
pub mod spool;
pub mod status;

use std::sync::{Arc, RwLock};

use jiff::Timestamp;
use pcap_config::Config;
use tokio::sync::{mpsc, oneshot, watch};

use crate::authz::AuthStatus;
use crate::captures::{SchedulerCommand, Summary};
use crate::clock::Clock;
use crate::incidents::Incidents;
use crate::metrics::Metrics;

pub use api::ReloadReport;
pub use peer::{Access, Peer};
pub use server::serve;
pub use socket::{BoundSocket, bind};

/// Largest request body accepted, in bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// Requests to the daemon's core.
#[derive(Debug)]
pub enum Command {
    /// Re-read the config file; on problems, keep the running config and return them.
    Reload {
        reply: oneshot::Sender<Result<ReloadReport, Vec<String>>>,
    },
}

/// Everything the endpoints share.
#[derive(Debug)]
pub struct Api {
    pub config: watch::Receiver<Arc<Config>>,
    pub auth: watch::Receiver<AuthStatus>,
    pub core: mpsc::Sender<Command>,
    pub scheduler: mpsc::Sender<SchedulerCommand>,
    pub captures: watch::Receiver<Summary>,
    pub spool: crate::spool::SpoolApi,
    pub metrics: Metrics,
    pub incidents: Incidents,
    pub access: RwLock<Arc<Access>>,
    pub clock: Arc<dyn Clock>,
    pub started_at: Timestamp,
    /// The doorbell (never rings when none is configured).
    pub doorbell: pcap_doorbell::Doorbell,
}

impl Api {
    pub fn access(&self) -> Arc<Access> {
        self.access
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_access(&self, access: Access) {
        *self.access.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(access);
    }
}
