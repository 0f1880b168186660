//! SMB1 and SMB2/3 over direct TCP (445) and the NetBIOS session service (139): the users of
//! SESSION_SETUP (NTLMSSP inside SPNEGO, or SMB1's account in the clear), the shares of
//! TREE_CONNECT as `smb://server/share` URLs, and the file and named-pipe names of CREATE, NT
//! Create AndX and Trans2, for every request of the session, compounded and AndX-chained ones
//! included. Only the client's requests are read; an SMB3 session's encrypted messages give
//! nothing, its clear setup what it gives.
//!
//! - [`smb2`]: the requests of an SMB2/3 message.
//! - [`smb1`]: the requests of an SMB1 message.
//! - [`parser`]: the descriptor, the NetBIOS framing and the parser of a session.
//! - [`wire`]: the fields and share paths both versions read.

pub mod parser;
pub mod smb1;
pub mod smb2;
pub mod wire;

pub use parser::SMB;
