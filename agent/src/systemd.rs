//! The systemd notify protocol: READY, RELOADING, STOPPING, and watchdog pings. Every call is a
//! no-op when the agent does not run under systemd (no `NOTIFY_SOCKET`).

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

pub fn ready() {
    let _ = sd_notify::notify(false, &[NotifyState::Ready]);
}

pub fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    let _ = sd_notify::notify(false, &states);
}

pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}

pub fn status(text: &str) {
    let _ = sd_notify::notify(false, &[NotifyState::Status(text)]);
}

/// Pings the watchdog at half its interval until `cancel`, if systemd asked for it.
pub fn spawn_watchdog(cancel: CancellationToken) {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let period = Duration::from_micros(usec) / 2;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => { let _ = sd_notify::notify(false, &[NotifyState::Watchdog]); }
            }
        }
    });
}
