//! The customer administrator's commands: authorize, reauthorize, unauthorize, list.
//!
//! Each command writes one signed document to `devices/<serial>/grant.json` with the next
//! sequence for that device, so the agent takes the newest and refuses anything older.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use jiff::Timestamp;
use pcap_protocol::authorization::is_valid_name;
use pcap_protocol::store::{Heartbeat, keys};
use pcap_protocol::{
    AuthorizationDocument, Envelope, Grant, Period, Revocation, Serial, SigningKey,
};

use pcap_protocol::store::{AuditAction, AuditEntry};

use crate::audit;
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

/// Issues grants and revocations: writes the signed document, records its sequence in the
/// portal's own record, and its audit entry. The CLI and the console both issue through it.
pub struct Issuer<'a> {
    pub store: &'a Store,
    pub issued: &'a mut Issued,
    pub key: &'a SigningKey,
    /// Who acts, for the audit trail.
    pub actor: String,
}

impl Issuer<'_> {
    /// Signs `doc`, writes it as the device's grant document, records its sequence, and
    /// audits it as `action`.
    fn write(&mut self, doc: &AuthorizationDocument, action: AuditAction) -> anyhow::Result<()> {
        self.store.put(
            &keys::grant(doc.serial()),
            Envelope::sign(doc, self.key).to_json(),
        )?;
        self.issued.record(doc.serial(), doc.sequence())?;
        let (period, detail) = match doc {
            AuthorizationDocument::Grant(g) => (
                Some(g.period),
                g.name.as_ref().map(|n| format!("name {n:?}")),
            ),
            AuthorizationDocument::Revocation(_) => (None, None),
        };
        let entry = AuditEntry {
            serial: Some(doc.serial().clone()),
            sequence: Some(doc.sequence()),
            period,
            detail,
            ..AuditEntry::new(&self.actor, action)
        };
        audit::record(self.store, &entry);
        Ok(())
    }

    /// Issues a grant for `device` (serial and name) for `period` from `now`, above `previous`.
    fn grant(
        &mut self,
        previous: Option<&AuthorizationDocument>,
        (serial, name): (Serial, Option<String>),
        (period, now): (Period, Timestamp),
        action: AuditAction,
    ) -> anyhow::Result<Grant> {
        let sequence = next_sequence(self.store, &serial, previous, self.issued)?;
        let grant = Grant::new(serial, name, period, sequence, now);
        self.write(&AuthorizationDocument::Grant(grant.clone()), action)?;
        Ok(grant)
    }

    /// Authorizes `device` ("SERIAL" or "SERIAL NAME") for `period` from `now`, after the
    /// device checks (it reported under that name, its agent is new enough).
    pub fn authorize(
        &mut self,
        device: &str,
        period: Period,
        allow_unseen: bool,
        now: Timestamp,
    ) -> anyhow::Result<Grant> {
        let (serial, name) = parse_device(device)?;
        let previous = current(self.store, &serial)?;
        check_device(
            self.store,
            &serial,
            name.as_deref(),
            previous.is_some(),
            allow_unseen,
        )?;
        let name = name.or_else(|| match &previous {
            Some(AuthorizationDocument::Grant(g)) => g.name.clone(),
            _ => None,
        });
        self.grant(
            previous.as_ref(),
            (serial, name),
            (period, now),
            AuditAction::Authorize,
        )
    }

    /// Gives an authorized device a new period from `now`.
    pub fn reauthorize(
        &mut self,
        serial: &str,
        period: Period,
        now: Timestamp,
    ) -> anyhow::Result<Grant> {
        let (serial, _) = parse_device(serial)?;
        let document = current(self.store, &serial)?;
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
        self.grant(
            document.as_ref(),
            (serial, name),
            (period, now),
            AuditAction::Reauthorize,
        )
    }

    /// Withdraws the authorization of `serial`.
    pub fn unauthorize(&mut self, serial: &str, now: Timestamp) -> anyhow::Result<Revocation> {
        let (serial, _) = parse_device(serial)?;
        let Some(previous) = current(self.store, &serial)? else {
            bail!("{serial} has no grant in the store; nothing to withdraw");
        };
        let sequence = next_sequence(self.store, &serial, Some(&previous), self.issued)?;
        let revocation = Revocation::new(serial, sequence, now);
        self.write(
            &AuthorizationDocument::Revocation(revocation.clone()),
            AuditAction::Unauthorize,
        )?;
        Ok(revocation)
    }
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
pub fn heartbeat(store: &Store, serial: &Serial) -> anyhow::Result<Option<Heartbeat>> {
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

fn issuer<'a>(store: &'a Store, issued: &'a mut Issued, key: &'a SigningKey) -> Issuer<'a> {
    Issuer {
        store,
        issued,
        key,
        actor: audit::cli_actor(),
    }
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
    let grant = issuer(store, issued, &key).authorize(device, period, allow_unseen, now)?;
    println!("authorized {}", describe(&grant));
    store.ring(&[grant.serial]);
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
    let grant = issuer(store, issued, &key).reauthorize(serial, period, now)?;
    println!("reauthorized {}", describe(&grant));
    store.ring(&[grant.serial]);
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
    let mut issuer = issuer(store, issued, &key);
    let mut failed = false;
    let mut written = Vec::new();
    for s in serials {
        match issuer.unauthorize(s, now) {
            Ok(revocation) => {
                println!(
                    "unauthorized {} (sequence {})",
                    revocation.serial, revocation.sequence
                );
                written.push(revocation.serial);
            }
            Err(e) => {
                eprintln!("pcap-portal: {e:#}");
                failed = true;
            }
        }
    }
    store.ring(&written);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
