//! The doorbell's topic: the portal publishes to `pcap-agent/v1/<serial>` after it writes a
//! grant, a revocation or a request for the device, and the agent subscribes to its own. A
//! message only says "look at the store now": its body is never read, so a forged one can cost
//! a store read and nothing more.

use crate::ids::Serial;

/// Every device's topic starts with this.
pub const TOPIC_PREFIX: &str = "pcap-agent/v1";

/// Largest MQTT packet the agent accepts from the broker; a larger one ends the connection
/// (which is then re-established with backoff).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024;

/// `pcap-agent/v1/<serial>`: the topic of one device.
pub fn topic(serial: &Serial) -> String {
    format!("{TOPIC_PREFIX}/{serial}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_topic_is_the_prefix_and_its_serial() {
        let serial = Serial::parse("PA-0001").unwrap();
        assert_eq!(topic(&serial), "pcap-agent/v1/PA-0001");
    }
}
