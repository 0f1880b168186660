//! The customer administrator's commands: authorize, reauthorize, unauthorize, list.
//!
//! Each command writes one signed document to `devices/<serial>/grant.json` with the next
//! sequence for that device, so the agent takes the newest and refuses anything older.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use jiff::Timestamp;
use pcap_protocol::authorization::is_valid_name;
use pcap_protocol::store::{Heartbeat, keys};
use pcap_protocol::{
    AuthorizationDocument, Envelope, Grant, Period, Revocation, Serial, SigningKey, VerifyKeys,
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

/// Highest sequence the portal issues. It issues them one by one from 1, so no honest store or
/// device gets near: a higher one claimed is tampering, refused rather than continued (and
/// 2^53 is also the largest integer every JSON reader keeps exactly).
pub const MAX_SEQUENCE: u64 = 1 << 53;

/// The document in the store for a device, as far as the issuer can trust it.
#[derive(Debug)]
enum Stored {
    None,
    /// Verified under the issuer's own key: its sequence continues and its name carries over.
    Verified(AuthorizationDocument),
    /// Not verifiable under the issuer's key (forged, damaged, or signed with another key):
    /// nothing of it goes into a signed document.
    Unverified(String),
}

impl Stored {
    fn verified(&self) -> Option<&AuthorizationDocument> {
        match self {
            Stored::Verified(doc) => Some(doc),
            Stored::None | Stored::Unverified(_) => None,
        }
    }
}

/// The document in the store for `serial`, verified under `key`'s public half.
async fn current(store: &Store, serial: &Serial, key: &SigningKey) -> anyhow::Result<Stored> {
    let rel = keys::grant(serial);
    let Some(bytes) = store.get(&rel).await? else {
        return Ok(Stored::None);
    };
    let keys = VerifyKeys::new(vec![key.verify_key()]);
    Ok(match AuthorizationDocument::verify(&bytes, &keys, serial) {
        Ok(doc) => Stored::Verified(doc),
        Err(e) => {
            let why = format!(
                "{rel} in the store does not verify under this authorization key ({e}); nothing of it is used"
            );
            eprintln!("pcap-portal: warning: {}", crate::text::clean(&why));
            Stored::Unverified(why)
        }
    })
}

/// The sequence of the next document for `serial`: above the verified document in the store,
/// the highest the device reports having accepted, and the highest this portal issued (see
/// [`crate::issued`]). A claim above [`MAX_SEQUENCE`] is refused, naming who makes it.
async fn next_sequence(
    store: &Store,
    serial: &Serial,
    previous: Option<&AuthorizationDocument>,
    issued: &Issued,
) -> anyhow::Result<u64> {
    let reported = heartbeat(store, serial)
        .await?
        .and_then(|h| h.authorization.sequence);
    let claims = [
        (
            previous.map(AuthorizationDocument::sequence),
            format!("the grant in the store ({})", keys::grant(serial)),
        ),
        (
            reported,
            format!("the device's heartbeat ({})", keys::status(serial)),
        ),
        (
            issued.highest(serial),
            "this portal's record of issued sequences".to_owned(),
        ),
    ];
    let (highest, who) = claims
        .iter()
        .filter_map(|(n, who)| n.map(|n| (n, who.as_str())))
        .max_by_key(|(n, _)| *n)
        .unwrap_or((0, ""));
    match highest.checked_add(1).filter(|n| *n <= MAX_SEQUENCE) {
        Some(next) => Ok(next),
        None => bail!(
            "{who} claims sequence {highest} for {serial}, beyond any this portal issues (at most {MAX_SEQUENCE}): the store or the device was tampered with; check the device before authorizing it again"
        ),
    }
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
    async fn write(
        &mut self,
        doc: &AuthorizationDocument,
        action: AuditAction,
    ) -> anyhow::Result<()> {
        self.store
            .put(
                &keys::grant(doc.serial()),
                Envelope::sign(doc, self.key).to_json(),
            )
            .await?;
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
        audit::record(self.store, &entry).await;
        Ok(())
    }

    /// Issues a grant for `device` (serial and name) for `period` from `now`, above `previous`.
    async fn grant(
        &mut self,
        previous: Option<&AuthorizationDocument>,
        (serial, name): (Serial, Option<String>),
        (period, now): (Period, Timestamp),
        action: AuditAction,
    ) -> anyhow::Result<Grant> {
        let sequence = next_sequence(self.store, &serial, previous, self.issued).await?;
        let grant = Grant::new(serial, name, period, sequence, now);
        self.write(&AuthorizationDocument::Grant(grant.clone()), action)
            .await?;
        Ok(grant)
    }

    /// Authorizes `device` ("SERIAL" or "SERIAL NAME") for `period` from `now`, after the
    /// device checks (it reported under that name, its agent is new enough).
    pub async fn authorize(
        &mut self,
        device: &str,
        period: Period,
        allow_unseen: bool,
        now: Timestamp,
    ) -> anyhow::Result<Grant> {
        let (serial, name) = parse_device(device)?;
        let stored = current(self.store, &serial, self.key).await?;
        let previous = stored.verified();
        check_device(
            self.store,
            &serial,
            name.as_deref(),
            previous.is_some(),
            allow_unseen,
        )
        .await?;
        let name = name.or_else(|| match previous {
            Some(AuthorizationDocument::Grant(g)) => g.name.clone(),
            _ => None,
        });
        self.grant(
            previous,
            (serial, name),
            (period, now),
            AuditAction::Authorize,
        )
        .await
    }

    /// Gives an authorized device a new period from `now`.
    pub async fn reauthorize(
        &mut self,
        serial: &str,
        period: Period,
        now: Timestamp,
    ) -> anyhow::Result<Grant> {
        let (serial, _) = parse_device(serial)?;
        let stored = current(self.store, &serial, self.key).await?;
        let previous = match &stored {
            Stored::Verified(AuthorizationDocument::Grant(g)) => g,
            Stored::Verified(AuthorizationDocument::Revocation(_)) => {
                bail!(
                    "{serial} was unauthorized; authorize it again with `pcap-portal authorize {serial} --period ...`"
                )
            }
            Stored::Unverified(why) => bail!(
                "{why}: there is no grant of yours to renew; authorize {serial} again with `pcap-portal authorize {serial} --period ...`"
            ),
            Stored::None => bail!(
                "{serial} has no grant in the store; use `pcap-portal authorize {serial} --period ...`"
            ),
        };
        let name = previous.name.clone();
        self.grant(
            stored.verified(),
            (serial, name),
            (period, now),
            AuditAction::Reauthorize,
        )
        .await
    }

    /// Withdraws the authorization of `serial`.
    pub async fn unauthorize(
        &mut self,
        serial: &str,
        now: Timestamp,
    ) -> anyhow::Result<Revocation> {
        let (serial, _) = parse_device(serial)?;
        // Withdrawing is always safe: a document in the store that is not this key's is
        // replaced too, its sequence not continued.
        let stored = current(self.store, &serial, self.key).await?;
        if matches!(stored, Stored::None) {
            bail!("{serial} has no grant in the store; nothing to withdraw");
        }
        let sequence = next_sequence(self.store, &serial, stored.verified(), self.issued).await?;
        let revocation = Revocation::new(serial, sequence, now);
        self.write(
            &AuthorizationDocument::Revocation(revocation.clone()),
            AuditAction::Unauthorize,
        )
        .await?;
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

/// A device's heartbeat (`devices/<serial>/status.json`), if it has reported. A heartbeat that
/// names another device is an error: it is not trusted for anything.
pub async fn heartbeat(store: &Store, serial: &Serial) -> anyhow::Result<Option<Heartbeat>> {
    let seen: Option<Heartbeat> = store.document(&keys::status(serial)).await?;
    if let Some(h) = &seen {
        trusted_heartbeat(serial, h).map_err(anyhow::Error::msg)?;
    }
    Ok(seen)
}

/// Checks that the heartbeat found under `serial`'s folder is `serial`'s own.
pub fn trusted_heartbeat(serial: &Serial, h: &Heartbeat) -> Result<(), String> {
    if &h.serial == serial {
        return Ok(());
    }
    Err(format!(
        "{} names the device {}, not {serial}: it is not trusted (check device {serial})",
        keys::status(serial),
        crate::text::clean(h.serial.as_str())
    ))
}

/// Checks that the device exists as named and runs an agent new enough.
async fn check_device(
    store: &Store,
    serial: &Serial,
    name: Option<&str>,
    has_grant: bool,
    allow_unseen: bool,
) -> anyhow::Result<()> {
    let Some(seen) = heartbeat(store, serial).await? else {
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

pub async fn authorize(
    store: &Store,
    issued: &mut Issued,
    key: &KeyArg,
    device: &str,
    period: Period,
    allow_unseen: bool,
    now: Timestamp,
) -> anyhow::Result<ExitCode> {
    let key = key.load()?;
    let grant = issuer(store, issued, &key)
        .authorize(device, period, allow_unseen, now)
        .await?;
    println!("authorized {}", crate::text::clean(&describe(&grant)));
    store.ring(&[grant.serial]).await;
    Ok(ExitCode::SUCCESS)
}

pub async fn reauthorize(
    store: &Store,
    issued: &mut Issued,
    key: &KeyArg,
    serial: &str,
    period: Period,
    now: Timestamp,
) -> anyhow::Result<ExitCode> {
    let key = key.load()?;
    let grant = issuer(store, issued, &key)
        .reauthorize(serial, period, now)
        .await?;
    println!("reauthorized {}", crate::text::clean(&describe(&grant)));
    store.ring(&[grant.serial]).await;
    Ok(ExitCode::SUCCESS)
}

pub async fn unauthorize(
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
        match issuer.unauthorize(s, now).await {
            Ok(revocation) => {
                println!(
                    "unauthorized {} (sequence {})",
                    revocation.serial, revocation.sequence
                );
                written.push(revocation.serial);
            }
            Err(e) => {
                eprintln!("pcap-portal: {}", crate::text::clean(&format!("{e:#}")));
                failed = true;
            }
        }
    }
    store.ring(&written).await;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
