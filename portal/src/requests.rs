//! The research team's capture requests: a signed `CaptureRequest` written to
//! `devices/<serial>/requests/<request_id>.json`; the agent answers in
//! `devices/<serial>/results/<request_id>.json`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jiff::Timestamp;
use pcap_protocol::request::cli::CaptureFlags;
use pcap_protocol::store::{RequestResult, ResultState, keys};
use pcap_protocol::units::parse_duration;
use pcap_protocol::{Envelope, RequestId, Serial, SigningKey};

use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// The device's serial.
    pub serial: Serial,
    #[command(flatten)]
    pub capture: CaptureFlags,
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

pub fn request(store: &Store, args: &RequestArgs, now: Timestamp) -> anyhow::Result<ExitCode> {
    let key = SigningKey::load(&args.key)
        .with_context(|| format!("cannot load the request key {}", args.key.display()))?;
    let serial = &args.serial;
    let id = RequestId::generate();
    let not_after = now
        .checked_add(jiff::SignedDuration::try_from(args.valid_for)?)
        .context("--valid-for is too long")?;
    let mut request = args.capture.request();
    request.request_id = Some(id.clone());
    request.serial = Some(serial.clone());
    request.not_after = Some(not_after);
    request.check().map_err(anyhow::Error::msg)?;
    store.put(
        &keys::request(serial, &id),
        Envelope::sign(&request, &key).to_json(),
    )?;
    println!("{id}");
    eprintln!("request {id} for {serial} written; valid until {not_after}");
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    wait(store, serial, &id, args.timeout)
}

/// Follows `results/<id>.json` until the request is refused or its capture has ended.
fn wait(
    store: &Store,
    serial: &Serial,
    id: &RequestId,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let key = keys::result(serial, id);
    let end = Instant::now() + timeout;
    let mut last_state = None;
    while Instant::now() < end {
        if let Some(result) = store.document::<RequestResult>(&key)?
            && last_state != Some(result.state)
        {
            last_state = Some(result.state);
            report(&result);
            if result.state.is_final() {
                println!("{}", serde_json::to_string(&result)?);
                return Ok(if result.state == ResultState::Stopped {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!(
        "no final result for request {id} within {}; it may still run (see {key})",
        pcap_protocol::units::format_duration(timeout)
    )
}

/// Tells where the request stands.
fn report(result: &RequestResult) {
    let capture = result
        .capture_id
        .as_ref()
        .map_or("?".to_owned(), ToString::to_string);
    match result.state {
        ResultState::Accepted => eprintln!("accepted: capture {capture}"),
        ResultState::Refused => eprintln!(
            "refused ({}): {}",
            result.code.map_or("?", |c| c.as_str()),
            result.reason.as_deref().unwrap_or("?")
        ),
        ResultState::Stopped | ResultState::Failed => eprintln!(
            "{}: capture {capture} ended ({}), {} packets written",
            if result.state == ResultState::Stopped {
                "stopped"
            } else {
                "failed"
            },
            result.stop_reason.map_or("?", |r| r.as_str()),
            result.stats.map_or(0, |s| s.written)
        ),
    }
}
