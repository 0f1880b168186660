//! The audit trail: every change the portal makes (authorize, reauthorize, unauthorize,
//! request, delete, purge) is recorded as an [`AuditEntry`] under `audit/` in the store, and
//! `pcap-portal audit` shows the newest first. A change whose entry cannot be written is still
//! made (its document is already in the store), and the failure is reported.

use std::process::ExitCode;
use std::sync::Mutex;

use futures::StreamExt;
use pcap_protocol::Serial;
use pcap_protocol::store::{AuditEntry, keys};

use crate::cache::Cache;
use crate::store::Store;
use crate::text::clean;

/// Who the CLI acts for: `cli:` and the local user (the one behind sudo, if any).
pub fn cli_actor() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| format!("uid {}", nix_uid()));
    format!("cli:{user}")
}

fn nix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

/// Writes `entry` to the store; a failure is reported, not fatal.
pub async fn record(store: &Store, entry: &AuditEntry) {
    let key = keys::audit(&entry.entry_id);
    if let Err(e) = store.put(&key, pcap_protocol::schema::encode(entry)).await {
        eprintln!(
            "pcap-portal: the change was made but could not be recorded in the audit trail ({e:#}); note it by hand"
        );
    }
}

/// The newest `limit` entries (of `serial`, if given), newest first; an unreadable entry is
/// reported on stderr and skipped.
pub async fn entries(
    store: &Store,
    serial: Option<&Serial>,
    limit: usize,
    cache: &Mutex<Cache>,
) -> anyhow::Result<Vec<AuditEntry>> {
    let mut objects: Vec<_> = store
        .list_stream(keys::AUDIT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    // UUIDv7 keys sort by time: newest first.
    objects.sort_by(|a: &crate::store::Object, b| b.key.cmp(&a.key));
    let mut read = std::pin::pin!(
        futures::stream::iter(objects)
            .map(|o| async move {
                store
                    .fetch(&o, cache, |b| {
                        Ok(pcap_protocol::schema::decode::<AuditEntry>(b)?)
                    })
                    .await
            })
            .buffered(store.concurrency())
    );
    let mut out = Vec::new();
    while let Some(entry) = read.next().await {
        match entry {
            Ok(Some(e)) if serial.is_none_or(|s| e.serial.as_ref() == Some(s)) => out.push(e),
            Ok(_) => {}
            Err(e) => eprintln!(
                "pcap-portal: an audit entry is unreadable: {}",
                clean(&format!("{e:#}"))
            ),
        }
        if out.len() >= limit {
            break;
        }
    }
    anyhow::Ok(out)
}

/// What an entry says beyond who, what and which device: period, request, reason, capture.
pub fn detail(e: &AuditEntry) -> String {
    [
        e.period.map(|p| format!("period {p}")),
        e.request_id.as_ref().map(|r| format!("request {r}")),
        e.reason.map(|r| r.as_str().to_owned()),
        e.capture_id.as_ref().map(|c| format!("capture {c}")),
        e.detail.clone(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ")
}

/// Prints the newest `limit` entries (of `serial`, if given), newest first.
pub async fn list(
    store: &Store,
    serial: Option<&Serial>,
    limit: usize,
    json: bool,
    cache: Cache,
) -> anyhow::Result<ExitCode> {
    let cache = Mutex::new(cache);
    let entries = entries(store, serial, limit, &cache).await?;
    Cache::save_shared(cache, &format!("{}/", keys::AUDIT));
    if json {
        println!(
            "{}",
            crate::text::json(&serde_json::to_string_pretty(&entries)?)
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<16} {:<14} {:<16} {:>4}  DETAIL",
        "TIME", "WHO", "ACTION", "SERIAL", "SEQ"
    );
    for e in &entries {
        let detail = detail(e);
        println!(
            "{:<20} {:<16} {:<14} {:<16} {:>4}  {}",
            e.time.strftime("%Y-%m-%d %H:%M:%S"),
            clean(&e.actor),
            e.action.as_str(),
            e.serial
                .as_ref()
                .map_or("-".to_owned(), ToString::to_string),
            e.sequence.map_or("-".to_owned(), |s| s.to_string()),
            clean(&detail),
        );
    }
    Ok(ExitCode::SUCCESS)
}
