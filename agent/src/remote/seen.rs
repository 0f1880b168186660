//! The ids of remote requests already handled, each with its `not_after`, persisted in the
//! state directory so that a replayed request never runs twice, across restarts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use pcap_protocol::RequestId;

use crate::fsutil::write_atomic;

/// How long past its `not_after` a seen id is still remembered (clock steps, late copies).
const SEEN_GRACE: SignedDuration = SignedDuration::from_hours(24);

/// See the module docs.
#[derive(Debug)]
pub struct Seen {
    path: PathBuf,
    ids: BTreeMap<RequestId, Timestamp>,
}

impl Seen {
    /// Loads the ledger; an unreadable one is an error (guessing would allow replays).
    pub fn open(state_dir: &Path) -> Result<Self, String> {
        let path = state_dir.join("requests-seen.json");
        let ids = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "{} is damaged ({e}); remote requests are refused until it is repaired or removed (removing it allows requests still valid to run again)",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(Seen { path, ids })
    }

    pub fn contains(&self, id: &RequestId) -> bool {
        self.ids.contains_key(id)
    }

    /// Remembers `id` (durably, before the request is acted on) and forgets ids long expired.
    pub fn insert(
        &mut self,
        id: &RequestId,
        not_after: Timestamp,
        now: Timestamp,
    ) -> Result<(), String> {
        self.ids.retain(|_, t| *t + SEEN_GRACE > now);
        self.ids.insert(id.clone(), not_after);
        let bytes = serde_json::to_vec(&self.ids).unwrap_or_default();
        write_atomic(&self.path, &bytes)
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}
