//! The devices as the console shows them: a snapshot of every device's row, listed in the
//! background (every `--refresh`, as `devices list` lists them, through the portal's cache)
//! so that a page is filtered, sorted and cut from memory instead of waiting for the store.
//! A change made through the console updates its devices' rows at once (one small LIST and
//! two reads each), so the page after an action shows it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use pcap_protocol::Serial;
use tokio::sync::{Notify, watch};

use super::Console;
use crate::cache::Cache;
use crate::devices::Row;
use crate::listing::Progress;

/// One listing of the fleet.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub rows: Vec<Row>,
    /// When the listing that made it started.
    pub listed_at: Option<Timestamp>,
    /// Why the last listing failed, if it did (the rows are then the previous listing's).
    pub error: Option<String>,
}

/// See the module docs.
pub struct Fleet {
    current: watch::Sender<Option<Arc<Snapshot>>>,
    wake: Notify,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet {
            current: watch::Sender::new(None),
            wake: Notify::new(),
        }
    }
}

impl Fleet {
    /// The newest snapshot, waiting for the first listing if none is done yet.
    pub async fn snapshot(&self) -> Arc<Snapshot> {
        let mut rx = self.current.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(s) => s.clone().unwrap_or_default(),
            // The sender lives as long as the console.
            Err(_) => Arc::default(),
        }
    }

    /// Lists again now rather than at the next `--refresh`.
    pub fn refresh_soon(&self) {
        self.wake.notify_one();
    }

    /// Replaces (or adds) the rows of `rows`' devices in the current snapshot.
    fn replace(&self, serials: &[Serial], rows: Vec<Row>) {
        self.current.send_modify(|current| {
            let old = current.take().unwrap_or_default();
            let mut all: Vec<Row> = old
                .rows
                .iter()
                .filter(|r| !serials.iter().any(|s| s.as_str() == r.serial))
                .cloned()
                .collect();
            all.extend(rows);
            all.sort_by(|a, b| a.serial.cmp(&b.serial));
            *current = Some(Arc::new(Snapshot {
                rows: all,
                listed_at: old.listed_at,
                error: old.error.clone(),
            }));
        });
    }
}

/// Lists the fleet every `every` (or when woken) for as long as the console runs.
pub async fn keep_listing(console: Arc<Console>, every: Duration) {
    loop {
        let started = Timestamp::now();
        let outcome = all_rows(&console).await;
        console.fleet.current.send_modify(|current| {
            let old = current.take().unwrap_or_default();
            *current = Some(Arc::new(match outcome {
                Ok(rows) => Snapshot {
                    rows,
                    listed_at: Some(started),
                    error: None,
                },
                Err(e) => Snapshot {
                    rows: old.rows.clone(),
                    listed_at: old.listed_at,
                    error: Some(format!("{e:#}")),
                },
            }));
        });
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = console.fleet.wake.notified() => {}
        }
    }
}

/// Reads again the rows of `serials` (after the console changed them) into the snapshot.
pub async fn update(console: &Arc<Console>, serials: Vec<Serial>) {
    let cache = Mutex::new(Cache::default());
    let reread = crate::devices::rows_of(
        &console.store,
        &serials,
        console.verify_keys.as_ref(),
        &cache,
        Timestamp::now(),
    )
    .await;
    match reread {
        Ok(rows) => console.fleet.replace(&serials, rows),
        // The next listing shows them.
        _ => console.fleet.refresh_soon(),
    }
}

/// Every device's row, read as `devices list` reads them (through the portal's cache, which
/// is read and written off the async workers).
async fn all_rows(console: &Arc<Console>) -> anyhow::Result<Vec<Row>> {
    let (dir, url) = (console.state_dir.clone(), console.store.url().to_string());
    let budget = console.cache_budget;
    let cache = tokio::task::spawn_blocking(move || Cache::open(dir.as_deref(), &url, budget))
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the cache: {e}"))?;
    let cache = Mutex::new(cache);
    let mut rows = Vec::new();
    let result = crate::devices::for_each_row(
        &console.store,
        console.verify_keys.as_ref(),
        &cache,
        &Progress::hidden(),
        Timestamp::now(),
        |row| {
            rows.push(row);
            Ok(())
        },
    )
    .await;
    let prefix = format!("{}/", pcap_protocol::store::keys::DEVICES);
    let _ = tokio::task::spawn_blocking(move || Cache::save_shared(cache, &prefix)).await;
    result.map(|()| rows)
}
