//! The portal's side: after it writes a grant, a revocation or a request, it publishes one
//! empty message to each device's topic (QoS 1) and waits for the broker's acknowledgements.
//! A doorbell that cannot be rung is not an error of the command: the document is in the
//! store, and the device reads it at its next poll.

use std::collections::HashSet;
use std::time::Duration;

use pcap_protocol::Serial;
use pcap_protocol::doorbell::topic;
use rumqttc::{AsyncClient, Event, Packet, QoS};

use crate::broker::Broker;
use crate::error::{DoorbellError, describe};

/// How long the broker may take to accept the connection and acknowledge every message.
pub const RING_TIMEOUT: Duration = Duration::from_secs(10);

/// Rings the doorbell of every device in `serials`.
pub async fn ring(broker: &Broker, serials: &[Serial]) -> Result<(), DoorbellError> {
    if serials.is_empty() {
        return Ok(());
    }
    tokio::time::timeout(RING_TIMEOUT, publish(broker, serials))
        .await
        .map_err(|_| DoorbellError::Timeout(RING_TIMEOUT))?
}

async fn publish(broker: &Broker, serials: &[Serial]) -> Result<(), DoorbellError> {
    // Unique per connection: a broker drops the older of two connections with one client id.
    static CONNECTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let client_id = format!(
        "pcap-portal-{}-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_millisecond(),
        CONNECTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let options = broker.options(&client_id, 64 * 1024)?;
    let (client, mut events) = AsyncClient::new(options, serials.len().max(1) + 2);
    events.set_network_options(Broker::network());
    let mut waiting: HashSet<u16> = HashSet::new();
    let mut sent = 0usize;
    loop {
        let event = events
            .poll()
            .await
            .map_err(|e| DoorbellError::Connection(describe(&broker.url.to_string(), &e)))?;
        match event {
            Event::Incoming(Packet::ConnAck(_)) => {
                for s in serials {
                    client
                        .publish(topic(s), QoS::AtLeastOnce, false, Vec::new())
                        .await
                        .map_err(|e| DoorbellError::Connection(e.to_string()))?;
                }
            }
            Event::Outgoing(rumqttc::Outgoing::Publish(pkid)) => {
                waiting.insert(pkid);
                sent += 1;
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                waiting.remove(&ack.pkid);
                if sent == serials.len() && waiting.is_empty() {
                    let _ = client.try_disconnect();
                    return Ok(());
                }
            }
            _ => {}
        }
    }
}
