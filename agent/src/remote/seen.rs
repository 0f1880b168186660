//! The ids of remote requests already handled, each with its `not_after`, persisted in the
//! state directory so that a replayed request never runs twice, across restarts.
//!
//! The ledger is a log, `<state_dir>/requests-seen.jsonl`, one JSON line per id appended and
//! synced before the request is acted on, so an insert costs the same however many ids are
//! remembered (a store writer flooding the request folder with garbage makes the agent append,
//! not rewrite). After as many appends as it held ids when last rewritten (and at least
//! [`SLACK_LINES`]), the log is rewritten (atomically) with the ids still remembered, those a
//! day past their `not_after` forgotten: the rewrites cost a constant per insert, and the log
//! stays within about twice the ids remembered.
//!
//! ```text
//! {"id":"0193...","not_after":"2026-12-02T10:00:00Z"}\n
//! ```
//!
//! A crash mid-append leaves a last line without its newline: that insert never returned, the
//! request never ran, and the line is ignored. Any other line that does not parse makes the
//! ledger damaged: remote requests are refused until it is repaired (guessing would allow
//! replays). The ledger of earlier versions, `requests-seen.json` (one JSON map), is taken
//! into the log at the first start and removed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use pcap_protocol::RequestId;
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;

/// How long past its `not_after` a seen id is still remembered (clock steps, late copies).
const SEEN_GRACE: SignedDuration = SignedDuration::from_hours(24);
/// Fewest appends between two rewrites of the log.
const SLACK_LINES: usize = 1024;

/// One line of the log.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: RequestId,
    not_after: Timestamp,
}

/// See the module docs.
#[derive(Debug)]
pub struct Seen {
    path: PathBuf,
    log: std::fs::File,
    ids: BTreeMap<RequestId, Timestamp>,
    /// Lines appended since the log was last rewritten.
    appended: usize,
    /// Ids the log held when it was last rewritten (or read).
    rewritten_with: usize,
}

impl Seen {
    /// Loads the ledger; an unreadable one is an error (guessing would allow replays).
    pub fn open(state_dir: &Path) -> Result<Self, String> {
        let path = state_dir.join("requests-seen.jsonl");
        let legacy = state_dir.join("requests-seen.json");
        let damaged = |what: &Path, e: &dyn std::fmt::Display| {
            format!(
                "{} is damaged ({e}); remote requests are refused until it is repaired or removed (removing it allows requests still valid to run again)",
                what.display()
            )
        };
        let mut ids = BTreeMap::new();
        let mut appended = 0;
        match std::fs::read(&path) {
            Ok(bytes) => {
                for (n, line) in complete_lines(&bytes).split(|b| *b == b'\n').enumerate() {
                    if line.is_empty() {
                        continue;
                    }
                    let Line { id, not_after } = serde_json::from_slice(line)
                        .map_err(|e| damaged(&path, &format!("line {}: {e}", n + 1)))?;
                    ids.insert(id, not_after);
                    appended += 1;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        }
        let had_legacy = match std::fs::read(&legacy) {
            Ok(bytes) => {
                let old: BTreeMap<RequestId, Timestamp> =
                    serde_json::from_slice(&bytes).map_err(|e| damaged(&legacy, &e))?;
                ids.extend(old);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(format!("cannot read {}: {e}", legacy.display())),
        };
        let log = open_log(&path)?;
        let mut seen = Seen {
            path,
            log,
            rewritten_with: ids.len(),
            ids,
            appended,
        };
        if had_legacy {
            seen.compact(None)?;
            std::fs::remove_file(&legacy)
                .map_err(|e| format!("cannot remove {}: {e}", legacy.display()))?;
        }
        Ok(seen)
    }

    pub fn contains(&self, id: &RequestId) -> bool {
        self.ids.contains_key(id)
    }

    /// Remembers `id` (durably, before the request is acted on).
    pub fn insert(
        &mut self,
        id: &RequestId,
        not_after: Timestamp,
        now: Timestamp,
    ) -> Result<(), String> {
        let mut line = serde_json::to_vec(&Line {
            id: id.clone(),
            not_after,
        })
        .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        line.push(b'\n');
        self.log
            .write_all(&line)
            .and_then(|()| self.log.sync_data())
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        self.ids.insert(id.clone(), not_after);
        self.appended += 1;
        if self.appended >= self.rewritten_with.max(SLACK_LINES) {
            self.compact(Some(now))?;
        }
        Ok(())
    }

    /// Rewrites the log with the ids remembered, forgetting those long expired at `now`.
    fn compact(&mut self, now: Option<Timestamp>) -> Result<(), String> {
        if let Some(now) = now {
            self.ids.retain(|_, t| *t + SEEN_GRACE > now);
        }
        let mut text = Vec::new();
        for (id, not_after) in &self.ids {
            let line = Line {
                id: id.clone(),
                not_after: *not_after,
            };
            serde_json::to_writer(&mut text, &line)
                .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
            text.push(b'\n');
        }
        write_atomic(&self.path, &text)
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        self.log = open_log(&self.path)?;
        self.appended = 0;
        self.rewritten_with = self.ids.len();
        Ok(())
    }
}

fn open_log(path: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// The part of a log up to its last newline (a torn last line left out).
fn complete_lines(bytes: &[u8]) -> &[u8] {
    match bytes.iter().rposition(|b| *b == b'\n') {
        Some(end) => &bytes[..end],
        None => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> RequestId {
        RequestId::parse(&format!("01930000-0000-7000-8000-{n:012}")).unwrap()
    }

    #[test]
    fn seen_ids_survive_a_reopen_and_a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::now();
        let mut seen = Seen::open(dir.path()).unwrap();
        seen.insert(&id(1), now, now).unwrap();
        seen.insert(&id(2), now, now).unwrap();
        drop(seen);
        // A crash in the middle of the third append.
        let path = dir.path().join("requests-seen.jsonl");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"id\":\"0193").unwrap();
        let seen = Seen::open(dir.path()).unwrap();
        assert!(seen.contains(&id(1)) && seen.contains(&id(2)));
        assert!(!seen.contains(&id(3)));
    }

    #[test]
    fn a_damaged_line_refuses_the_ledger_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("requests-seen.jsonl"), b"garbage\n{}\n").unwrap();
        let e = Seen::open(dir.path()).unwrap_err();
        assert!(e.contains("damaged") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn the_ledger_of_earlier_versions_is_taken_in_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::now();
        let old: BTreeMap<RequestId, Timestamp> = [(id(7), now)].into();
        let legacy = dir.path().join("requests-seen.json");
        std::fs::write(&legacy, serde_json::to_vec(&old).unwrap()).unwrap();
        let seen = Seen::open(dir.path()).unwrap();
        assert!(seen.contains(&id(7)));
        assert!(!legacy.exists());
        assert!(Seen::open(dir.path()).unwrap().contains(&id(7)));
    }

    #[test]
    fn a_flood_of_ids_appends_and_the_log_stays_within_twice_what_is_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests-seen.jsonl");
        let now = Timestamp::now();
        let mut seen = Seen::open(dir.path()).unwrap();
        let lines = || std::fs::read(&path).unwrap().split(|b| *b == b'\n').count() - 1;
        for n in 0..(SLACK_LINES as u32 + 10) {
            seen.insert(&id(n), now, now).unwrap();
            assert!(lines() <= 2 * seen.ids.len() + SLACK_LINES);
        }
        assert_eq!(seen.ids.len(), SLACK_LINES + 10);
        // Ids a day past their `not_after` are forgotten at the next rewrite.
        let later = now + SEEN_GRACE + SignedDuration::from_hours(1);
        for n in 0..(SLACK_LINES as u32 + 20) {
            seen.insert(&id(100_000 + n), later, later).unwrap();
        }
        assert!(!seen.contains(&id(0)), "expired ids were forgotten");
        let again = Seen::open(dir.path()).unwrap();
        assert!(again.contains(&id(100_000)) && !again.contains(&id(0)));
        assert_eq!(again.ids.len(), seen.ids.len());
    }
}
