//! Authorization: may this device capture right now?
//!
//! The customer's signed grant is read from its source, verified ([`source`]), checked against
//! the highest sequence ever accepted ([`ledger`]), and turned into one of five states
//! ([`state`]). The [`authority`] task keeps that state current: on file changes, on a poll
//! timer, and exactly at `not_before` and `expires_at`.

pub mod authority;
pub mod ledger;
pub mod source;
pub mod state;

pub use authority::{Authority, Settings};
pub use state::{AuthState, AuthStatus, Basis};
