//! The agent's side of the store as a channel: the request feed, the results it writes back,
//! and the heartbeat. The store is the only way in: an agent needs outbound access to it and
//! nothing else.
//!
//! - **Requests** (`devices/<serial>/requests/<request_id>.json`, signed with the research
//!   team's request key) are polled every `requests.poll_interval`. A request is refused
//!   ([`verify`]) if its signature does not verify under a request key (an authorization key
//!   does not count), it names another serial, its id differs from its key, it has no
//!   `not_after` or that time has passed (or lies more than [`MAX_REQUEST_LIFETIME`] ahead), or
//!   its id was seen before (the ids seen are kept in `<state_dir>/requests-seen.jsonl` until
//!   their `not_after` is long past, across restarts: [`seen`]). A valid request goes to the
//!   scheduler with exactly the checks of a local one.
//! - **Results** (`devices/<serial>/results/<request_id>.json`): `accepted` with the capture
//!   id, or `refused` with the code and reason; then the final state, stop reason and stats
//!   when the capture ends. A replay of a request already handled gets no new result (that
//!   would overwrite the real one); it is logged and shown in `/v1/status`.
//! - **Heartbeat** (`devices/<serial>/status.json`) every poll interval ([`heartbeat`]); with
//!   a doorbell connected, at once when its state changes and otherwise every
//!   `doorbell.heartbeat_interval` ([`channel`]).
//! - **Doorbell**: with `[doorbell]`, a ring lists the request folder at once (at most once a
//!   second, [`crate::wake`]), and the poll becomes a long safety net while it is connected.

pub mod channel;
mod feed;
pub mod heartbeat;
pub mod seen;
pub mod verify;

pub use feed::Remote;
pub use heartbeat::libpcap_version;
pub use verify::{MAX_REQUEST_LIFETIME, verify_request};
