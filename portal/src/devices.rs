//! `devices list`: every device that reported to the store or has a grant, with its grant as
//! the document says and its state as the device says.
//!
//! One LIST of `devices/` (paged by the store, 1,000 keys a page on S3) finds every device's
//! `grant.json` and `status.json` with their ETags; only documents whose ETag changed since the
//! last listing are read ([`crate::cache`]), up to `--concurrency` at a time, and rows are
//! printed in listing order as they are ready. A fleet where little changed costs a few LIST
//! pages instead of two GETs per device.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use pcap_protocol::store::{Heartbeat, keys};
use pcap_protocol::{
    AuthState, AuthorizationDocument, Envelope, Period, Serial, SigningKey, Validity, VerifyKey,
    VerifyKeys,
};
use serde::Serialize;

use crate::cache::Cache;
use crate::listing::{Progress, runs};
use crate::store::{Object, Store};

/// Options of `devices list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    #[arg(long)]
    json: bool,
    /// Verify the grants with this public key (default: derived from PCAP_AUTHORIZATION_KEY).
    #[arg(long, env = "PCAP_AUTHORIZATION_PUB")]
    verify_key: Option<std::path::PathBuf>,
}

/// One row of `devices list`.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub serial: String,
    pub name: Option<String>,
    pub agent_version: Option<String>,
    pub last_seen: Option<Timestamp>,
    pub period: Option<Period>,
    pub not_before: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub sequence: Option<u64>,
    /// What the grant document says, verified: `authorized`, `expired`, `revoked`, ...;
    /// `unverified` when there is no key to verify it with, `invalid: ...` when it fails.
    pub state: String,
    /// What an unverified document claims its state is (shown as a claim, never as fact).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed: Option<String>,
    /// What the device says, from its heartbeat.
    pub device_state: Option<AuthState>,
    /// Why the device is not authorized, or why it refused the last document.
    pub device_reason: Option<String>,
    /// Whether the device takes capture requests from the store (unknown for old agents).
    pub takes_requests: Option<bool>,
    /// The device's doorbell: connected, connecting, down (none without one).
    pub doorbell: Option<String>,
    /// Why the device's heartbeat is not trusted (it names another device).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untrusted: Option<String>,
}

/// The serial of a key under `devices/`.
fn serial_of(key: &str) -> Option<Serial> {
    let rest = key.strip_prefix(keys::DEVICES)?.strip_prefix('/')?;
    Serial::parse(rest.split('/').next()?).ok()
}

/// The key to verify grants with: `--verify-key`, else derived from PCAP_AUTHORIZATION_KEY.
pub fn verify_keys(verify_key: Option<&Path>) -> anyhow::Result<Option<VerifyKeys>> {
    Ok(match verify_key {
        Some(path) => Some(VerifyKeys::new(vec![VerifyKey::load(path)?])),
        None => std::env::var_os("PCAP_AUTHORIZATION_KEY")
            .and_then(|p| SigningKey::load(Path::new(&p)).ok())
            .map(|k| VerifyKeys::new(vec![k.verify_key()])),
    })
}

/// Every device's row in listing order, handed to `each` as soon as it is ready, with the
/// store's documents read through `cache`; `progress` counts them.
pub async fn for_each_row(
    store: &Store,
    keys: Option<&VerifyKeys>,
    cache: &Mutex<Cache>,
    progress: &Progress,
    now: Timestamp,
    mut each: impl FnMut(Row) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut rows = runs(store.list_stream(keys::DEVICES), serial_of)
        .map(|run| async move {
            let (serial, objects) = run?;
            let row = device_row(store, cache, &serial, &objects, keys, now).await;
            progress.inc();
            anyhow::Ok(row)
        })
        .buffered(store.concurrency());
    while let Some(row) = rows.next().await {
        if let Some(row) = row? {
            each(row)?;
        }
    }
    anyhow::Ok(())
}

/// The rows of `serials` alone (one small LIST each), read as [`for_each_row`] reads them; a
/// serial with neither grant nor heartbeat has no row.
pub async fn rows_of(
    store: &Store,
    serials: &[Serial],
    keys: Option<&VerifyKeys>,
    cache: &Mutex<Cache>,
    now: Timestamp,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for serial in serials {
        let objects: Vec<Object> = store
            .list_stream(&keys::device(serial))
            .try_collect()
            .await?;
        rows.extend(device_row(store, cache, serial, &objects, keys, now).await);
    }
    Ok(rows)
}

pub async fn list(
    store: &Store,
    args: &ListArgs,
    cache: Cache,
    now: Timestamp,
) -> anyhow::Result<ExitCode> {
    let keys = verify_keys(args.verify_key.as_deref())?;
    let cache = Mutex::new(cache);
    let progress = Progress::new("devices");
    let printer = Printer::new(args.json, &progress);
    let result = for_each_row(store, keys.as_ref(), &cache, &progress, now, |row| {
        printer.row(&row)
    })
    .await;
    progress.finish();
    printer.end();
    Cache::save_shared(cache, &format!("{}/", keys::DEVICES));
    result?;
    Ok(ExitCode::SUCCESS)
}

/// The row of one device from its listed objects, reading its grant and heartbeat.
async fn device_row(
    store: &Store,
    cache: &Mutex<Cache>,
    serial: &Serial,
    objects: &[Object],
    keys: Option<&VerifyKeys>,
    now: Timestamp,
) -> Option<Row> {
    let find = |rel: String| objects.iter().find(|o| o.key == rel);
    let (grant, status) = futures::join!(
        read(store, cache, find(keys::grant(serial)), |b| {
            Envelope::parse(b)?;
            Ok(b.to_vec())
        }),
        read(store, cache, find(keys::status(serial)), |b| {
            Ok(pcap_protocol::schema::decode::<Heartbeat>(b)?)
        })
    );
    // An unreadable heartbeat is reported; the device is still listed from its grant.
    let seen = match status {
        Ok(seen) => seen,
        Err(e) => {
            eprintln!("pcap-portal: {}", crate::text::clean(&format!("{e:#}")));
            None
        }
    };
    let mut r = match grant {
        Ok(Some(bytes)) => row(serial, &bytes, keys, now),
        Ok(None) if seen.is_some() => Row {
            state: "unauthorized".to_owned(),
            ..row(serial, b"", None, now)
        },
        Ok(None) => return None,
        Err(e) => Row {
            state: format!("unreadable: {e:#}"),
            ..row(serial, b"", None, now)
        },
    };
    let seen = seen.and_then(|h| match crate::grants::trusted_heartbeat(serial, &h) {
        Ok(()) => Some(h),
        Err(why) => {
            r.untrusted = Some(why);
            None
        }
    });
    if let Some(seen) = seen {
        r.agent_version = Some(seen.agent_version);
        r.last_seen = Some(seen.time);
        r.name = r.name.or(seen.name);
        r.device_state = Some(seen.authorization.state);
        r.device_reason = seen.authorization.reason;
        r.takes_requests = seen.channel.as_ref().map(|c| c.requests);
        r.doorbell = seen
            .channel
            .and_then(|c| c.doorbell)
            .map(|d| d.state.as_str().to_owned());
    }
    Some(r)
}

async fn read<T>(
    store: &Store,
    cache: &Mutex<Cache>,
    o: Option<&Object>,
    parse: impl Fn(&[u8]) -> anyhow::Result<T>,
) -> anyhow::Result<Option<T>> {
    match o {
        Some(o) => store.fetch(o, cache, parse).await,
        None => Ok(None),
    }
}

/// Prints rows as they come: a table, or a JSON array.
struct Printer<'a> {
    json: bool,
    progress: &'a Progress,
    first: std::cell::Cell<bool>,
}

impl<'a> Printer<'a> {
    fn new(json: bool, progress: &'a Progress) -> Self {
        if json {
            progress.println("[");
        } else {
            progress.println(&format!(
                "{:<20} {:<20} {:<8} {:<20} {:<9} {:<20} {:<20} {:>4}  STATE",
                "SERIAL", "NAME", "AGENT", "LAST SEEN", "PERIOD", "FROM", "EXPIRES", "SEQ"
            ));
        }
        Printer {
            json,
            progress,
            first: std::cell::Cell::new(true),
        }
    }

    fn row(&self, r: &Row) -> anyhow::Result<()> {
        if self.json {
            let comma = if self.first.replace(false) { "" } else { "," };
            let text = serde_json::to_string_pretty(r)?;
            self.progress
                .println(&format!("{comma}{}", crate::text::json(&text)));
            return Ok(());
        }
        let show = |t: Option<Timestamp>| {
            t.map_or("-".to_owned(), |t| {
                t.strftime("%Y-%m-%d %H:%M UTC").to_string()
            })
        };
        let line = format!(
            "{:<20} {:<20} {:<8} {:<20} {:<9} {:<20} {:<20} {:>4}  {}",
            r.serial,
            r.name.as_deref().unwrap_or("-"),
            r.agent_version.as_deref().unwrap_or("-"),
            show(r.last_seen),
            r.period.map_or("-", Period::as_str),
            show(r.not_before),
            if r.period == Some(Period::Unlimited) {
                "never".to_owned()
            } else {
                show(r.expires_at)
            },
            r.sequence.map_or("-".to_owned(), |s| s.to_string()),
            state_text(r)
        );
        self.progress.println(&crate::text::clean(&line));
        Ok(())
    }

    fn end(&self) {
        if self.json {
            println!("]");
        }
    }
}

/// The grant's state (an unverified one with what it claims), and the device's own when it
/// differs (with its reason), or why its heartbeat is not trusted.
pub fn state_text(r: &Row) -> String {
    let mut text = match &r.claimed {
        Some(claim) => format!("{} (claims {claim})", r.state),
        None => r.state.clone(),
    };
    if let Some(why) = &r.untrusted {
        text.push_str(&format!(" ({why})"));
        return text;
    }
    let grant = r.claimed.as_deref().unwrap_or(&r.state);
    if let Some(device) = r.device_state
        && device.as_str() != grant
    {
        let why = r
            .device_reason
            .as_deref()
            .map(|why| format!(": {why}"))
            .unwrap_or_default();
        text.push_str(&format!(" (device: {device}{why})"));
    }
    text
}

fn row(serial: &Serial, bytes: &[u8], keys: Option<&VerifyKeys>, now: Timestamp) -> Row {
    let mut row = Row {
        serial: serial.to_string(),
        name: None,
        agent_version: None,
        last_seen: None,
        period: None,
        not_before: None,
        expires_at: None,
        sequence: None,
        state: "unreadable".to_owned(),
        claimed: None,
        device_state: None,
        device_reason: None,
        takes_requests: None,
        doorbell: None,
        untrusted: None,
    };
    let doc = match keys {
        Some(k) => {
            AuthorizationDocument::verify(bytes, k, serial).map_err(|e| format!("invalid: {e}"))
        }
        None => Envelope::parse(bytes)
            .and_then(|e| e.peek::<AuthorizationDocument>())
            .map_err(|e| format!("unreadable: {e}")),
    };
    match doc {
        Err(e) => row.state = e,
        Ok(AuthorizationDocument::Revocation(r)) => {
            row.sequence = Some(r.sequence);
            row.state = "revoked".to_owned();
        }
        Ok(AuthorizationDocument::Grant(g)) => {
            row.state = match g.validity_at(now) {
                Validity::NotYetValid => "not_yet_valid",
                Validity::InForce => "authorized",
                Validity::Expired => "expired",
            }
            .to_owned();
            row.name = g.name;
            row.period = Some(g.period);
            row.not_before = Some(g.not_before);
            row.expires_at = g.expires_at;
            row.sequence = Some(g.sequence);
        }
    }
    if keys.is_none() && !row.state.starts_with("unreadable") {
        row.claimed = Some(std::mem::replace(&mut row.state, "unverified".to_owned()));
    }
    row
}
