//! The agent's side: one MQTT connection subscribed to `pcap-agent/v1/<serial>`. Every message
//! on that topic, and every (re)connection (messages may have been missed while it was down),
//! is a ring; its body is never read. The connection is re-established with backoff, and its
//! state is reported for `/v1/status` and the heartbeat.
//!
//! Readers hold a [`Doorbell`] and wait for [`Doorbell::rung`]; they decide how often a ring
//! may cost a store read (the agent's: at most once a second).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use pcap_protocol::Serial;
use pcap_protocol::doorbell::{MAX_MESSAGE_BYTES, topic};
use pcap_protocol::store::{DoorbellReport, DoorbellState};
use rumqttc::{AsyncClient, Event, Packet, QoS, SubscribeReasonCode};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::error::describe;

/// First wait before reconnecting; doubled after each failure.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest wait before reconnecting.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The sending ends, kept by a [`Doorbell::none`] so that its channels stay open.
type Senders = (watch::Sender<u64>, watch::Sender<Option<DoorbellReport>>);

/// What a reader holds: the rings and the connection's state. Cloning is cheap; each clone
/// sees every ring that happens after it was made.
#[derive(Debug, Clone)]
pub struct Doorbell {
    rings: watch::Receiver<u64>,
    report: watch::Receiver<Option<DoorbellReport>>,
    /// Keeps the channels open when no listener runs ([`Doorbell::none`]).
    _none: Option<Arc<Senders>>,
}

impl Doorbell {
    /// No doorbell: it never rings and is never connected.
    pub fn none() -> Self {
        let (rings_tx, rings) = watch::channel(0);
        let (report_tx, report) = watch::channel(None);
        Doorbell {
            rings,
            report,
            _none: Some(Arc::new((rings_tx, report_tx))),
        }
    }

    /// A doorbell rung by hand, for tests of its readers: the handle and what rings it.
    pub fn manual() -> (Self, ManualRing) {
        let (rings_tx, rings) = watch::channel(0);
        let (report_tx, report) = watch::channel(None);
        let doorbell = Doorbell {
            rings,
            report,
            _none: None,
        };
        (
            doorbell,
            ManualRing {
                rings: rings_tx,
                report: report_tx,
            },
        )
    }

    /// Whether it is connected and subscribed: the store is read when it rings.
    pub fn is_connected(&self) -> bool {
        self.report
            .borrow()
            .as_ref()
            .is_some_and(|r| r.state == DoorbellState::Connected)
    }

    /// The connection as of now; `None` when there is no doorbell.
    pub fn report(&self) -> Option<DoorbellReport> {
        self.report.borrow().clone()
    }

    /// Resolves at the next ring (cancel-safe: a ring is not lost when this is dropped).
    pub async fn rung(&mut self) {
        if self.rings.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves when the connection's state changes (cancel-safe).
    pub async fn state_changed(&mut self) {
        if self.report.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Rings a [`Doorbell::manual`] and sets its state.
#[derive(Debug)]
pub struct ManualRing {
    rings: watch::Sender<u64>,
    report: watch::Sender<Option<DoorbellReport>>,
}

impl ManualRing {
    pub fn ring(&self) {
        self.rings.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn set(&self, report: Option<DoorbellReport>) {
        self.report.send_replace(report);
    }
}

/// The listener of `broker` for the device `serial`: the handle readers clone, and the task to
/// spawn (it runs until `cancel`).
pub fn listen(
    broker: Broker,
    serial: &Serial,
    cancel: CancellationToken,
) -> (Doorbell, impl Future<Output = ()> + Send + 'static) {
    let (rings_tx, rings) = watch::channel(0u64);
    let (report_tx, report) = watch::channel(Some(DoorbellReport {
        broker: broker.url.to_string(),
        state: DoorbellState::Connecting,
        since: Timestamp::now(),
        error: None,
    }));
    let listener = Listener {
        topic: topic(serial),
        client_id: format!("pcap-agent-{serial}"),
        broker,
        rings: rings_tx,
        report: report_tx,
    };
    let doorbell = Doorbell {
        rings,
        report,
        _none: None,
    };
    (doorbell, listener.run(cancel))
}

struct Listener {
    broker: Broker,
    topic: String,
    client_id: String,
    rings: watch::Sender<u64>,
    report: watch::Sender<Option<DoorbellReport>>,
}

impl Listener {
    async fn run(self, cancel: CancellationToken) {
        let mut backoff = BACKOFF_MIN;
        loop {
            if self.session(&cancel).await {
                backoff = BACKOFF_MIN;
            }
            if cancel.is_cancelled() {
                return;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(jitter(backoff)) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// One connection, until it fails or `cancel`; whether it was ever subscribed.
    async fn session(&self, cancel: &CancellationToken) -> bool {
        let options = match self.broker.options(&self.client_id, MAX_MESSAGE_BYTES) {
            Ok(o) => o,
            Err(e) => {
                self.down(e.to_string());
                return false;
            }
        };
        let (client, mut events) = AsyncClient::new(options, 8);
        events.set_network_options(Broker::network());
        let mut subscribed = false;
        loop {
            let event = tokio::select! {
                _ = cancel.cancelled() => {
                    let _ = client.try_disconnect();
                    return subscribed;
                }
                event = events.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if let Err(e) = client.try_subscribe(self.topic.clone(), QoS::AtLeastOnce) {
                        self.down(format!("cannot subscribe to {}: {e}", self.topic));
                        return subscribed;
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    if ack.return_codes.contains(&SubscribeReasonCode::Failure) {
                        self.down(format!(
                            "the broker {} refused the subscription to {}: its ACL must let this device read its own topic",
                            self.broker.url, self.topic
                        ));
                        return subscribed;
                    }
                    subscribed = true;
                    self.connected();
                    // Anything published while the connection was down was missed.
                    self.ring();
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic == self.topic => self.ring(),
                Ok(_) => {}
                Err(e) => {
                    self.down(describe(&self.broker.url.to_string(), &e));
                    return subscribed;
                }
            }
        }
    }

    fn ring(&self) {
        self.rings.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn connected(&self) {
        info!(broker = %self.broker.url, topic = %self.topic, "Doorbell connected.");
        self.set(DoorbellState::Connected, None);
    }

    fn down(&self, error: String) {
        let known = self
            .report
            .borrow()
            .as_ref()
            .is_some_and(|r| r.error.as_ref() == Some(&error));
        if !known {
            warn!(broker = %self.broker.url, error = %error, "Doorbell down; polling the store at the short interval until it reconnects.");
        }
        self.set(DoorbellState::Down, Some(error));
    }

    fn set(&self, state: DoorbellState, error: Option<String>) {
        self.report.send_if_modified(|current| {
            let same = current
                .as_ref()
                .is_some_and(|r| r.state == state && r.error == error);
            if same {
                return false;
            }
            *current = Some(DoorbellReport {
                broker: self.broker.url.to_string(),
                state,
                since: Timestamp::now(),
                error,
            });
            true
        });
    }
}

/// `d` give or take a fifth, so that a fleet that lost its broker does not come back at once.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let fraction = 0.8 + 0.4 * (f64::from(nanos % 1000) / 1000.0);
    d.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_doorbell_never_rings_and_is_never_connected() {
        let mut d = Doorbell::none();
        assert!(!d.is_connected());
        assert!(d.report().is_none());
        let rung = tokio::time::timeout(Duration::from_millis(50), d.rung()).await;
        assert!(rung.is_err());
    }

    #[tokio::test]
    async fn a_broker_that_refuses_connections_is_reported_down_with_the_reason() {
        // A port with nothing behind it on loopback.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let broker = Broker {
            url: format!("mqtt://127.0.0.1:{port}").parse().unwrap(),
            credentials_file: None,
            ca_bundle: None,
        };
        let cancel = CancellationToken::new();
        let serial = Serial::parse("PA-1").unwrap();
        let (mut d, task) = listen(broker, &serial, cancel.clone());
        let task = tokio::spawn(task);
        tokio::time::timeout(Duration::from_secs(10), async {
            while d.report().is_some_and(|r| r.state != DoorbellState::Down) {
                d.state_changed().await;
            }
        })
        .await
        .unwrap();
        let report = d.report().unwrap();
        assert!(!d.is_connected());
        let error = report.error.unwrap();
        assert!(error.contains("cannot reach the broker"), "{error}");
        cancel.cancel();
        task.await.unwrap();
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(10));
            assert!(
                d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
                "{d:?}"
            );
        }
    }
}
