//! The pcap-agent daemon: it decides whether captures may run and answers the host's operator.
//!
//! # Layout
//!
//! - [`authz`]: the authorization state machine. Reads and verifies the signed grant, refuses
//!   rolled-back documents, flips state exactly at `not_before` and `expires_at`, and broadcasts
//!   every change on a watch channel.
//! - [`daemon`]: builds the parts from the config, runs them, reloads the config on SIGHUP or
//!   request, and drains on SIGTERM/SIGINT.
//! - [`control`]: the HTTP/1.1 + JSON control socket (one file per endpoint), with peers checked
//!   by SO_PEERCRED before anything is read.
//! - [`client`]: the control socket client used by `pcapctl` and the tests.
//! - [`metrics`], [`logging`], [`systemd`], [`clock`], [`fsutil`]: supporting pieces.
//!
//! # Where the data goes
//!
//! grant file --verify--> [`authz::Authority`] --watch--> control (`/v1/authorization`) and, with
//! the capture engine, the scheduler. Control requests reach the daemon's core as `mpsc`
//! messages with a `oneshot` reply.

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

/// The agent's version, as reported in status and heartbeats.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
