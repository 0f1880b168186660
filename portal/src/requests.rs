//! The research team's capture requests: a signed `CaptureRequest` written to
//! `devices/<serial>/requests/<request_id>.json`; the agent answers in
//! `devices/<serial>/results/<request_id>.json`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jiff::Timestamp;
use pcap_protocol::request::{Reason, RequestLimits};
use pcap_protocol::units::{Size, TextDuration, parse_duration, parse_size};
use pcap_protocol::{CaptureRequest, Envelope, Serial, SigningKey};

use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// The device's serial.
    pub serial: String,
    #[arg(long)]
    pub interface: String,
    /// BPF filter (libpcap syntax); empty captures everything but the agent's own traffic.
    #[arg(long, default_value = "")]
    pub filter: String,
    #[arg(long, value_parser = parse_reason)]
    pub reason: Reason,
    /// Free text saying what is being looked at (at most 256 characters).
    #[arg(long)]
    pub subject: Option<String>,
    /// Stop after this long (e.g. 60s, 10m).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[arg(long)]
    pub packets: Option<u64>,
    /// Stop after this many bytes (e.g. 100MiB).
    #[arg(long, value_parser = parse_size)]
    pub bytes: Option<u64>,
    #[arg(long)]
    pub snaplen: Option<u32>,
    #[arg(long)]
    pub max_pps: Option<u64>,
    #[arg(long, value_parser = parse_size)]
    pub max_bps: Option<u64>,
    /// How long the request may wait to start (its not_after; at most 30 days).
    #[arg(long, value_parser = parse_duration, default_value = "1h")]
    pub valid_for: Duration,
    /// Follow the result until the capture ends (or is refused).
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, value_parser = parse_duration, default_value = "1h")]
    pub timeout: Duration,
    /// The request signing key (request.key from keygen).
    #[arg(long = "key", env = "PCAP_REQUEST_KEY")]
    pub key: PathBuf,
}

fn parse_reason(s: &str) -> Result<Reason, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("{s:?} is not a reason: unknown_device, unknown_application or other"))
}

pub fn request(store: &Store, args: &RequestArgs, now: Timestamp) -> anyhow::Result<ExitCode> {
    let key = SigningKey::load(&args.key)
        .with_context(|| format!("cannot load the request key {}", args.key.display()))?;
    let serial = Serial::parse(&args.serial)
        .map_err(|e| anyhow::anyhow!("device serial {:?} {e}", args.serial))?;
    let id = uuid::Uuid::now_v7().to_string();
    let not_after = now
        .checked_add(jiff::SignedDuration::try_from(args.valid_for)?)
        .context("--valid-for is too long")?;
    let request = CaptureRequest {
        request_id: Some(id.clone()),
        serial: Some(serial.clone()),
        interface: args.interface.clone(),
        filter: args.filter.clone(),
        reason: args.reason,
        subject: args.subject.clone(),
        limits: RequestLimits {
            max_duration: args.duration.map(TextDuration),
            max_packets: args.packets,
            max_bytes: args.bytes.map(Size),
            snaplen: args.snaplen,
            max_pps: args.max_pps,
            max_bps: args.max_bps.map(Size),
        },
        not_after: Some(not_after),
    };
    request.check().map_err(|e| anyhow::anyhow!("{e}"))?;
    store.put(
        &format!("devices/{serial}/requests/{id}.json"),
        &Envelope::sign(&request, &key).to_json(),
    )?;
    println!("{id}");
    eprintln!("request {id} for {serial} written; valid until {not_after}");
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    wait(store, &serial, &id, args.timeout)
}

/// Follows `results/<id>.json` until the request is refused or its capture has ended.
fn wait(store: &Store, serial: &Serial, id: &str, timeout: Duration) -> anyhow::Result<ExitCode> {
    let key = format!("devices/{serial}/results/{id}.json");
    let end = Instant::now() + timeout;
    let mut last_state = String::new();
    while Instant::now() < end {
        if let Some(bytes) = store.get(&key)? {
            let result: serde_json::Value =
                serde_json::from_slice(&bytes).with_context(|| format!("{key} is not JSON"))?;
            let state = result["state"].as_str().unwrap_or("").to_owned();
            if state != last_state {
                match state.as_str() {
                    "accepted" => eprintln!(
                        "accepted: capture {}",
                        result["capture_id"].as_str().unwrap_or("?")
                    ),
                    "refused" => {
                        eprintln!(
                            "refused ({}): {}",
                            result["code"].as_str().unwrap_or("?"),
                            result["reason"].as_str().unwrap_or("?")
                        );
                        println!("{}", serde_json::to_string(&result)?);
                        return Ok(ExitCode::FAILURE);
                    }
                    _ => {
                        eprintln!(
                            "{state}: capture {} ended ({}), {} packets written",
                            result["capture_id"].as_str().unwrap_or("?"),
                            result["stop_reason"].as_str().unwrap_or("?"),
                            result["stats"]["written"]
                        );
                        println!("{}", serde_json::to_string(&result)?);
                        return Ok(if state == "stopped" {
                            ExitCode::SUCCESS
                        } else {
                            ExitCode::FAILURE
                        });
                    }
                }
                last_state = state;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!(
        "no final result for request {id} within {}; it may still run (see {key})",
        pcap_protocol::units::format_duration(timeout)
    )
}
