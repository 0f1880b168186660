//! HTTP/1.x, and RTSP and SIP, which share its shape: every request of a session (keep-alive
//! and pipelining), its URL, file name and Basic user, and each response's
//! `Content-Disposition` file name, and the file names of `multipart/form-data` uploads.
//! Bodies are skipped by their length or chunk sizes without being scanned ([`body`]; only an
//! upload's parts are looked for, [`multipart`]); heads are read leniently ([`head`]); users
//! come from Basic, NTLM and Negotiate credentials. A `CONNECT` that succeeds or a switch of
//! protocols ends the inspection: what follows is another protocol.
//!
//! - [`flavor`]: which of the three a message is, by its start line's version.
//! - [`head`]: one message head, read leniently.
//! - [`body`]: bodies skipped by their framing.
//! - [`multipart`]: the part file names of uploads.
//! - [`parser`]: the descriptors and the parser of a session.

pub mod body;
pub mod flavor;
pub mod head;
pub mod multipart;
pub mod parser;

pub use flavor::{Flavor, flavor};
pub use parser::{HEADER_LIMIT, HTTP, RTSP, SIP, ssdp_parser};
