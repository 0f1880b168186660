//! Ringing the devices' doorbells after the portal writes a grant, a revocation or a request
//! (`--doorbell mqtts://host:8883`, `--doorbell-credentials FILE`, `--doorbell-ca FILE`, or
//! `PCAP_DOORBELL`, `PCAP_DOORBELL_CREDENTIALS`, `PCAP_DOORBELL_CA`). Without a doorbell, or
//! when it cannot be rung, devices read the store at their next poll.

use std::path::PathBuf;

use anyhow::Context;
use pcap_doorbell::Broker;
use pcap_protocol::Serial;

/// The doorbell settings.
#[derive(Debug, Clone, clap::Args)]
pub struct DoorbellArgs {
    /// The MQTT broker the devices listen on (mqtts://host:8883; mqtt:// on loopback only).
    #[arg(long = "doorbell", global = true, env = "PCAP_DOORBELL")]
    url: Option<String>,
    /// A 0600 TOML file with the broker's username and password.
    #[arg(long, global = true, env = "PCAP_DOORBELL_CREDENTIALS")]
    doorbell_credentials: Option<PathBuf>,
    /// PEM certificates to trust for the broker (else the system's roots).
    #[arg(long, global = true, env = "PCAP_DOORBELL_CA")]
    doorbell_ca: Option<PathBuf>,
}

/// The doorbell to ring, if one is configured.
#[derive(Debug, Clone, Default)]
pub struct Bell(Option<Broker>);

impl Bell {
    /// Checks the settings (before anything is written).
    pub fn from_args(args: &DoorbellArgs) -> anyhow::Result<Self> {
        let Some(url) = &args.url else {
            return Ok(Bell(None));
        };
        let url = url
            .parse()
            .map_err(anyhow::Error::msg)
            .context("--doorbell")?;
        Ok(Bell(Some(Broker {
            url,
            credentials_file: args.doorbell_credentials.clone(),
            ca_bundle: args.doorbell_ca.clone(),
        })))
    }

    /// Rings the doorbell of each of `serials`; a failure is reported, not fatal.
    pub async fn ring(&self, serials: &[Serial]) {
        let Some(broker) = &self.0 else { return };
        match pcap_doorbell::ring(broker, serials).await {
            Ok(()) => eprintln!("rang the doorbell on {}", broker.url),
            Err(e) => eprintln!(
                "pcap-portal: the doorbell was not rung ({e}); the device(s) will see the change at their next poll"
            ),
        }
    }
}
