//! The reaper: the only deleter of local spool files. It keeps the spool bounded:
//!
//! 1. uploaded files go once `keep_uploaded_for` has passed (0: right after upload);
//! 2. files older than `max_age` go even if not uploaded (lost, logged as an error);
//! 3. on revocation with `on_revoke = "purge"`, every unuploaded file goes: the customer's
//!    withdrawal covers data still on the host;
//! 4. while the spool is over `max_bytes` or its file system under `min_free_percent` free,
//!    uploaded files go first, oldest first, one at a time with a re-check after each; then
//!    either new segments are refused (`on_full = "refuse"`, running captures stop with
//!    `disk_full`) or the oldest unuploaded files go (`"drop_oldest"`, lost).
//!
//! Every deletion is journaled first. Capture directories whose files are all settled are
//! removed with their manifest base.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use pcap_config::{OnFull, OnRevoke, SpoolPolicy};
use pcap_protocol::{CaptureId, FileName};
use pcap_spool::usage::{dir_size, free_percent};
use pcap_spool::{Entry, Journal, MANIFEST_BASE, SpoolGate, State};
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

/// What one run of the reaper did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReapReport {
    pub deleted_uploaded: u64,
    pub expired: u64,
    pub purged: u64,
    pub dropped_for_quota: u64,
    /// Whether new segments are refused after this run.
    pub refusing: bool,
    pub spool_bytes: u64,
    pub free_percent: Option<u8>,
}

/// See the module docs.
#[derive(Debug)]
pub struct Reaper {
    journal: Arc<Journal>,
    dir: PathBuf,
    gate: SpoolGate,
}

fn age_exceeds(since: Option<Timestamp>, now: Timestamp, limit: std::time::Duration) -> bool {
    let Some(since) = since else {
        return false;
    };
    now.duration_since(since) >= SignedDuration::try_from(limit).unwrap_or(SignedDuration::MAX)
}

impl Reaper {
    pub fn new(journal: Arc<Journal>, dir: &Path, gate: SpoolGate) -> Self {
        Reaper {
            journal,
            dir: dir.to_owned(),
            gate,
        }
    }

    /// Runs every rule once at time `now`; `revoked` says whether the grant was revoked.
    pub fn reap(&self, policy: &SpoolPolicy, now: Timestamp, revoked: bool) -> ReapReport {
        let mut report = ReapReport::default();
        for e in self.journal.entries() {
            match e.state {
                // The manifest's local file is its base, removed with the capture's directory.
                State::Uploaded
                    if !e.name.is_manifest()
                        && age_exceeds(e.uploaded_at, now, policy.keep_uploaded_for) =>
                {
                    self.delete(&e, State::Deleted, "uploaded");
                    report.deleted_uploaded += 1;
                }
                State::Sealed
                    if revoked && policy.on_revoke == OnRevoke::Purge && !e.name.is_manifest() =>
                {
                    self.delete(
                        &e,
                        State::Lost,
                        "purged: the customer revoked the authorization",
                    );
                    report.purged += 1;
                }
                State::Sealed
                    if !e.name.is_manifest() && age_exceeds(e.sealed_at, now, policy.max_age) =>
                {
                    error!(capture = %e.capture, file = %e.name, "Deleting a segment older than spool.max_age that was never uploaded.");
                    self.delete(&e, State::Lost, "older than spool.max_age, never uploaded");
                    report.expired += 1;
                }
                _ => {}
            }
        }
        self.enforce_quota(policy, &mut report);
        self.remove_settled_captures();
        report
    }

    fn enforce_quota(&self, policy: &SpoolPolicy, report: &mut ReapReport) {
        let over = |r: &mut ReapReport| {
            r.spool_bytes = dir_size(&self.dir);
            r.free_percent = free_percent(&self.dir);
            r.spool_bytes > policy.max_bytes
                || r.free_percent.is_some_and(|f| f < policy.min_free_percent)
        };
        let oldest = |state: State| {
            let mut list: Vec<Entry> = self
                .journal
                .entries()
                .into_iter()
                .filter(|e| e.state == state && !e.name.is_manifest())
                .collect();
            list.sort_by_key(|e| {
                if state == State::Uploaded {
                    e.uploaded_at
                } else {
                    e.sealed_at
                }
            });
            list
        };
        for e in oldest(State::Uploaded) {
            if !over(report) {
                break;
            }
            self.delete(&e, State::Deleted, "uploaded, deleted for the spool quota");
            report.deleted_uploaded += 1;
        }
        if policy.on_full == OnFull::DropOldest {
            for e in oldest(State::Sealed) {
                if !over(report) {
                    break;
                }
                error!(capture = %e.capture, file = %e.name, "Dropping a segment never uploaded to keep the spool quota (on_full = drop_oldest).");
                self.delete(
                    &e,
                    State::Lost,
                    "dropped for the spool quota (on_full = drop_oldest)",
                );
                report.dropped_for_quota += 1;
            }
        }
        let refusing = over(report);
        if refusing != self.gate.is_refusing() {
            if refusing {
                warn!(bytes = report.spool_bytes, free = ?report.free_percent, "The spool is full; new segments are refused until uploads free space.");
            } else {
                info!(bytes = report.spool_bytes, "The spool has room again.");
            }
        }
        let unuploaded_limit = match policy.on_full {
            OnFull::Refuse => policy.max_bytes,
            OnFull::DropOldest => u64::MAX,
        };
        self.gate.set(refusing, unuploaded_limit);
        report.refusing = refusing;
    }

    fn delete(&self, e: &Entry, state: State, reason: &str) {
        // Journal first: a crash after this leaves a file the journal calls gone, which the
        // next start removes; never the other way round.
        if let Err(err) = self.journal.update(&e.capture, &e.name, |x| {
            x.state = state;
            x.reason = Some(reason.to_owned());
        }) {
            warn!(capture = %e.capture, file = %e.name, error = %err, "Cannot journal a deletion; the file stays.");
            return;
        }
        let path = self.dir.join(e.capture.as_str()).join(e.name.as_str());
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => warn!(file = %path.display(), error = %err, "Cannot delete a spool file."),
        }
    }

    /// Removes the directories of captures whose files are all uploaded-and-deleted or lost.
    fn remove_settled_captures(&self) {
        let Ok(dirs) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for d in dirs
            .filter_map(Result::ok)
            .filter(|d| d.file_type().is_ok_and(|t| t.is_dir()))
        {
            let Ok(capture) = CaptureId::parse(&d.file_name().to_string_lossy()) else {
                continue;
            };
            let files = self.journal.capture(&capture);
            let manifest_done = files
                .iter()
                .any(|e| e.name.is_manifest() && e.state == State::Uploaded);
            let all_gone = files
                .iter()
                .filter(|e| !e.name.is_manifest())
                .all(|e| matches!(e.state, State::Deleted | State::Lost));
            if manifest_done && all_gone {
                let _ = std::fs::remove_file(d.path().join(MANIFEST_BASE));
                if std::fs::remove_dir(d.path()).is_ok() {
                    let _ = self.journal.update(&capture, &FileName::manifest(), |e| {
                        e.state = State::Deleted
                    });
                }
            }
        }
    }
}

/// Requests to the reaper task.
#[derive(Debug)]
pub enum ReapCommand {
    /// Run now and answer with the report.
    Now(tokio::sync::oneshot::Sender<ReapReport>),
}

/// Inputs of the reaper task that change while it runs.
#[derive(Debug)]
pub struct ReaperInputs {
    pub policy: tokio::sync::watch::Receiver<SpoolPolicy>,
    /// Whether the grant is revoked.
    pub revoked: tokio::sync::watch::Receiver<bool>,
    pub commands: tokio::sync::mpsc::Receiver<ReapCommand>,
    /// Woken after uploads and seals, so uploaded files do not wait for the interval.
    pub nudge: Arc<tokio::sync::Notify>,
    pub last: tokio::sync::watch::Sender<ReapReport>,
    /// Deletions summed over every run since start (for `/metrics`).
    pub totals: tokio::sync::watch::Sender<ReapReport>,
}

impl ReaperInputs {
    fn publish(&self, report: &ReapReport) {
        self.last.send_replace(report.clone());
        self.totals.send_modify(|t| {
            t.deleted_uploaded += report.deleted_uploaded;
            t.expired += report.expired;
            t.purged += report.purged;
            t.dropped_for_quota += report.dropped_for_quota;
            t.refusing = report.refusing;
            t.spool_bytes = report.spool_bytes;
            t.free_percent = report.free_percent;
        });
    }
}

impl Reaper {
    /// Runs every `reap_interval`, when nudged, on request, and when the grant is revoked,
    /// until `cancel`. `now` gives the wall-clock time (injectable for tests).
    pub async fn run(
        self,
        mut inputs: ReaperInputs,
        now: impl Fn() -> Timestamp + Send + 'static,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        loop {
            let policy = inputs.policy.borrow().clone();
            let report = self.reap(&policy, now(), *inputs.revoked.borrow());
            inputs.publish(&report);
            let reply = tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(policy.reap_interval) => None,
                _ = inputs.nudge.notified() => None,
                Ok(()) = inputs.revoked.changed() => None,
                Ok(()) = inputs.policy.changed() => None,
                Some(ReapCommand::Now(reply)) = inputs.commands.recv() => Some(reply),
            };
            if let Some(reply) = reply {
                let policy = inputs.policy.borrow().clone();
                let report = self.reap(&policy, now(), *inputs.revoked.borrow());
                inputs.publish(&report);
                let _ = reply.send(report);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
        journal: Arc<Journal>,
        reaper: Reaper,
        gate: SpoolGate,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path()).unwrap();
        let journal = Arc::new(journal);
        let gate = SpoolGate::default();
        let reaper = Reaper::new(journal.clone(), dir.path(), gate.clone());
        Fixture {
            dir,
            journal,
            reaper,
            gate,
        }
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn policy() -> SpoolPolicy {
        SpoolPolicy {
            max_bytes: 1 << 40,
            min_free_percent: 0,
            keep_uploaded_for: Duration::ZERO,
            max_age: Duration::from_secs(3600),
            on_full: OnFull::Refuse,
            on_revoke: OnRevoke::Purge,
            reap_interval: Duration::from_secs(60),
        }
    }

    fn cap() -> CaptureId {
        CaptureId::parse("cap").unwrap()
    }

    fn name(n: &str) -> FileName {
        FileName::parse(n).unwrap()
    }

    impl Fixture {
        /// A spool file of `size` bytes, sealed at `sealed`, uploaded at `uploaded`.
        fn file(&self, name: &str, size: usize, sealed: i64, uploaded: Option<i64>) {
            let dir = self.dir.path().join("cap");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), vec![0u8; size]).unwrap();
            let mut e = Entry::new(
                &cap(),
                &self::name(name),
                if uploaded.is_some() {
                    State::Uploaded
                } else {
                    State::Sealed
                },
            );
            e.size = size as u64;
            e.sealed_at = Some(t(sealed));
            e.uploaded_at = uploaded.map(t);
            self.journal.put(e).unwrap();
        }

        fn state(&self, name: &str) -> State {
            self.journal.get(&cap(), &self::name(name)).unwrap().state
        }

        fn exists(&self, name: &str) -> bool {
            self.dir.path().join("cap").join(name).exists()
        }
    }

    #[test]
    fn uploaded_files_go_after_keep_uploaded_for_and_unuploaded_ones_stay() {
        let f = fixture();
        f.file("000001.pcap.age", 10, 0, Some(10));
        f.file("000002.pcap.age", 10, 5, None);
        let mut p = policy();
        p.keep_uploaded_for = Duration::from_secs(60);
        assert_eq!(f.reaper.reap(&p, t(69), false).deleted_uploaded, 0);
        assert_eq!(f.reaper.reap(&p, t(70), false).deleted_uploaded, 1);
        assert!(!f.exists("000001.pcap.age") && f.exists("000002.pcap.age"));
        assert_eq!(f.state("000001.pcap.age"), State::Deleted);
    }

    #[test]
    fn files_older_than_max_age_go_even_unuploaded_and_count_as_lost() {
        let f = fixture();
        f.file("000001.pcap.age", 10, 0, None);
        assert_eq!(f.reaper.reap(&policy(), t(3599), false).expired, 0);
        assert_eq!(f.reaper.reap(&policy(), t(3600), false).expired, 1);
        assert_eq!(f.state("000001.pcap.age"), State::Lost);
        assert!(!f.exists("000001.pcap.age"));
    }

    #[test]
    fn revocation_purges_unuploaded_files_unless_kept() {
        let f = fixture();
        f.file("000001.pcap.age", 10, 0, None);
        let mut keep = policy();
        keep.on_revoke = OnRevoke::Keep;
        assert_eq!(f.reaper.reap(&keep, t(1), true).purged, 0);
        assert_eq!(f.reaper.reap(&policy(), t(1), true).purged, 1);
        assert_eq!(f.state("000001.pcap.age"), State::Lost);
    }

    #[test]
    fn the_quota_deletes_uploaded_first_then_refuses_or_drops_the_oldest() {
        let f = fixture();
        f.file("000001.pcap.age", 4000, 0, None);
        f.file("000002.pcap.age", 4000, 1, Some(2));
        f.file("000003.pcap.age", 4000, 3, None);
        let mut p = policy();
        p.keep_uploaded_for = Duration::from_secs(86_400);
        p.max_bytes = 9000 + 1000; // room for the journal
        let r = f.reaper.reap(&p, t(4), false);
        assert_eq!((r.deleted_uploaded, r.refusing), (1, false), "{r:?}");
        assert!(!f.exists("000002.pcap.age"));

        p.max_bytes = 5000 + 1000;
        let r = f.reaper.reap(&p, t(5), false);
        assert!(
            r.refusing && f.gate.is_refusing(),
            "unuploaded data is not deleted: new segments are refused"
        );
        assert!(f.exists("000001.pcap.age") && f.exists("000003.pcap.age"));

        p.on_full = OnFull::DropOldest;
        let r = f.reaper.reap(&p, t(6), false);
        assert_eq!((r.dropped_for_quota, r.refusing), (1, false));
        assert!(
            !f.exists("000001.pcap.age") && f.exists("000003.pcap.age"),
            "the oldest went"
        );
        assert!(!f.gate.is_refusing());
    }

    #[test]
    fn the_quota_is_checked_when_a_segment_would_start_not_only_when_the_reaper_runs() {
        let f = fixture();
        let mut p = policy();
        p.max_bytes = 100;
        // The reaper ran with room to spare...
        f.reaper.reap(&p, t(0), false);
        assert_eq!(f.gate.refusal(Some(&f.journal)), None);
        // ...then segments were sealed faster than it runs.
        f.file("000001.pcap.age", 60, 1, None);
        assert_eq!(f.gate.refusal(Some(&f.journal)), None);
        f.file("000002.pcap.age", 60, 2, None);
        let why = f.gate.refusal(Some(&f.journal)).expect("over the quota");
        assert!(why.contains("spool.max_bytes"), "{why}");
        // Uploaded files do not count: the reaper deletes them when it must.
        f.journal
            .update(&cap(), &name("000002.pcap.age"), |e| {
                e.state = State::Uploaded
            })
            .unwrap();
        assert_eq!(f.gate.refusal(Some(&f.journal)), None);
        // With drop_oldest the reaper makes room instead: segments always start.
        f.journal
            .update(&cap(), &name("000002.pcap.age"), |e| {
                e.state = State::Sealed
            })
            .unwrap();
        p.on_full = OnFull::DropOldest;
        p.max_bytes = 1000;
        f.reaper.reap(&p, t(3), false);
        f.file("000003.pcap.age", 2000, 3, None);
        assert_eq!(f.gate.refusal(Some(&f.journal)), None);
    }

    #[test]
    fn a_complete_capture_leaves_nothing_once_its_manifest_is_uploaded() {
        let f = fixture();
        f.file("000001.pcap.age", 10, 0, Some(1));
        f.file("sessions.json.age", 10, 0, Some(2));
        std::fs::write(f.dir.path().join("cap").join(MANIFEST_BASE), b"{}").unwrap();
        let mut manifest = Entry::new(&cap(), &FileName::manifest(), State::Sealed);
        manifest.size = 2;
        f.journal.put(manifest).unwrap();
        f.reaper.reap(&policy(), t(3), false);
        assert!(!f.exists("000001.pcap.age") && !f.exists("sessions.json.age"));
        assert!(
            f.exists(MANIFEST_BASE),
            "kept until the manifest is in the store"
        );
        f.journal
            .update(&cap(), &FileName::manifest(), |e| {
                e.state = State::Uploaded;
                e.uploaded_at = Some(t(4));
            })
            .unwrap();
        f.reaper.reap(&policy(), t(5), false);
        assert!(
            !f.dir.path().join("cap").exists(),
            "the capture's directory is gone"
        );
        assert_eq!(f.state(FileName::MANIFEST), State::Deleted);
    }
}
