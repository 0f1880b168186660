//! The doorbell: an MQTT connection that tells an agent to read the store now, so that a grant,
//! a revocation or a capture request takes effect in about a second while the agent polls the
//! store only rarely.
//!
//! # Layout
//!
//! - [`broker`]: the broker's address, credentials and TLS settings (rustls with the ring
//!   provider) turned into a client's options.
//! - [`listen`]: the agent's side: subscribes to `pcap-agent/v1/<serial>`, turns every message
//!   into a ring, reconnects with backoff, and reports the connection's state.
//! - [`ring`]: the portal's side: publishes to the topics of the devices it wrote documents for.
//! - [`error`]: what can go wrong, in words an operator can act on.
//!
//! # Trust
//!
//! The broker is not trusted. A message carries nothing the agent acts on: its body is never
//! read, and a ring only makes the agent read the store, where every document is verified as
//! it is without a doorbell. A flood of rings costs at most one store read per second (the
//! agent's readers coalesce them), and a broker that is down or lies only costs latency: the
//! agent goes back to its short poll interval until the doorbell reconnects.

#![forbid(unsafe_code)]

pub mod broker;
pub mod error;
pub mod listen;
pub mod ring;

pub use broker::Broker;
pub use error::DoorbellError;
pub use listen::{Doorbell, ManualRing, listen};
pub use ring::ring;
