//! The research team's captures: list them from their manifests, fetch one (download, verify
//! every file's SHA-256 against the manifest, decrypt with the research identity), delete them
//! after analysis, and purge what is older than the retention limit.
//!
//! Each command starts from one paged LIST of `captures/` (or of one device's captures);
//! manifests are read with up to `--concurrency` requests in flight (and never twice: a
//! manifest does not change, so the cache serves it), and deletions go in batches (S3's
//! DeleteObjects, 1,000 keys a request).

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, bail};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use jiff::{SignedDuration, Timestamp};
use pcap_protocol::store::{AuditAction, AuditEntry, Manifest, keys};
use pcap_protocol::{CaptureId, FileName, Reason, Serial};
use serde::Serialize;

use pcap_spool::checksum::Hasher;

use crate::audit;
use crate::cache::Cache;
use crate::listing::{Progress, runs};
use crate::store::{Object, Store};

/// A capture as the store holds it.
#[derive(Debug, Clone, Serialize)]
pub struct Capture {
    pub id: CaptureId,
    pub serial: Serial,
    /// The manifest, if the capture is complete.
    #[serde(skip)]
    pub manifest: Option<Manifest>,
    /// Its manifest is in the store: every other file was uploaded before it.
    pub complete: bool,
    /// Why the manifest could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub reason: Option<Reason>,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub packets: Option<u64>,
    pub bytes: u64,
    /// When it was uploaded: the manifest's time in the store, else the newest object's.
    pub uploaded_at: Timestamp,
    pub objects: usize,
    #[serde(skip)]
    pub keys: Vec<String>,
}

/// The serial and capture id of a capture file's key.
fn capture_of(key: &str) -> Option<(Serial, CaptureId)> {
    keys::parse_capture_file(key).map(|(serial, id, _)| (serial, id))
}

/// Every capture in the store (or of `serial`), in listing order, streamed from one paged
/// LIST; with `manifests`, each manifest is read (through the cache: a manifest never changes)
/// with up to `--concurrency` reads in flight.
pub fn stream<'a>(
    store: &'a Store,
    serial: Option<&Serial>,
    manifests: bool,
    cache: &'a Mutex<Cache>,
) -> impl futures::Stream<Item = anyhow::Result<Capture>> + 'a {
    let prefix = serial.map_or_else(|| keys::CAPTURES.to_owned(), keys::captures_of);
    runs(store.list_stream(&prefix), capture_of)
        .map(move |run| async move {
            let ((serial, id), objects) = run?;
            Ok(describe(store, cache, serial, id, objects, manifests).await)
        })
        .buffered(store.concurrency())
}

/// Every capture (or of `serial`), without reading manifests.
async fn all(store: &Store, serial: Option<&Serial>) -> anyhow::Result<Vec<Capture>> {
    let cache = Mutex::new(Cache::default());
    stream(store, serial, false, &cache).try_collect().await
}

/// A capture from its objects; a manifest that cannot be read is reported, not fatal (the
/// capture can still be listed, purged and deleted).
async fn describe(
    store: &Store,
    cache: &Mutex<Cache>,
    serial: Serial,
    id: CaptureId,
    objects: Vec<Object>,
    read_manifest: bool,
) -> Capture {
    let manifest_obj = objects
        .iter()
        .find(|o| keys::parse_capture_file(&o.key).is_some_and(|(_, _, n)| n.is_manifest()));
    let (manifest, problem) = match manifest_obj.filter(|_| read_manifest) {
        Some(o) => match read_manifest_of(store, cache, o).await.and_then(|m| {
            m.map(|m| check_manifest(&serial, &id, &m).map(|()| m))
                .transpose()
        }) {
            Ok(m) => (m, None),
            Err(e) => {
                let problem = format!("{e:#}");
                eprintln!("pcap-portal: {}", crate::text::clean(&problem));
                (None, Some(problem))
            }
        },
        None => (None, None),
    };
    let uploaded_at = manifest_obj
        .map(|o| o.last_modified)
        .or_else(|| objects.iter().map(|o| o.last_modified).max())
        .unwrap_or_default();
    Capture {
        serial,
        complete: manifest_obj.is_some(),
        problem,
        reason: manifest.as_ref().map(|m| m.request.reason),
        started_at: manifest.as_ref().map(|m| m.started_at),
        ended_at: manifest.as_ref().and_then(|m| m.ended_at),
        packets: manifest.as_ref().map(|m| m.stats.written),
        bytes: objects.iter().map(|o| o.size).sum(),
        uploaded_at,
        objects: objects.len(),
        keys: objects.into_iter().map(|o| o.key).collect(),
        manifest,
        id,
    }
}

async fn read_manifest_of(
    store: &Store,
    cache: &Mutex<Cache>,
    o: &Object,
) -> anyhow::Result<Option<Manifest>> {
    store
        .fetch(o, cache, |b| {
            Ok(pcap_protocol::schema::decode::<Manifest>(b)?)
        })
        .await
}

/// A capture as the CLI names it: `SERIAL/ID`, or its id alone (`--serial` may give the
/// serial). Captures are known by both: a device uploads under any id it likes, so an id alone
/// may name captures of several devices.
#[derive(Debug, Clone)]
pub struct CaptureRef {
    pub serial: Option<Serial>,
    pub id: CaptureId,
}

impl std::str::FromStr for CaptureRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (serial, id) = match text.split_once('/') {
            Some((serial, id)) => (Some(Serial::parse(serial).map_err(|e| e.to_string())?), id),
            None => (None, text),
        };
        let id = CaptureId::parse(id).map_err(|e| e.to_string())?;
        Ok(CaptureRef { serial, id })
    }
}

impl CaptureRef {
    /// The same capture with `serial` if it names none of its own (a serial of its own that
    /// differs is an error).
    pub fn on(self, serial: Option<&Serial>) -> anyhow::Result<Self> {
        match (&self.serial, serial) {
            (Some(own), Some(given)) if own != given => bail!(
                "{own}/{} names device {own}, but --serial says {given}",
                self.id
            ),
            (None, Some(given)) => Ok(CaptureRef {
                serial: Some(given.clone()),
                ..self
            }),
            _ => Ok(self),
        }
    }
}

/// The one capture `r` names, without its manifest: refused, with the list, when its id alone
/// matches captures of several devices.
async fn resolve(store: &Store, r: &CaptureRef) -> anyhow::Result<Capture> {
    let mut found: Vec<Capture> = all(store, r.serial.as_ref())
        .await?
        .into_iter()
        .filter(|c| c.id == r.id)
        .collect();
    match found.len() {
        0 => match &r.serial {
            Some(serial) => bail!(
                "no capture {serial}/{} in the store (see `pcap-portal captures list`)",
                r.id
            ),
            None => bail!(
                "no capture {} in the store (see `pcap-portal captures list`)",
                r.id
            ),
        },
        1 => Ok(found.remove(0)),
        _ => {
            let names: Vec<String> = found
                .iter()
                .map(|c| format!("{}/{}", c.serial, c.id))
                .collect();
            bail!(
                "capture id {} is in the store for {} devices ({}): name the one meant as SERIAL/ID",
                r.id,
                found.len(),
                names.join(", ")
            )
        }
    }
}

/// Checks that `m`, read from the folder of `serial`'s capture `id`, describes that capture: a
/// manifest that names another device or capture is not trusted.
pub fn check_manifest(serial: &Serial, id: &CaptureId, m: &Manifest) -> anyhow::Result<()> {
    if &m.serial != serial || &m.capture_id != id {
        bail!(
            "the manifest of {serial}/{id} names capture {}/{}: it is not trusted (the device that uploaded it may be compromised)",
            m.serial,
            m.capture_id
        );
    }
    Ok(())
}

/// The capture `r` names, with its manifest read (and checked against where it lies).
async fn find(store: &Store, r: &CaptureRef) -> anyhow::Result<Capture> {
    let mut capture = resolve(store, r).await?;
    let manifest_key = keys::capture_file(&capture.serial, &capture.id, &FileName::manifest());
    if capture.keys.contains(&manifest_key) {
        match store
            .document::<Manifest>(&manifest_key)
            .await
            .and_then(|m| {
                m.map(|m| check_manifest(&capture.serial, &capture.id, &m).map(|()| m))
                    .transpose()
            }) {
            Ok(m) => capture.manifest = m,
            Err(e) => capture.problem = Some(format!("{e:#}")),
        }
    }
    Ok(capture)
}

fn age_of(t: Timestamp, now: Timestamp) -> String {
    let secs = now.duration_since(t).as_secs().max(0);
    match secs {
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

pub async fn list(
    store: &Store,
    serial: Option<&Serial>,
    json: bool,
    cache: Cache,
    now: Timestamp,
) -> anyhow::Result<ExitCode> {
    let cache = Mutex::new(cache);
    let progress = Progress::new("captures");
    if json {
        progress.println("[");
    } else {
        progress.println(&format!(
            "{:<36}  {:<16}  {:<19}  {:<20}  {:>9}  {:>10}  {:>12}  {:<8}  AGE",
            "ID", "SERIAL", "REASON", "START", "DURATION", "PACKETS", "BYTES", "COMPLETE"
        ));
    }
    let result = async {
        let mut captures = std::pin::pin!(stream(store, serial, true, &cache));
        let mut first = true;
        while let Some(c) = captures.next().await {
            let c = c?;
            progress.inc();
            if json {
                let comma = if std::mem::take(&mut first) { "" } else { "," };
                let text = serde_json::to_string_pretty(&c)?;
                progress.println(&format!("{comma}{}", crate::text::json(&text)));
            } else {
                progress.println(&crate::text::clean(&line(&c, now)));
            }
        }
        anyhow::Ok(())
    }
    .await;
    progress.finish();
    if json {
        println!("]");
    }
    Cache::save_shared(cache, &format!("{}/", keys::CAPTURES));
    result?;
    Ok(ExitCode::SUCCESS)
}

fn line(c: &Capture, now: Timestamp) -> String {
    let duration = match (c.started_at, c.ended_at) {
        (Some(a), Some(b)) => format!("{:.1}s", b.duration_since(a).as_secs_f64()),
        _ => "-".to_owned(),
    };
    format!(
        "{:<36}  {:<16}  {:<19}  {:<20}  {:>9}  {:>10}  {:>12}  {:<8}  {}",
        c.id,
        c.serial,
        c.reason.map_or("-", Reason::as_str),
        c.started_at.map_or("-".to_owned(), |t| t
            .strftime("%Y-%m-%dT%H:%M:%S")
            .to_string()),
        duration,
        c.packets.map_or("-".to_owned(), |p| p.to_string()),
        c.bytes,
        if c.complete { "yes" } else { "no" },
        age_of(c.uploaded_at, now)
    )
}

/// Downloads a complete capture into `out`: every file verified against the manifest, then
/// decrypted (`000001.pcap`, ..., `sessions.json`); `manifest.json` beside them.
pub async fn fetch(
    store: &Store,
    capture: &CaptureRef,
    out: &Path,
    identity: &Path,
) -> anyhow::Result<ExitCode> {
    let capture = find(store, capture).await?;
    let id = &capture.id;
    let Some(manifest) = &capture.manifest else {
        match &capture.problem {
            Some(problem) => bail!("capture {id} cannot be fetched: {problem}"),
            None => bail!(
                "capture {id} is not complete yet (no manifest in the store); its upload may still be under way"
            ),
        }
    };
    // Checked once here, read again by each file's decryption (off the async workers).
    identities(identity)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let files: Vec<_> = manifest.uploaded().collect();
    let total: u64 = files.iter().map(|f| f.size).sum();
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:20} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut failures = Vec::new();
    let mut done_before = 0u64;
    for f in &files {
        let name = &f.name;
        bar.set_message(name.to_string());
        let rel = keys::capture_file(&capture.serial, id, name);
        let plain = out.join(plain_name(name));
        let partial = plain.with_extension("partial");
        let result = match Source::open(store, &rel).await {
            Err(e) => Err(e),
            Ok(source) => {
                let (bar, file, partial, identity) = (
                    bar.clone(),
                    (*f).clone(),
                    partial.clone(),
                    identity.to_owned(),
                );
                tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                    let mut out = std::fs::File::create(&partial)
                        .with_context(|| format!("cannot create {}", partial.display()))?;
                    let source = source.with_progress(move |n| bar.set_position(done_before + n));
                    decrypt_verified(source, &file, &identities(&identity)?, &mut |b| {
                        out.write_all(b)
                    })?;
                    out.sync_all()?;
                    std::fs::rename(&partial, &plain)?;
                    Ok(())
                })
                .await
                .unwrap_or_else(|e| Err(anyhow::anyhow!("the decryption stopped: {e}")))
            }
        };
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        done_before += f.size;
        bar.set_position(done_before);
        if let Err(e) = result {
            failures.push(format!("{e:#}"));
        }
    }
    bar.finish_and_clear();
    std::fs::write(
        out.join(FileName::MANIFEST),
        pcap_protocol::schema::encode(manifest),
    )?;
    let lost: Vec<&str> = manifest.lost().map(|f| f.name.as_str()).collect();
    println!(
        "capture {id} of {}: {} file(s) in {}",
        capture.serial,
        files.len() - failures.len(),
        out.display()
    );
    if !lost.is_empty() {
        println!("lost on the device, never uploaded: {}", lost.join(", "));
    }
    for f in &failures {
        eprintln!("pcap-portal: {}", crate::text::clean(f));
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The name a capture file has once decrypted: `000001.pcap`, `sessions.json`.
pub fn plain_name(name: &FileName) -> &str {
    name.as_str().trim_end_matches(".age")
}

/// The age identities of the file `path` (the research team's `research.age`).
pub fn identities(path: &Path) -> anyhow::Result<Vec<Box<dyn age::Identity>>> {
    age::IdentityFile::from_file(path.to_string_lossy().into_owned())
        .and_then(|f| f.into_identities().map_err(std::io::Error::other))
        .map_err(|e| anyhow::anyhow!("cannot read the age identity {}: {e}", path.display()))
}

/// The bytes of a capture file in the store as a blocking reader.
type Bridge = tokio_util::io::SyncIoBridge<
    tokio_util::io::StreamReader<BoxStream<'static, std::io::Result<bytes::Bytes>>, bytes::Bytes>,
>;

/// A capture file in the store, read as it arrives and checked on the way (with the checksum
/// its manifest lists). It is opened on the runtime and read on a blocking thread (age
/// decrypts through [`Read`]): the bridge waits for the store's bytes there.
pub struct Source {
    rel: String,
    reader: Bridge,
    hash: Option<Hasher>,
    read: u64,
    progress: Option<Box<dyn FnMut(u64) + Send>>,
}

impl Source {
    /// Opens `rel` in `store`; called on the runtime (the reader remembers it).
    pub async fn open(store: &Store, rel: &str) -> anyhow::Result<Self> {
        let what = rel.to_owned();
        let stream = store
            .get_stream(rel)
            .await?
            .map_err(move |e| std::io::Error::other(format!("cannot read {what}: {e}")))
            .boxed();
        Ok(Source {
            rel: rel.to_owned(),
            reader: tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream)),
            hash: None,
            read: 0,
            progress: None,
        })
    }

    /// Calls `progress` with the bytes read so far as they arrive.
    pub fn with_progress(mut self, progress: impl FnMut(u64) + Send + 'static) -> Self {
        self.progress = Some(Box::new(progress));
        self
    }
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.reader.read(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::Other => e,
            _ => std::io::Error::other(format!("cannot read {}: {e}", self.rel)),
        })?;
        if let Some(h) = &mut self.hash {
            h.update(&buf[..n]);
        }
        self.read += n as u64;
        if let Some(p) = &mut self.progress {
            p(self.read);
        }
        Ok(n)
    }
}

/// Decrypts the capture file `source` (described by `file` in the manifest) with
/// `identities`, handing the plain bytes to `out` as they come, in one pass over the store's
/// bytes. age authenticates every 64 KiB chunk, so no altered byte reaches `out`; the size
/// and the checksum of the whole encrypted file (CRC-64/NVME or SHA-256, whichever the
/// manifest lists) are checked against the manifest at its end (which also catches a file
/// swapped for another encrypted to the same recipient), and an error then means that what
/// `out` received must be thrown away.
pub fn decrypt_verified(
    mut source: Source,
    file: &pcap_protocol::store::ManifestFile,
    identities: &[Box<dyn age::Identity>],
    out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let Some((kind, want)) = file.checksum() else {
        bail!(
            "the manifest lists no checksum for {}: it cannot be verified",
            file.name
        );
    };
    source.hash = Some(Hasher::new(kind));
    let name = &file.name;
    {
        let corrupted = |what: String| anyhow::anyhow!("{name} is corrupted in the store: {what}");
        let decryptor =
            age::Decryptor::new_buffered(std::io::BufReader::with_capacity(1 << 16, &mut source))
                .map_err(|e| corrupted(format!("its age header does not parse ({e})")))?;
        let mut reader = decryptor
            .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => anyhow::anyhow!(
                    "cannot decrypt {name}: it is not encrypted to the research identity given"
                ),
                e => corrupted(format!("its age header does not open ({e})")),
            })?;
        let mut buf = vec![0u8; 1 << 16];
        let mut offset = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(|e| {
                corrupted(format!(
                    "the data after plain byte {offset} fails age's authentication ({e})"
                ))
            })?;
            if n == 0 {
                break;
            }
            out(&buf[..n])?;
            offset += n as u64;
        }
    }
    // Whatever follows the last chunk counts too.
    std::io::copy(&mut source, &mut std::io::sink())?;
    let got = source.hash.take().map(Hasher::finish).unwrap_or_default();
    if source.read != file.size || !got.eq_ignore_ascii_case(want) {
        bail!(
            "{name} is corrupted in the store: {} bytes with {} {got}, the manifest says {} bytes with {want}",
            source.read,
            kind.as_str(),
            file.size
        );
    }
    Ok(())
}

/// Deletes every object of `captures`: their manifests first, so that a capture half
/// deleted never looks complete; returns the objects deleted.
async fn remove(store: &Store, captures: &[&Capture]) -> anyhow::Result<usize> {
    let (manifests, rest): (Vec<String>, Vec<String>) = captures
        .iter()
        .flat_map(|c| c.keys.iter().cloned())
        .partition(|k| k.ends_with("/manifest.json"));
    Ok(store.delete_many(manifests).await? + store.delete_many(rest).await?)
}

pub async fn delete(store: &Store, captures: &[CaptureRef]) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for r in captures {
        let result = match resolve(store, r).await {
            Ok(c) => remove(store, &[&c]).await.map(|n| (c, n)),
            Err(e) => Err(e),
        };
        match result {
            Ok((c, n)) => {
                let id = &c.id;
                println!("deleted capture {id} of {} ({n} objects)", c.serial);
                let entry = AuditEntry {
                    serial: Some(c.serial.clone()),
                    capture_id: Some(id.clone()),
                    detail: Some(format!("{n} objects")),
                    ..AuditEntry::new(&audit::cli_actor(), AuditAction::DeleteCapture)
                };
                audit::record(store, &entry).await;
            }
            Err(e) => {
                eprintln!("pcap-portal: {}", crate::text::clean(&format!("{e:#}")));
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn purge(
    store: &Store,
    older_than: std::time::Duration,
    dry_run: bool,
    now: Timestamp,
) -> anyhow::Result<ExitCode> {
    let limit = now - SignedDuration::try_from(older_than)?;
    let captures = all(store, None).await?;
    let old: Vec<&Capture> = captures.iter().filter(|c| c.uploaded_at < limit).collect();
    let verb = if dry_run { "would delete" } else { "deleted" };
    let objects = if dry_run {
        old.iter().map(|c| c.objects).sum()
    } else {
        remove(store, &old).await?
    };
    for c in &old {
        println!(
            "{verb} capture {} of {} (uploaded {}, {} objects)",
            c.id, c.serial, c.uploaded_at, c.objects
        );
    }
    println!(
        "{verb} {} capture(s), {objects} object(s) uploaded before {limit}",
        old.len()
    );
    if !dry_run && !old.is_empty() {
        let entry = AuditEntry {
            detail: Some(format!(
                "{} capture(s), {objects} object(s) uploaded before {limit}",
                old.len()
            )),
            ..AuditEntry::new(&audit::cli_actor(), AuditAction::Purge)
        };
        audit::record(store, &entry).await;
    }
    Ok(ExitCode::SUCCESS)
}
