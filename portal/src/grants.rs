//! The customer administrator's commands: authorize, reauthorize, unauthorize, list.
//!
//! Each command writes one signed document to `devices/<serial>/grant.json` with the next
//! sequence for that device, so the agent takes the newest and refuses anything older.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use jiff::Timestamp;
use pcap_protocol::authorization::is_valid_name;
use pcap_protocol::store::{Heartbeat, keys};
use pcap_protocol::{
    AuthState, AuthorizationDocument, Envelope, Grant, Period, Revocation, Serial, SigningKey,
    Validity, VerifyKey, VerifyKeys,
};
use serde::Serialize;

use crate::issued::Issued;
use crate::store::Store;

/// The customer's authorization signing key.
#[derive(Debug, clap::Args)]
pub struct KeyArg {
    /// The authorization private key (authorization.key from keygen).
    #[arg(long = "key", env = "PCAP_AUTHORIZATION_KEY")]
    key: PathBuf,
}

impl KeyArg {
    fn load(&self) -> anyhow::Result<SigningKey> {
        Ok(SigningKey::load(&self.key)?)
    }
}

/// The document in the store for `serial`, read without trusting it (only to continue its
/// sequence and keep its name).
fn current(store: &Store, serial: &Serial) -> anyhow::Result<Option<AuthorizationDocument>> {
    let key = keys::grant(serial);
    let Some(bytes) = store.get(&key)? else {
        return Ok(None);
    };
    let doc = Envelope::parse(&bytes)
        .and_then(|e| e.peek::<AuthorizationDocument>())
        .with_context(|| {
            format!("{key} in the store is not a readable grant; move it away and authorize again")
        })?;
    Ok(Some(doc))
}

/// The sequence of the next document for `serial`: above the document in the store, the
/// highest the device reports having accepted, and the highest this portal issued (see
/// [`crate::issued`]).
fn next_sequence(
    store: &Store,
    serial: &Serial,
    previous: Option<&AuthorizationDocument>,
    issued: &Issued,
) -> anyhow::Result<u64> {
    let reported = heartbeat(store, serial)?.and_then(|h| h.authorization.sequence);
    let highest = [
        previous.map(AuthorizationDocument::sequence),
        reported,
        issued.highest(serial),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(0);
    Ok(highest + 1)
}

/// Signs `doc`, writes it as the device's grant document, and records its sequence.
fn write(
    store: &Store,
    key: &SigningKey,
    issued: &mut Issued,
    doc: &AuthorizationDocument,
) -> anyhow::Result<()> {
    store.put(
        &keys::grant(doc.serial()),
        Envelope::sign(doc, key).to_json(),
    )?;
    issued.record(doc.serial(), doc.sequence())
}

/// Issues a grant for `device` (serial and name) for `period` from `now`, above `previous`.
fn grant(
    store: &Store,
    key: &SigningKey,
    issued: &mut Issued,
    previous: Option<&AuthorizationDocument>,
    (serial, name): (Serial, Option<String>),
    period: Period,
    now: Timestamp,
) -> anyhow::Result<Grant> {
    let sequence = next_sequence(store, &serial, previous, issued)?;
    let grant = Grant::new(serial, name, period, sequence, now);
    write(
        store,
        key,
        issued,
        &AuthorizationDocument::Grant(grant.clone()),
    )?;
    Ok(grant)
}

fn parse_device(device: &str) -> anyhow::Result<(Serial, Option<String>)> {
    let (serial, name) = match device.trim().split_once(char::is_whitespace) {
        Some((s, n)) => (s, Some(n.trim().to_owned())),
        None => (device.trim(), None),
    };
    let serial = Serial::parse(serial)?;
    if let Some(n) = name.as_deref().filter(|n| !is_valid_name(n)) {
        bail!("device name {n:?} must be at most 128 printable characters");
    }
    Ok((serial, name))
}

fn describe(g: &Grant) -> String {
    let who = match &g.name {
        Some(n) => format!("{} ({n})", g.serial),
        None => g.serial.to_string(),
    };
    match g.expires_at {
        Some(t) => format!(
            "{who} for {}: until {t} (sequence {})",
            g.period, g.sequence
        ),
        None => format!("{who} without expiry (sequence {})", g.sequence),
    }
}

/// The oldest agent version this portal's documents and requests work with.
pub const MIN_AGENT_VERSION: &str = "0.1.0";

fn version_tuple(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

/// A device's heartbeat (`devices/<serial>/status.json`), if it has reported.
fn heartbeat(store: &Store, serial: &Serial) -> anyhow::Result<Option<Heartbeat>> {
    store.document(&keys::status(serial))
}

/// Checks that the device exists as named and runs an agent new enough.
fn check_device(
    store: &Store,
    serial: &Serial,
    name: Option<&str>,
    has_grant: bool,
    allow_unseen: bool,
) -> anyhow::Result<()> {
    let Some(seen) = heartbeat(store, serial)? else {
        if has_grant || allow_unseen {
            return Ok(());
        }
        bail!(
            "device {serial} has never reported to the store (no devices/{serial}/status.json): check the serial with `pcap-portal devices list`, or pass --allow-unseen to authorize it before its agent first runs"
        );
    };
    if let (Some(want), Some(reported)) = (name, seen.name.as_deref())
        && want != reported
    {
        bail!(
            "device {serial} reports the name {reported:?}, not {want:?}: check which device is meant (`pcap-portal devices list`)"
        );
    }
    let version = seen.agent_version.as_str();
    let new_enough = matches!(
        (version_tuple(version), version_tuple(MIN_AGENT_VERSION)),
        (Some(v), Some(min)) if v >= min
    );
    if !new_enough {
        bail!(
            "device {serial} runs pcap-agent {version}; version {MIN_AGENT_VERSION} or newer is needed: upgrade its agent, then authorize it"
        );
    }
    Ok(())
}

pub fn authorize(
    store: &Store,
    issued: &mut Issued,
    key: &KeyArg,
    device: &str,
    period: Period,
    allow_unseen: bool,
    now: Timestamp,
) -> anyhow::Result<ExitCode> {
    let key = key.load()?;
    let (serial, name) = parse_device(device)?;
    let previous = current(store, &serial)?;
    check_device(
        store,
        &serial,
        name.as_deref(),
        previous.is_some(),
        allow_unseen,
    )?;
    let name = name.or_else(|| match &previous {
        Some(AuthorizationDocument::Grant(g)) => g.name.clone(),
        _ => None,
    });
    let grant = grant(
        store,
        &key,
        issued,
        previous.as_ref(),
        (serial, name),
        period,
        now,
    )?;
    println!("authorized {}", describe(&grant));
    Ok(ExitCode::SUCCESS)
}

pub fn reauthorize(
    store: &Store,
    issued: &mut Issued,
    key: &KeyArg,
    serial: &str,
    period: Period,
    now: Timestamp,
) -> anyhow::Result<ExitCode> {
    let key = key.load()?;
    let (serial, _) = parse_device(serial)?;
    let document = current(store, &serial)?;
    let previous = match &document {
        Some(AuthorizationDocument::Grant(g)) => g,
        Some(AuthorizationDocument::Revocation(_)) => {
            bail!(
                "{serial} was unauthorized; authorize it again with `pcap-portal authorize {serial} --period ...`"
            )
        }
        None => bail!(
            "{serial} has no grant in the store; use `pcap-portal authorize {serial} --period ...`"
        ),
    };
    let name = previous.name.clone();
    let grant = grant(
        store,
        &key,
        issued,
        document.as_ref(),
        (serial, name),
        period,
        now,
    )?;
    println!("reauthorized {}", describe(&grant));
    Ok(ExitCode::SUCCESS)
}

pub fn unauthorize(
    store: &Store,
    issued: &mut Issued,
    key: &KeyArg,
    serials: &[String],
    now: Timestamp,
) -> anyhow::Result<ExitCode> {
    let key = key.load()?;
    let mut failed = false;
    for s in serials {
        let result = parse_device(s).and_then(|(serial, _)| {
            let Some(previous) = current(store, &serial)? else {
                bail!("{serial} has no grant in the store; nothing to withdraw");
            };
            let sequence = next_sequence(store, &serial, Some(&previous), issued)?;
            let revocation = Revocation::new(serial.clone(), sequence, now);
            write(
                store,
                &key,
                issued,
                &AuthorizationDocument::Revocation(revocation.clone()),
            )?;
            println!("unauthorized {serial} (sequence {})", revocation.sequence);
            Ok(())
        });
        if let Err(e) = result {
            eprintln!("pcap-portal: {e:#}");
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Options of `devices list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    #[arg(long)]
    json: bool,
    /// Verify the grants with this public key (default: derived from PCAP_AUTHORIZATION_KEY).
    #[arg(long, env = "PCAP_AUTHORIZATION_PUB")]
    verify_key: Option<PathBuf>,
}

/// One row of `devices list`.
#[derive(Debug, Serialize)]
struct Row {
    serial: String,
    name: Option<String>,
    agent_version: Option<String>,
    last_seen: Option<Timestamp>,
    period: Option<Period>,
    not_before: Option<Timestamp>,
    expires_at: Option<Timestamp>,
    sequence: Option<u64>,
    /// What the grant document says.
    state: String,
    /// What the device says, from its heartbeat.
    device_state: Option<AuthState>,
    /// Why the device is not authorized, or why it refused the last document.
    device_reason: Option<String>,
}

pub fn list(store: &Store, args: &ListArgs, now: Timestamp) -> anyhow::Result<ExitCode> {
    let json = args.json;
    let keys = match args.verify_key.as_deref() {
        Some(path) => Some(VerifyKeys::new(vec![VerifyKey::load(path)?])),
        None => std::env::var_os("PCAP_AUTHORIZATION_KEY")
            .and_then(|p| SigningKey::load(Path::new(&p)).ok())
            .map(|k| VerifyKeys::new(vec![k.verify_key()])),
    };
    let mut rows = Vec::new();
    for serial in store.devices()? {
        // An unreadable heartbeat is reported; the device is still listed from its grant.
        let seen = heartbeat(store, &serial).unwrap_or_else(|e| {
            eprintln!("pcap-portal: {e:#}");
            None
        });
        let mut r = match store.get(&keys::grant(&serial))? {
            Some(bytes) => row(&serial, &bytes, keys.as_ref(), now),
            None if seen.is_some() => Row {
                state: "unauthorized".to_owned(),
                ..row(&serial, b"", None, now)
            },
            None => continue,
        };
        if let Some(seen) = seen {
            r.agent_version = Some(seen.agent_version);
            r.last_seen = Some(seen.time);
            r.name = r.name.or(seen.name);
            r.device_state = Some(seen.authorization.state);
            r.device_reason = seen.authorization.reason;
        }
        rows.push(r);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let show = |t: Option<Timestamp>| {
        t.map_or("-".to_owned(), |t| {
            t.strftime("%Y-%m-%d %H:%M UTC").to_string()
        })
    };
    println!(
        "{:<20} {:<20} {:<8} {:<20} {:<9} {:<20} {:<20} {:>4}  STATE",
        "SERIAL", "NAME", "AGENT", "LAST SEEN", "PERIOD", "FROM", "EXPIRES", "SEQ"
    );
    for r in &rows {
        println!(
            "{:<20} {:<20} {:<8} {:<20} {:<9} {:<20} {:<20} {:>4}  {}",
            r.serial,
            r.name.as_deref().unwrap_or("-"),
            r.agent_version.as_deref().unwrap_or("-"),
            show(r.last_seen),
            r.period.map_or("-", Period::as_str),
            show(r.not_before),
            if r.period == Some(Period::Unlimited) {
                "never".to_owned()
            } else {
                show(r.expires_at)
            },
            r.sequence.map_or("-".to_owned(), |s| s.to_string()),
            state_text(r)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The grant's state, and the device's own when it differs (with its reason).
fn state_text(r: &Row) -> String {
    match r.device_state {
        Some(device) if device.as_str() != r.state => format!(
            "{} (device: {device}{})",
            r.state,
            r.device_reason
                .as_deref()
                .map(|why| format!(": {why}"))
                .unwrap_or_default()
        ),
        _ => r.state.clone(),
    }
}

fn row(serial: &Serial, bytes: &[u8], keys: Option<&VerifyKeys>, now: Timestamp) -> Row {
    let mut row = Row {
        serial: serial.to_string(),
        name: None,
        agent_version: None,
        last_seen: None,
        period: None,
        not_before: None,
        expires_at: None,
        sequence: None,
        state: "unreadable".to_owned(),
        device_state: None,
        device_reason: None,
    };
    let doc = match keys {
        Some(k) => {
            AuthorizationDocument::verify(bytes, k, serial).map_err(|e| format!("invalid: {e}"))
        }
        None => Envelope::parse(bytes)
            .and_then(|e| e.peek::<AuthorizationDocument>())
            .map_err(|e| format!("unreadable: {e}")),
    };
    match doc {
        Err(e) => row.state = e,
        Ok(AuthorizationDocument::Revocation(r)) => {
            row.sequence = Some(r.sequence);
            row.state = "revoked".to_owned();
        }
        Ok(AuthorizationDocument::Grant(g)) => {
            row.state = match g.validity_at(now) {
                Validity::NotYetValid => "not_yet_valid",
                Validity::InForce => "authorized",
                Validity::Expired => "expired",
            }
            .to_owned();
            row.name = g.name;
            row.period = Some(g.period);
            row.not_before = Some(g.not_before);
            row.expires_at = g.expires_at;
            row.sequence = Some(g.sequence);
        }
    }
    row
}
