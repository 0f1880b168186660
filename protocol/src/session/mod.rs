//! The session vocabulary: what a record of a session is made of, as `sessions.json` holds it.
//!
//! # Layout
//!
//! - [`field`]: the twelve fields the customer shares or not ([`Field`]), and a set of them
//!   ([`FieldSet`], what `[sharing]` becomes).
//! - [`app`]: the application names ([`App`]), one per protocol, as records carry them.
//! - [`record`]: one session's record ([`SessionRecord`]), a field switched off absent from it.
//! - [`json`]: a record written as its JSON line directly, the bytes serde would write.
//!
//! # Where the data goes
//!
//! The agent's flow table fills a record per session with the fields its `[sharing]` switches
//! allow, and writes them as JSON lines into `sessions.json.age` (and `pcap-agent analyze` to
//! stdout); the research team reads them back as the same type.

pub mod app;
pub mod field;
pub mod json;
pub mod record;

pub use app::App;
pub use field::{Field, FieldSet};
pub use record::{
    Directions, Dropped, LayerRecord, OuterRecord, SessionRecord, Shared, Transport, TunnelRecord,
};
