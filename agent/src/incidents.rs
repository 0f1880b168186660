//! The last few things that went wrong, for `GET /v1/status`: an operator asking "why is it not
//! capturing?" sees the answer without reading the journal.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use serde::Serialize;

/// How many incidents are kept.
const KEEP: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    pub time: Timestamp,
    /// The part of the agent that reported it: `authorization`, `config`, `control`.
    pub source: &'static str,
    pub message: String,
}

/// A shared, bounded list of recent incidents.
#[derive(Debug, Clone, Default)]
pub struct Incidents(Arc<Mutex<VecDeque<Incident>>>);

impl Incidents {
    pub fn record(&self, time: Timestamp, source: &'static str, message: impl Into<String>) {
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if list.len() == KEEP {
            list.pop_front();
        }
        list.push_back(Incident {
            time,
            source,
            message: message.into(),
        });
    }

    /// Newest first.
    pub fn recent(&self) -> Vec<Incident> {
        let list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        list.iter().rev().cloned().collect()
    }
}
