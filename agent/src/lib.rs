//! The pcap-agent daemon: it decides whether captures may run and answers the host's operator.
//!
//! # Layout
//!
//! - [`authz`]: the authorization state machine. Reads and verifies the signed grant, refuses
//!   rolled-back documents, flips state exactly at `not_before` and `expires_at`, and broadcasts
//!   every change on a watch channel.
//! - [`captures`]: admission of each request (in the domain's words), the scheduler that owns
//!   running captures, their persisted records, the manifest base, recovery after a crash.
//! - [`spool`]: the uploader and reaper tasks, with the handles the scheduler and the control
//!   socket use.
//! - [`remote`]: the store as a channel: the request feed, results and the heartbeat.
//! - [`control`]: the HTTP/1.1 + JSON control socket (one file per endpoint, typed bodies in
//!   `control::api`), with peers checked by SO_PEERCRED before anything is read.
//! - [`daemon`]: builds the parts from the config, runs them, reloads the config on SIGHUP or
//!   request, and drains on SIGTERM/SIGINT.
//! - [`client`]: the control socket client used by `pcapctl` and the tests.
//! - [`wake`]: doorbell rings as store reads, at most one a second.
//! - [`metrics`], [`incidents`], [`logging`], [`systemd`], [`clock`], [`fsutil`]: supporting
//!   pieces.
//!
//! # Where the data goes
//!
//! grant (file or store) --verify--> [`authz::Authority`] --watch--> scheduler and control.
//! A request (control socket, or the store through [`remote`]) reaches the scheduler as an
//! `mpsc` message with a `oneshot` reply; admitted, it becomes a capture worker writing into the
//! spool; sealed files go to the uploader, then the reaper. docs/architecture.md follows one
//! request all the way.

#![deny(unsafe_code)]

pub mod authz;
pub mod captures;
pub mod client;
pub mod clock;
pub mod control;
pub mod daemon;
pub mod fsutil;
pub mod incidents;
pub mod logging;
pub mod metrics;
pub mod remote;
pub mod spool;
pub mod systemd;
pub mod wake;

/// The agent's version, as reported in status and heartbeats.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
