//! Listings that scale with the fleet: the store's LIST pages become runs of objects that
//! belong together (a device's documents, a capture's files), each run is read with up to
//! `--concurrency` requests in flight, and rows come out in listing order while later ones
//! are still being read. On a terminal, a spinner on stderr says how far it is.

use futures::StreamExt;
use futures::stream::BoxStream;

use crate::store::Object;

/// The objects of `listing` in runs that share a key; `key` returns `None` for objects to pass
/// over. A listing error ends the stream after the runs before it.
pub fn runs<K: PartialEq + Send + 'static>(
    listing: BoxStream<'static, anyhow::Result<Object>>,
    key: fn(&str) -> Option<K>,
) -> BoxStream<'static, anyhow::Result<(K, Vec<Object>)>> {
    type State<K> = (
        BoxStream<'static, anyhow::Result<Object>>,
        Option<(K, Vec<Object>)>,
        bool,
    );
    let start: State<K> = (listing, None, false);
    futures::stream::unfold(start, move |(mut listing, mut current, done)| async move {
        if done {
            return None;
        }
        loop {
            match listing.next().await {
                Some(Ok(o)) => {
                    let Some(k) = key(&o.key) else { continue };
                    match &mut current {
                        Some((ck, objects)) if *ck == k => objects.push(o),
                        _ => {
                            if let Some(run) = current.replace((k, vec![o])) {
                                return Some((Ok(run), (listing, current, false)));
                            }
                        }
                    }
                }
                Some(Err(e)) => return Some((Err(e), (listing, current, true))),
                None => return current.take().map(|run| (Ok(run), (listing, None, true))),
            }
        }
    })
    .boxed()
}

/// A spinner on stderr while a listing runs (hidden when stderr is not a terminal).
#[derive(Debug)]
pub struct Progress(indicatif::ProgressBar);

impl Progress {
    pub fn new(what: &str) -> Self {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}: {pos} read, {per_sec}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(what.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Progress(bar)
    }

    /// Counts without showing anything (a server's listing).
    pub fn hidden() -> Self {
        Progress(indicatif::ProgressBar::hidden())
    }

    pub fn inc(&self) {
        self.0.inc(1);
    }

    /// Prints a line on stdout without tearing the spinner. Store text in it must have been
    /// made safe ([`crate::text::clean`], [`crate::text::json`]).
    pub fn println(&self, line: &str) {
        self.0.suspend(|| println!("{line}"));
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str) -> anyhow::Result<Object> {
        Ok(Object {
            key: key.to_owned(),
            size: 1,
            last_modified: jiff::Timestamp::UNIX_EPOCH,
            version: "1".to_owned(),
        })
    }

    fn device(key: &str) -> Option<String> {
        let rest = key.strip_prefix("devices/")?;
        Some(rest.split('/').next()?.to_owned())
    }

    #[tokio::test]
    async fn objects_come_in_runs_per_key_and_others_are_passed_over() {
        let listing = futures::stream::iter(vec![
            object("devices/A/grant.json"),
            object("devices/A/status.json"),
            object("other"),
            object("devices/B/status.json"),
        ])
        .boxed();
        let got: Vec<(String, usize)> = runs(listing, device)
            .map(|r| r.map(|(k, v)| (k, v.len())).unwrap())
            .collect()
            .await;
        assert_eq!(got, vec![("A".to_owned(), 2), ("B".to_owned(), 1)]);
    }

    #[tokio::test]
    async fn a_listing_error_ends_the_runs_after_the_ones_before_it() {
        let listing = futures::stream::iter(vec![
            object("devices/A/grant.json"),
            object("devices/B/grant.json"),
            Err(anyhow::anyhow!("page 2 failed")),
            object("devices/C/grant.json"),
        ])
        .boxed();
        let got: Vec<Result<String, String>> = runs(listing, device)
            .map(|r| r.map(|(k, _)| k).map_err(|e| e.to_string()))
            .collect()
            .await;
        assert_eq!(
            got,
            vec![Ok("A".to_owned()), Err("page 2 failed".to_owned())]
        );
    }
}
