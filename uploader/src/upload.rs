//! The uploader: takes sealed files from the journal and puts them in the store.
//!
//! Per capture, files go in order (segments by number, then `sessions.json.age`, then the
//! manifest, which is written last: its presence in the store means the capture is complete);
//! several captures upload at once (`upload.concurrency`). A transient failure is retried with
//! exponential backoff and jitter; a permanent one (credentials, bucket) is shown in the status
//! and retried only every few minutes, without a storm. An upload a failure or a crash
//! interrupted is aborted (S3 multipart) or cleaned (local staging files) before the file
//! starts over, so no upload is left open in the store.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use object_store::ObjectStoreExt;
use pcap_protocol::store::UploadStatus;
use pcap_protocol::{CaptureId, FileName, Serial, schema};
use pcap_spool::{Entry, Journal, State};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::bandwidth::Bandwidth;
use crate::store::{Store, UploadError, Uploaded};

/// First wait after a transient failure; doubles with each attempt up to [`RETRY_MAX`].
const RETRY_BASE: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(300);
/// Wait after a permanent failure before trying again (an operator may have fixed it).
const PERMANENT_RETRY: Duration = Duration::from_secs(300);
/// Longest sleep when nothing is due, in case a wake-up was missed.
const IDLE: Duration = Duration::from_secs(30);

/// What the uploader needs to know.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    pub serial: Serial,
    pub spool_dir: PathBuf,
    pub part_size: usize,
    pub concurrency: usize,
}

/// Shared handle to the uploader: wake it, read its status.
#[derive(Debug, Clone, Default)]
pub struct UploadHandle {
    wake: Arc<Notify>,
    status: Arc<Mutex<UploadStatus>>,
}

impl UploadHandle {
    /// Tells the uploader that there may be new work (a sealed file, an ended capture).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn status(&self) -> UploadStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut UploadStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// Sort key of a capture's files: segments in order, then the session records, then the
/// manifest.
fn rank(name: &FileName) -> (u8, &str) {
    let order = if name.is_segment() {
        0
    } else if name.is_manifest() {
        2
    } else {
        1
    };
    (order, name.as_str())
}

/// The next file of a capture to upload, if its turn has come.
fn next_of(mut files: Vec<Entry>) -> Option<Entry> {
    files.sort_by(|a, b| rank(&a.name).cmp(&rank(&b.name)));
    let blocked = |e: &Entry| matches!(e.state, State::Open | State::Sealed | State::Uploading);
    let next = files.iter().find(|e| e.state == State::Sealed)?.clone();
    // The manifest goes only when everything else is settled.
    if next.name.is_manifest() && files.iter().any(|e| !e.name.is_manifest() && blocked(e)) {
        return None;
    }
    // Nothing overtakes an earlier file of the same capture.
    let earlier_open = files
        .iter()
        .take_while(|e| e.name != next.name)
        .any(|e| matches!(e.state, State::Open | State::Uploading));
    (!earlier_open).then_some(next)
}

/// Exponential backoff with up to 50% jitter.
fn backoff(attempts: u32) -> Duration {
    let base = RETRY_BASE
        .saturating_mul(1 << attempts.min(10))
        .min(RETRY_MAX);
    let mut byte = [0u8; 1];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte);
    base + base.mul_f64(f64::from(byte[0]) / 512.0)
}

/// The uploader task; see the module docs.
#[derive(Debug)]
pub struct Uploader {
    store: Store,
    journal: Arc<Journal>,
    settings: UploadSettings,
    bandwidth: Arc<Bandwidth>,
    handle: UploadHandle,
    not_before: HashMap<(CaptureId, FileName), Instant>,
    /// Woken after each upload (the reaper: uploaded files may go now).
    uploaded: Option<Arc<Notify>>,
}

impl Uploader {
    pub fn new(
        store: Store,
        journal: Arc<Journal>,
        settings: UploadSettings,
        bandwidth: Bandwidth,
    ) -> (Self, UploadHandle) {
        let handle = UploadHandle::default();
        (
            Uploader {
                store,
                journal,
                settings,
                bandwidth: Arc::new(bandwidth),
                handle: handle.clone(),
                not_before: HashMap::new(),
                uploaded: None,
            },
            handle,
        )
    }

    /// Notifies `after_upload` each time a file has been uploaded.
    pub fn notify_after_upload(mut self, after_upload: Arc<Notify>) -> Self {
        self.uploaded = Some(after_upload);
        self
    }

    /// Runs until `cancel`; uploads under way when it comes are left to the journal (they
    /// start over at the next start).
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut running: JoinSet<(Entry, Result<Uploaded, UploadError>)> = JoinSet::new();
        let mut busy: HashSet<CaptureId> = HashSet::new();
        loop {
            let wait = self.start_due(&mut running, &mut busy);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.handle.wake.notified() => {}
                Some(done) = running.join_next() => {
                    if let Ok((entry, result)) = done {
                        busy.remove(&entry.capture);
                        self.finish(entry, result);
                    }
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Starts every upload whose turn has come; returns how long until the next retry is due.
    fn start_due(
        &mut self,
        running: &mut JoinSet<(Entry, Result<Uploaded, UploadError>)>,
        busy: &mut HashSet<CaptureId>,
    ) -> Duration {
        let now = Instant::now();
        let mut next_due = IDLE;
        let mut by_capture: HashMap<CaptureId, Vec<Entry>> = HashMap::new();
        for e in self.journal.entries() {
            by_capture.entry(e.capture.clone()).or_default().push(e);
        }
        for (capture, files) in by_capture {
            if busy.len() >= self.settings.concurrency {
                break;
            }
            if busy.contains(&capture) {
                continue;
            }
            let Some(entry) = next_of(files) else {
                continue;
            };
            if let Some(at) = self
                .not_before
                .get(&(entry.capture.clone(), entry.name.clone()))
                && *at > now
            {
                next_due = next_due.min(*at - now);
                continue;
            }
            busy.insert(capture);
            running.spawn(self.upload(entry));
        }
        next_due
    }

    /// The upload of one file, as a task.
    fn upload(
        &self,
        entry: Entry,
    ) -> impl std::future::Future<Output = (Entry, Result<Uploaded, UploadError>)> + use<> {
        let store = self.store.clone();
        let journal = self.journal.clone();
        let bandwidth = self.bandwidth.clone();
        let settings = self.settings.clone();
        async move {
            let key = store.capture_key(&settings.serial, &entry.capture, &entry.name);
            // What an earlier attempt (or a crash) left open goes first, so that no upload
            // stays open in the store.
            if entry.interrupted {
                info!(capture = %entry.capture, file = %entry.name, "Aborting an interrupted upload before starting over.");
                if let Err(e) = store.abort(&key, entry.upload_id.as_deref()).await {
                    return (entry, Err(e));
                }
                let _ = journal.update(&entry.capture, &entry.name, |e| {
                    e.interrupted = false;
                    e.upload_id = None;
                });
            }
            let journaled = journal.update(&entry.capture, &entry.name, |e| {
                e.state = State::Uploading;
                e.interrupted = true;
                e.attempts += 1;
            });
            if let Err(e) = journaled {
                return (
                    entry,
                    Err(UploadError::Transient(format!(
                        "cannot write the journal: {e}"
                    ))),
                );
            }
            let result = if entry.name.is_manifest() {
                upload_manifest(&store, &key, &settings.spool_dir, &journal, &entry.capture).await
            } else {
                let (capture, name) = (entry.capture.clone(), entry.name.clone());
                let journal2 = journal.clone();
                let path = settings
                    .spool_dir
                    .join(entry.capture.as_str())
                    .join(entry.name.as_str());
                let sealed = journal
                    .get(&entry.capture, &entry.name)
                    .and_then(|e| e.checksum().map(|(kind, v)| (kind, v.to_owned())));
                store
                    .upload_file(
                        &key,
                        &path,
                        settings.part_size,
                        &bandwidth,
                        sealed.as_ref().map(|(kind, v)| (*kind, v.as_str())),
                        move |id| {
                            let _ = journal2.update(&capture, &name, |e| {
                                e.upload_id = id.map(str::to_owned);
                            });
                        },
                    )
                    .await
            };
            (entry, result)
        }
    }

    /// A spool file that changed after sealing: its upload is removed from the store and it is
    /// recorded as lost (the manifest says so), never passed off as good.
    fn lose_corrupted(&mut self, entry: &Entry, why: &str) {
        error!(capture = %entry.capture, file = %entry.name, error = %why, "A spool file is corrupted; it is recorded as lost.");
        let key = self
            .store
            .capture_key(&self.settings.serial, &entry.capture, &entry.name);
        let objects = self.store.objects();
        tokio::spawn(async move {
            if let Err(e) = objects.delete(&key).await {
                warn!(key = %key, error = %e, "Cannot remove the upload of a corrupted file.");
            }
        });
        let _ = self.journal.update(&entry.capture, &entry.name, |e| {
            e.state = State::Lost;
            e.interrupted = false;
            e.upload_id = None;
            e.reason = Some(why.to_owned());
        });
        self.not_before
            .remove(&(entry.capture.clone(), entry.name.clone()));
        self.handle.update(|s| {
            s.failed_attempts += 1;
            s.last_error = Some(why.to_owned());
        });
    }

    fn finish(&mut self, entry: Entry, result: Result<Uploaded, UploadError>) {
        let id = (entry.capture.clone(), entry.name.clone());
        if let Err(UploadError::Corrupted(why)) = &result {
            self.lose_corrupted(&entry, why);
            return;
        }
        match result {
            Ok(done) => {
                let now = Timestamp::now();
                let recorded = self.journal.update(&entry.capture, &entry.name, |e| {
                    e.state = State::Uploaded;
                    e.interrupted = false;
                    e.upload_id = None;
                    e.last_error = None;
                    e.uploaded_at = Some(now);
                });
                if let Err(e) = recorded {
                    error!(capture = %entry.capture, file = %entry.name, error = %e, "Uploaded, but cannot record it in the journal.");
                }
                self.not_before.remove(&id);
                info!(capture = %entry.capture, file = %entry.name, bytes = done.size, "Uploaded.");
                if let Some(n) = &self.uploaded {
                    n.notify_one();
                }
                self.handle.update(|s| {
                    s.uploaded_files += 1;
                    s.uploaded_bytes += done.size;
                    s.permanent_error = None;
                    s.last_upload = Some(now);
                    if entry.name.is_manifest() {
                        s.manifests += 1;
                    }
                });
            }
            Err(e) => {
                let attempts = self
                    .journal
                    .get(&entry.capture, &entry.name)
                    .map_or(1, |e| e.attempts);
                let wait = if e.is_permanent() {
                    PERMANENT_RETRY
                } else {
                    backoff(attempts)
                };
                let _ = self.journal.update(&entry.capture, &entry.name, |x| {
                    x.state = State::Sealed;
                    // Whatever the attempt left behind is cleaned before the next one.
                    x.interrupted = true;
                    x.last_error = Some(e.to_string());
                });
                self.not_before.insert(id, Instant::now() + wait);
                if e.is_permanent() {
                    error!(capture = %entry.capture, file = %entry.name, error = %e, retry_in = ?wait, "Upload refused by the store; an operator must act.");
                } else {
                    warn!(capture = %entry.capture, file = %entry.name, error = %e, attempts, retry_in = ?wait, "Upload failed; retrying.");
                }
                self.handle.update(|s| {
                    s.failed_attempts += 1;
                    s.last_error = Some(e.to_string());
                    if e.is_permanent() {
                        s.permanent_error = Some(e.to_string());
                    }
                });
            }
        }
    }
}

/// Completes the manifest of `capture` from its base and the journal, and stores it.
async fn upload_manifest(
    store: &Store,
    key: &object_store::path::Path,
    spool_dir: &std::path::Path,
    journal: &Journal,
    capture: &CaptureId,
) -> Result<Uploaded, UploadError> {
    let manifest = pcap_spool::manifest::complete(spool_dir, journal, capture, Timestamp::now())
        .map_err(UploadError::Transient)?;
    let bytes = schema::encode(&manifest);
    let size = bytes.len() as u64;
    store.put_bytes(key, bytes).await?;
    Ok(Uploaded {
        size,
        verified: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str, state: State) -> Entry {
        Entry::new(
            &CaptureId::parse("c").unwrap(),
            &FileName::parse(name).unwrap(),
            state,
        )
    }

    #[test]
    fn files_go_in_order_and_the_manifest_last() {
        use State::*;
        let next = |files: Vec<Entry>| next_of(files).map(|e| e.name.to_string());
        assert_eq!(
            next(vec![
                e("000002.pcap.age", Sealed),
                e("000001.pcap.age", Sealed)
            ])
            .as_deref(),
            Some("000001.pcap.age")
        );
        assert_eq!(
            next(vec![
                e("000001.pcap.age", Uploading),
                e("000002.pcap.age", Sealed)
            ]),
            None,
            "one at a time per capture"
        );
        assert_eq!(
            next(vec![
                e("000001.pcap.age", Uploaded),
                e(FileName::MANIFEST, Sealed),
                e("sessions.json.age", Sealed)
            ])
            .as_deref(),
            Some("sessions.json.age")
        );
        assert_eq!(
            next(vec![
                e("000001.pcap.age", Open),
                e(FileName::MANIFEST, Sealed)
            ]),
            None,
            "the manifest waits"
        );
        assert_eq!(
            next(vec![
                e("000001.pcap.age", Lost),
                e("sessions.json.age", Uploaded),
                e(FileName::MANIFEST, Sealed)
            ])
            .as_deref(),
            Some(FileName::MANIFEST)
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) >= RETRY_BASE && backoff(0) <= RETRY_BASE * 2);
        assert!(backoff(3) >= RETRY_BASE * 8);
        assert!(backoff(30) <= RETRY_MAX * 2);
    }
}
