//! The last few things that went wrong, for `GET /v1/status`: an operator asking "why is it not
//! capturing?" sees the answer without reading the journal.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
pub use pcap_protocol::store::Incident;

/// How many incidents are kept.
const KEEP: usize = 20;

/// A shared, bounded list of recent incidents.
#[derive(Debug, Clone, Default)]
pub struct Incidents(Arc<Mutex<VecDeque<Incident>>>);

impl Incidents {
    /// Records what `source` (the part of the agent: `authorization`, `config`, `capture`,
    /// `requests`) reports.
    pub fn record(&self, time: Timestamp, source: &'static str, message: impl Into<String>) {
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if list.len() == KEEP {
            list.pop_front();
        }
        list.push_back(Incident {
            time,
            source: source.to_owned(),
            message: message.into(),
        });
    }

    /// Newest first.
    pub fn recent(&self) -> Vec<Incident> {
        let list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        list.iter().rev().cloned().collect()
    }

    /// The newest one.
    pub fn latest(&self) -> Option<Incident> {
        let list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        list.back().cloned()
    }
}
