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
fn all(store: &Store, serial: Option<&Serial>) -> anyhow::Result<Vec<Capture>> {
    let cache = Mutex::new(Cache::default());
    store.block_on(stream(store, serial, false, &cache).try_collect())
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
        Some(o) => match read_manifest_of(store, cache, o).await {
            Ok(m) => (m, None),
            Err(e) => {
                let problem = format!("{e:#}");
                eprintln!("pcap-portal: {problem}");
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
    let Some(bytes) = store.fetch(o, cache).await? else {
        return Ok(None);
    };
    let manifest = pcap_protocol::schema::decode::<Manifest>(&bytes)
        .with_context(|| format!("cannot read {}", o.key))?;
    Ok(Some(manifest))
}

/// The capture `id` with its manifest read.
fn find(store: &Store, id: &CaptureId) -> anyhow::Result<Capture> {
    let found = all(store, None)?.into_iter().find(|c| &c.id == id);
    let Some(mut capture) = found else {
        bail!("no capture {id} in the store (see `pcap-portal captures list`)");
    };
    let manifest_key = keys::capture_file(&capture.serial, id, &FileName::manifest());
    if capture.keys.contains(&manifest_key) {
        match store.document::<Manifest>(&manifest_key) {
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

pub fn list(
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
    let result = store.block_on(async {
        let mut captures = std::pin::pin!(stream(store, serial, true, &cache));
        let mut first = true;
        while let Some(c) = captures.next().await {
            let c = c?;
            progress.inc();
            if json {
                let comma = if std::mem::take(&mut first) { "" } else { "," };
                progress.println(&format!("{comma}{}", serde_json::to_string_pretty(&c)?));
            } else {
                progress.println(&line(&c, now));
            }
        }
        anyhow::Ok(())
    });
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
pub fn fetch(
    store: &Store,
    id: &CaptureId,
    out: &Path,
    identity: &Path,
) -> anyhow::Result<ExitCode> {
    let capture = find(store, id)?;
    let Some(manifest) = &capture.manifest else {
        match &capture.problem {
            Some(problem) => bail!("capture {id} cannot be fetched: {problem}"),
            None => bail!(
                "capture {id} is not complete yet (no manifest in the store); its upload may still be under way"
            ),
        }
    };
    let identities = age::IdentityFile::from_file(identity.to_string_lossy().into_owned())
        .and_then(|f| f.into_identities().map_err(std::io::Error::other))
        .map_err(|e| anyhow::anyhow!("cannot read the age identity {}: {e}", identity.display()))?;
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
        let result = (|| -> anyhow::Result<()> {
            let mut file = std::fs::File::create(&partial)
                .with_context(|| format!("cannot create {}", partial.display()))?;
            let source =
                Source::open(store, &rel)?.with_progress(|n| bar.set_position(done_before + n));
            decrypt_verified(source, f, &identities, &mut |b| file.write_all(b))?;
            file.sync_all()?;
            std::fs::rename(&partial, &plain)?;
            Ok(())
        })();
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
        eprintln!("pcap-portal: {f}");
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

/// A capture file in the store, read as it arrives and checked on the way (with the checksum
/// its manifest lists).
pub struct Source<'a> {
    store: &'a Store,
    rel: String,
    stream: futures::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
    hash: Option<Hasher>,
    read: u64,
    progress: Option<Box<dyn FnMut(u64) + 'a>>,
}

impl<'a> Source<'a> {
    pub fn open(store: &'a Store, rel: &str) -> anyhow::Result<Self> {
        Ok(Source {
            stream: store.get_stream(rel)?,
            store,
            rel: rel.to_owned(),
            chunk: bytes::Bytes::new(),
            hash: None,
            read: 0,
            progress: None,
        })
    }

    /// Calls `progress` with the bytes read so far as they arrive.
    pub fn with_progress(mut self, progress: impl FnMut(u64) + 'a) -> Self {
        self.progress = Some(Box::new(progress));
        self
    }
}

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.store.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(bytes)) => {
                    if let Some(h) = &mut self.hash {
                        h.update(&bytes);
                    }
                    self.read += bytes.len() as u64;
                    if let Some(p) = &mut self.progress {
                        p(self.read);
                    }
                    self.chunk = bytes;
                }
                Some(Err(e)) => {
                    return Err(std::io::Error::other(format!(
                        "cannot read {}: {e}",
                        self.rel
                    )));
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        bytes::Buf::advance(&mut self.chunk, n);
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
    mut source: Source<'_>,
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
fn remove(store: &Store, captures: &[&Capture]) -> anyhow::Result<usize> {
    let (manifests, rest): (Vec<String>, Vec<String>) = captures
        .iter()
        .flat_map(|c| c.keys.iter().cloned())
        .partition(|k| k.ends_with("/manifest.json"));
    store.block_on(async {
        Ok(store.delete_many(manifests).await? + store.delete_many(rest).await?)
    })
}

pub fn delete(store: &Store, ids: &[CaptureId]) -> anyhow::Result<ExitCode> {
    let captures = all(store, None)?;
    let mut failed = false;
    for id in ids {
        let result = match captures.iter().find(|c| &c.id == id) {
            Some(c) => remove(store, &[c]).map(|n| (c, n)),
            None => Err(anyhow::anyhow!(
                "no capture {id} in the store (see `pcap-portal captures list`)"
            )),
        };
        match result {
            Ok((c, n)) => {
                println!("deleted capture {id} of {} ({n} objects)", c.serial);
                let entry = AuditEntry {
                    serial: Some(c.serial.clone()),
                    capture_id: Some(id.clone()),
                    detail: Some(format!("{n} objects")),
                    ..AuditEntry::new(&audit::cli_actor(), AuditAction::DeleteCapture)
                };
                audit::record(store, &entry);
            }
            Err(e) => {
                eprintln!("pcap-portal: {e:#}");
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

pub fn purge(
    store: &Store,
    older_than: std::time::Duration,
    dry_run: bool,
    now: Timestamp,
) -> anyhow::Result<ExitCode> {
    let limit = now - SignedDuration::try_from(older_than)?;
    let captures = all(store, None)?;
    let old: Vec<&Capture> = captures.iter().filter(|c| c.uploaded_at < limit).collect();
    let verb = if dry_run { "would delete" } else { "deleted" };
    let objects = if dry_run {
        old.iter().map(|c| c.objects).sum()
    } else {
        remove(store, &old)?
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
        audit::record(store, &entry);
    }
    Ok(ExitCode::SUCCESS)
}
