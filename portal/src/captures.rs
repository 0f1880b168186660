//! The research team's captures: list them from their manifests, fetch one (download, verify
//! every file's SHA-256 against the manifest, decrypt with the research identity), delete them
//! after analysis, and purge what is older than the retention limit.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use jiff::{SignedDuration, Timestamp};
use pcap_protocol::store::{Manifest, keys};
use pcap_protocol::{CaptureId, FileName, Reason, Serial};
use serde::Serialize;

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

/// Every capture in the store (or of `serial`), with its manifest read if `manifests`.
pub fn all(
    store: &Store,
    serial: Option<&Serial>,
    manifests: bool,
) -> anyhow::Result<Vec<Capture>> {
    let serials = match serial {
        Some(s) => vec![s.clone()],
        None => store
            .folders(keys::CAPTURES)?
            .iter()
            .filter_map(|s| Serial::parse(s).ok())
            .collect(),
    };
    let mut out = Vec::new();
    for serial in serials {
        let mut by_id: BTreeMap<CaptureId, Vec<(FileName, Object)>> = BTreeMap::new();
        for o in store.list(&keys::captures_of(&serial))? {
            if let Some((_, id, name)) = keys::parse_capture_file(&o.key) {
                by_id.entry(id).or_default().push((name, o));
            }
        }
        for (id, objects) in by_id {
            out.push(describe(store, &serial, id, objects, manifests));
        }
    }
    out.sort_by_key(|c| c.uploaded_at);
    Ok(out)
}

/// A capture from its objects; a manifest that cannot be read is reported, not fatal (the
/// capture can still be listed, purged and deleted).
fn describe(
    store: &Store,
    serial: &Serial,
    id: CaptureId,
    objects: Vec<(FileName, Object)>,
    read_manifest: bool,
) -> Capture {
    let manifest_obj = objects
        .iter()
        .find(|(name, _)| name.is_manifest())
        .map(|(_, o)| o);
    let (manifest, problem) = match manifest_obj.filter(|_| read_manifest) {
        Some(o) => match store.document::<Manifest>(&o.key) {
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
        .or_else(|| objects.iter().map(|(_, o)| o.last_modified).max())
        .unwrap_or_default();
    Capture {
        serial: serial.clone(),
        complete: manifest_obj.is_some(),
        problem,
        reason: manifest.as_ref().map(|m| m.request.reason),
        started_at: manifest.as_ref().map(|m| m.started_at),
        ended_at: manifest.as_ref().and_then(|m| m.ended_at),
        packets: manifest.as_ref().map(|m| m.stats.written),
        bytes: objects.iter().map(|(_, o)| o.size).sum(),
        uploaded_at,
        objects: objects.len(),
        keys: objects.into_iter().map(|(_, o)| o.key).collect(),
        manifest,
        id,
    }
}

fn find(store: &Store, id: &CaptureId) -> anyhow::Result<Capture> {
    all(store, None, true)?
        .into_iter()
        .find(|c| &c.id == id)
        .with_context(|| format!("no capture {id} in the store (see `pcap-portal captures list`)"))
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
    now: Timestamp,
) -> anyhow::Result<ExitCode> {
    let captures = all(store, serial, true)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&captures)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<36}  {:<16}  {:<19}  {:<20}  {:>9}  {:>10}  {:>12}  {:<8}  AGE",
        "ID", "SERIAL", "REASON", "START", "DURATION", "PACKETS", "BYTES", "COMPLETE"
    );
    for c in &captures {
        let duration = match (c.started_at, c.ended_at) {
            (Some(a), Some(b)) => format!("{:.1}s", b.duration_since(a).as_secs_f64()),
            _ => "-".to_owned(),
        };
        println!(
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
        );
    }
    Ok(ExitCode::SUCCESS)
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
        let download = out.join(format!(".{name}.download"));
        let result = (|| -> anyhow::Result<()> {
            let mut file = std::fs::File::create(&download)
                .with_context(|| format!("cannot create {}", download.display()))?;
            let sha = store.download(&rel, &mut file, |n| bar.set_position(done_before + n))?;
            let want = f.sha256.as_deref().unwrap_or_default();
            if !sha.eq_ignore_ascii_case(want) {
                bail!("{name} is corrupted in the store: SHA-256 {sha}, the manifest says {want}");
            }
            let plain = out.join(name.as_str().trim_end_matches(".age"));
            decrypt(&download, &plain, &identities)
                .with_context(|| format!("cannot decrypt {name}"))?;
            Ok(())
        })();
        let _ = std::fs::remove_file(&download);
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

fn decrypt(from: &Path, to: &Path, identities: &[Box<dyn age::Identity>]) -> anyhow::Result<()> {
    let file = std::io::BufReader::new(std::fs::File::open(from)?);
    let decryptor = age::Decryptor::new(file)?;
    let mut reader =
        decryptor.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))?;
    let partial = to.with_extension("partial");
    let mut out = std::fs::File::create(&partial)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        std::io::Write::write_all(&mut out, &buf[..n])?;
    }
    out.sync_all()?;
    std::fs::rename(&partial, to)?;
    Ok(())
}

fn remove(store: &Store, capture: &Capture) -> anyhow::Result<usize> {
    // The manifest goes first: a capture half deleted never looks complete.
    let mut keys = capture.keys.clone();
    keys.sort_by_key(|k| !k.ends_with("/manifest.json"));
    for k in &keys {
        store.delete(k)?;
    }
    Ok(keys.len())
}

pub fn delete(store: &Store, ids: &[CaptureId]) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for id in ids {
        match find(store, id).and_then(|c| remove(store, &c).map(|n| (c, n))) {
            Ok((c, n)) => println!("deleted capture {id} of {} ({n} objects)", c.serial),
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
    let (mut captures, mut objects) = (0, 0);
    for c in all(store, None, false)? {
        if c.uploaded_at >= limit {
            continue;
        }
        let verb = if dry_run { "would delete" } else { "deleted" };
        let n = if dry_run {
            c.objects
        } else {
            remove(store, &c)?
        };
        println!(
            "{verb} capture {} of {} (uploaded {}, {n} objects)",
            c.id, c.serial, c.uploaded_at
        );
        captures += 1;
        objects += n;
    }
    println!(
        "{} {captures} capture(s), {objects} object(s) uploaded before {limit}",
        if dry_run { "would delete" } else { "deleted" }
    );
    Ok(ExitCode::SUCCESS)
}
