//! Accepting connections on the control socket and the metrics address.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;

/// The next connection `accept` gives, or `None` once `cancel` fires. A failed accept (usually
/// EMFILE) is logged and retried after 100 ms instead of spinning.
pub async fn next_connection<S, A, F>(
    cancel: &CancellationToken,
    what: &str,
    accept: F,
) -> Option<S>
where
    F: Fn() -> A,
    A: std::future::Future<Output = std::io::Result<S>>,
{
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return None,
            accepted = accept() => match accepted {
                Ok(stream) => return Some(stream),
                Err(e) => {
                    warn!(error = %e, listener = what, "Cannot accept a connection.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}
