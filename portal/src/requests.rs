//! The research team's capture requests: a signed `CaptureRequest` written to
//! `devices/<serial>/requests/<request_id>.json`; the agent answers in
//! `devices/<serial>/results/<request_id>.json`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jiff::Timestamp;
use pcap_protocol::request::cli::CaptureFlags;
use pcap_protocol::store::{AuditAction, AuditEntry, Heartbeat, RequestResult, ResultState, keys};
use pcap_protocol::units::parse_duration;
use pcap_protocol::{CaptureRequest, Envelope, RequestId, Serial, SigningKey};

use crate::audit;
use crate::grants::heartbeat;
use crate::store::Store;
use crate::text::clean;

/// A device that has not written a heartbeat for this many of its heartbeat intervals is
/// reported as silent.
const SILENT_INTERVALS: i64 = 3;
/// The heartbeat interval assumed for agents that do not report theirs (the default poll).
const DEFAULT_HEARTBEAT_SECONDS: u64 = 30;

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

/// Why `serial` may not pick up a request, from its heartbeat: it never reported, does not
/// take requests, or has been silent for several heartbeat intervals. `None` when nothing in
/// its heartbeat says so.
fn obstacle(seen: Option<&Heartbeat>, serial: &Serial, now: Timestamp) -> Option<String> {
    let Some(seen) = seen else {
        return Some(format!(
            "device {serial} has never reported to the store (no devices/{serial}/status.json): the request waits there until its agent runs with a [requests] table"
        ));
    };
    if let Some(channel) = &seen.channel
        && !channel.requests
    {
        return Some(format!(
            "device {serial} does not take remote requests: its agent.toml has no [requests] table (with the research team's request.pub); the request stays in the store until it expires"
        ));
    }
    let interval = seen
        .channel
        .as_ref()
        .map_or(DEFAULT_HEARTBEAT_SECONDS, |c| c.heartbeat_interval_seconds)
        .max(1);
    let silent = now.duration_since(seen.time).as_secs();
    if silent > SILENT_INTERVALS * interval as i64 {
        return Some(format!(
            "device {serial} has not reported since {} ({} of its {interval}s heartbeat intervals): it may be stopped or cut off from the store",
            seen.time,
            silent / interval as i64
        ));
    }
    None
}

/// A request written to the store.
#[derive(Debug)]
pub struct Submitted {
    pub id: RequestId,
    pub not_after: Timestamp,
    /// Why the device may not pick it up, from its heartbeat (it is written all the same).
    pub warning: Option<String>,
}

/// Signs `request` for `serial` with `key`, valid for `valid_for` from `now`, writes it to the
/// store, records it in the audit trail as `actor`'s, and rings the device's doorbell.
pub async fn submit(
    store: &Store,
    key: &SigningKey,
    serial: &Serial,
    mut request: CaptureRequest,
    valid_for: Duration,
    actor: &str,
    now: Timestamp,
) -> anyhow::Result<Submitted> {
    let id = RequestId::generate();
    let not_after = jiff::SignedDuration::try_from(valid_for)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .context("the validity is too long (at most 30 days)")?;
    request.request_id = Some(id.clone());
    request.serial = Some(serial.clone());
    request.not_after = Some(not_after);
    request.check().map_err(anyhow::Error::msg)?;
    // Warn at once if the device will not pick it up (an unreadable heartbeat warns too).
    let warning = match heartbeat(store, serial).await {
        Ok(seen) => obstacle(seen.as_ref(), serial, now),
        Err(e) => Some(format!("{e:#}")),
    };
    store
        .put(
            &keys::request(serial, &id),
            Envelope::sign(&request, key).to_json(),
        )
        .await?;
    let entry = AuditEntry {
        serial: Some(serial.clone()),
        request_id: Some(id.clone()),
        reason: Some(request.reason),
        detail: Some(format!(
            "interface {}, filter {:?}{}",
            request.interface,
            request.filter,
            request
                .subject
                .as_deref()
                .map(|s| format!(", subject {s:?}"))
                .unwrap_or_default()
        )),
        ..AuditEntry::new(actor, AuditAction::Request)
    };
    audit::record(store, &entry).await;
    store.ring(std::slice::from_ref(serial)).await;
    Ok(Submitted {
        id,
        not_after,
        warning,
    })
}

pub async fn request(
    store: &Store,
    args: &RequestArgs,
    now: Timestamp,
) -> anyhow::Result<ExitCode> {
    let key = SigningKey::load(&args.key)
        .with_context(|| format!("cannot load the request key {}", args.key.display()))?;
    let serial = &args.serial;
    let submitted = submit(
        store,
        &key,
        serial,
        args.capture.request(),
        args.valid_for,
        &audit::cli_actor(),
        now,
    )
    .await?;
    if let Some(why) = &submitted.warning {
        eprintln!("pcap-portal: warning: {}", clean(why));
    }
    let id = &submitted.id;
    println!("{id}");
    eprintln!(
        "request {id} for {serial} written; valid until {}",
        submitted.not_after
    );
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    wait(store, serial, id, args.timeout).await
}

/// Follows `results/<id>.json` until the request is refused or its capture has ended.
async fn wait(
    store: &Store,
    serial: &Serial,
    id: &RequestId,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let key = keys::result(serial, id);
    let end = Instant::now() + timeout;
    let mut last_state = None;
    while Instant::now() < end {
        if let Some(result) = store.document::<RequestResult>(&key).await?
            && last_state != Some(result.state)
        {
            last_state = Some(result.state);
            report(&result);
            if result.state.is_final() {
                println!("{}", crate::text::json(&serde_json::to_string(&result)?));
                return Ok(if result.state == ResultState::Stopped {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let waited = pcap_protocol::units::format_duration(timeout);
    let seen = heartbeat(store, serial).await?;
    let why = obstacle(seen.as_ref(), serial, Timestamp::now()).unwrap_or_else(|| match last_state {
        Some(_) => "the capture may still run".to_owned(),
        None => format!(
            "device {serial} reports and takes requests but has not answered (it reads the store every {}s; see its last_error in `pcap-portal devices list --json`)",
            seen.as_ref()
                .and_then(|h| h.channel.as_ref())
                .map_or(DEFAULT_HEARTBEAT_SECONDS, |c| c.poll_interval_seconds)
        ),
    });
    bail!("no final result for request {id} within {waited}: {why} (see {key})")
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
            clean(result.reason.as_deref().unwrap_or("?"))
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
