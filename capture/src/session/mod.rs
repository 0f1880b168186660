//! Session information: what the traffic of a capture was, in twelve fields the customer
//! chooses to share or not.
//!
//! # Layout
//!
//! - [`packet`]: a frame down to addresses, ports, TCP flags and payload, for Ethernet (with
//!   VLAN tags), Linux cooked capture v1/v2 and raw IP; truncated frames decode as far as they go.
//! - [`tunnel`]: the encapsulations taken off first (VXLAN, GENEVE, GRE, ERSPAN, MPLS, IP in IP,
//!   L2TP, PPPoE), bounded in depth; the session keeps where it was found.
//! - [`reassembly`]: IPv4 and IPv6 fragments put together (bounded), inside tunnels too.
//! - [`table`]: the bounded flow table (bidirectional 5-tuples, idle and overflow eviction).
//! - [`flow`]: one session: initiator, counters, and its inspection ([`stream`]: bounded
//!   in-order reassembly): the first bytes of each direction until a protocol takes them, then
//!   that protocol's parser until it is done.
//! - [`proto`]: the protocol registry (one file per protocol, one descriptor each: detection by
//!   payload probe first and server port second) and the parsers.
//! - [`users`]: the operator's IP-to-user map.
//! - [`record`]: a session as it leaves the host, with the sharing switches applied.
//!
//! # Where the data goes
//!
//! capture worker (every packet it receives whole) -> [`SessionTable`] -> finished sessions ->
//! [`record::record`] with the `[sharing]` switches -> `sessions.json.age` in the spool (JSON
//! lines, encrypted like the segments), and per-application counts in the capture's record.
//! `pcap-agent analyze` runs the same table over a pcap or pcapng file.

pub mod flow;
pub mod packet;
pub mod proto;
pub mod reassembly;
pub mod record;
pub mod stream;
pub mod table;
pub mod tunnel;
pub mod users;

pub use flow::Session;
pub use record::{RecordContext, count_by_application, record};
pub use table::{SessionTable, TableStats};
pub use users::{UserMap, UserMapFile};
