//! The authorization state machine against real grant files, with an injected clock driven by
//! paused tokio time: expiry and start flip exactly on time, rollbacks are refused (also after a
//! restart), revocations hold, and file replacement or deletion is noticed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use pcap_agent::authz::{AuthState, AuthStatus, Authority, Settings};
use pcap_agent::clock::{Clock, TokioClock};
use pcap_agent::incidents::Incidents;
use pcap_config::Config;
use pcap_protocol::{
    AuthorizationDocument, Envelope, Grant, Period, Revocation, Serial, SigningKey,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const BASE: &str = "2026-05-01T12:00:00Z";

struct Fixture {
    dir: tempfile::TempDir,
    key: SigningKey,
    config: Arc<Config>,
}

impl Fixture {
    fn new(poll: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        std::fs::write(
            dir.path().join("authorization.pub"),
            key.verify_key().to_pem(),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("grants")).unwrap();
        let recipient = age_recipient();
        let text = format!(
            r#"
[device]
serial = "PA-0001"
[authorization]
source = "file://{d}/grants/grant.json"
verify_key = "{d}/authorization.pub"
poll_interval = "{poll}"
[upload]
recipients = ["{recipient}"]
[paths]
state_dir = "{d}/state"
spool_dir = "{d}/spool"
[capture]
interfaces = ["lo"]
"#,
            d = dir.path().display()
        );
        let config = Arc::new(pcap_config::parse(&text).unwrap());
        std::fs::create_dir(dir.path().join("state")).unwrap();
        Fixture { dir, key, config }
    }

    fn grant_path(&self) -> PathBuf {
        self.dir.path().join("grants/grant.json")
    }

    /// Signs `doc` and puts it in place the way pcap-portal does: write beside, rename over.
    fn install(&self, doc: AuthorizationDocument) {
        let tmp = self.dir.path().join("grants/.grant.json.tmp");
        std::fs::write(&tmp, Envelope::sign(&doc, &self.key).to_json()).unwrap();
        std::fs::rename(tmp, self.grant_path()).unwrap();
    }

    fn start(&self, clock: Arc<dyn Clock>) -> (watch::Receiver<AuthStatus>, CancellationToken) {
        let (authority, rx) = Authority::new(
            Settings::from_config(&self.config),
            clock,
            Incidents::default(),
        );
        let cancel = CancellationToken::new();
        let (_tx, config_rx) = watch::channel(self.config.clone());
        // The sender is kept alive by the task below so `changed()` never fires spuriously.
        let token = cancel.clone();
        tokio::spawn(async move {
            let _keep = _tx;
            authority.run(config_rx, token).await;
        });
        (rx, cancel)
    }
}

fn age_recipient() -> String {
    // A fixed, valid recipient: authorization does not encrypt anything.
    "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p".to_owned()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn at(offset_secs: i64) -> Timestamp {
    ts(BASE)
        .checked_add(SignedDuration::from_secs(offset_secs))
        .unwrap()
}

fn serial() -> Serial {
    Serial::parse("PA-0001").unwrap()
}

fn grant(
    sequence: u64,
    not_before: Timestamp,
    expires_at: Option<Timestamp>,
) -> AuthorizationDocument {
    let mut g = Grant::new(
        serial(),
        Some("lab".into()),
        Period::OneMonth,
        sequence,
        not_before,
    );
    g.expires_at = expires_at;
    if expires_at.is_none() {
        g.period = Period::Unlimited;
    }
    AuthorizationDocument::Grant(g)
}

fn revocation(sequence: u64) -> AuthorizationDocument {
    AuthorizationDocument::Revocation(Revocation::new(serial(), sequence, ts(BASE)))
}

/// Waits (in tokio time) until the status reaches `state`, and returns it.
async fn until_state(rx: &mut watch::Receiver<AuthStatus>, state: AuthState) -> AuthStatus {
    tokio::time::timeout(
        Duration::from_secs(3600 * 24 * 40),
        rx.wait_for(|s| s.state == state),
    )
    .await
    .unwrap_or_else(|_| panic!("state {state:?} not reached"))
    .unwrap()
    .clone()
}

#[tokio::test(start_paused = true)]
async fn a_grant_flips_to_authorized_exactly_at_not_before_and_to_expired_exactly_at_expiry() {
    let f = Fixture::new("30s");
    f.install(grant(1, at(90), Some(at(90 + 3600))));
    let clock = TokioClock::starting_at(at(0));
    let (mut rx, _cancel) = f.start(clock.clone());
    assert_eq!(rx.borrow().state, AuthState::NotYetValid);

    let status = until_state(&mut rx, AuthState::Authorized).await;
    assert_eq!(
        clock.now(),
        at(90),
        "flipped at not_before, not on a later poll"
    );
    assert_eq!(status.since, at(90));

    let status = until_state(&mut rx, AuthState::Expired).await;
    assert_eq!(clock.now(), at(90 + 3600), "flipped at expires_at");
    assert!(status.reason.unwrap().contains("expired"));
}

#[tokio::test(start_paused = true)]
async fn a_grant_already_expired_is_expired_from_the_start() {
    let f = Fixture::new("30s");
    f.install(grant(1, at(-7200), Some(at(-3600))));
    let (rx, _cancel) = f.start(TokioClock::starting_at(at(0)));
    assert_eq!(rx.borrow().state, AuthState::Expired);
}

#[tokio::test(start_paused = true)]
async fn an_unlimited_grant_stays_authorized() {
    let f = Fixture::new("30s");
    f.install(grant(1, at(0), None));
    let clock = TokioClock::starting_at(at(0));
    let (rx, _cancel) = f.start(clock.clone());
    assert_eq!(rx.borrow().state, AuthState::Authorized);
    tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    assert_eq!(clock.now(), at(24 * 3600));
    assert_eq!(rx.borrow().state, AuthState::Authorized);
    assert_eq!(rx.borrow().grant.as_ref().unwrap().expires_at, None);
}

#[tokio::test(start_paused = true)]
async fn a_revocation_withdraws_the_grant_and_an_older_grant_cannot_undo_it() {
    let f = Fixture::new("30s");
    f.install(grant(1, at(0), Some(at(86400))));
    let (mut rx, _cancel) = f.start(TokioClock::starting_at(at(0)));
    assert_eq!(rx.borrow().state, AuthState::Authorized);

    f.install(revocation(2));
    let status = until_state(&mut rx, AuthState::Revoked).await;
    assert_eq!(status.sequence, Some(2));

    // The old grant written back (validly signed, lower sequence) is refused: still revoked.
    f.install(grant(1, at(0), Some(at(86400))));
    let status = tokio::time::timeout(
        Duration::from_secs(120),
        rx.wait_for(|s| {
            s.reason
                .as_deref()
                .is_some_and(|r| r.contains("rolled-back"))
        }),
    )
    .await
    .expect("the rollback is reported")
    .unwrap()
    .clone();
    assert_eq!(status.state, AuthState::Revoked);
}

#[tokio::test(start_paused = true)]
async fn a_rolled_back_grant_is_refused_also_after_a_restart() {
    let f = Fixture::new("30s");
    f.install(grant(5, at(0), Some(at(86400))));
    let clock = TokioClock::starting_at(at(0));
    let (rx, cancel) = f.start(clock.clone());
    assert_eq!(rx.borrow().sequence, Some(5));
    cancel.cancel();

    // An older grant, validly signed, with a later expiry: the attacker's favourite.
    f.install(grant(3, at(0), Some(at(10 * 86400))));
    let (rx, _cancel) = f.start(clock);
    let status = rx.borrow().clone();
    assert_eq!(status.state, AuthState::Unauthorized);
    let reason = status.reason.unwrap();
    assert!(
        reason.contains("sequence 3") && reason.contains("rolled-back"),
        "{reason}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_grant_for_another_device_or_signed_by_another_key_is_refused() {
    let f = Fixture::new("30s");
    let mut g = Grant::new(
        Serial::parse("PA-0002").unwrap(),
        None,
        Period::OneMonth,
        1,
        at(0),
    );
    g.not_before = at(0);
    f.install(AuthorizationDocument::Grant(g));
    let (rx, _cancel) = f.start(TokioClock::starting_at(at(0)));
    let status = rx.borrow().clone();
    assert_eq!(status.state, AuthState::Unauthorized);
    assert!(status.reason.unwrap().contains("PA-0002"));

    let other = SigningKey::generate().unwrap();
    let doc = grant(1, at(0), Some(at(3600)));
    std::fs::write(f.grant_path(), Envelope::sign(&doc, &other).to_json()).unwrap();
    let (rx, _cancel) = f.start(TokioClock::starting_at(at(0)));
    assert!(
        rx.borrow()
            .reason
            .as_deref()
            .unwrap()
            .contains("not among the configured verify keys")
    );
}

/// Real time from here on: these check that the directory watch notices changes long before
/// the (hour-long) poll timer would.
#[tokio::test]
async fn a_grant_file_replaced_while_running_is_applied_at_once() {
    let f = Fixture::new("1h");
    f.install(grant(1, at(0), Some(at(3600))));
    let clock = Arc::new(FixedClock(at(60)));
    let (mut rx, _cancel) = f.start(clock);
    assert_eq!(rx.borrow().sequence, Some(1));

    f.install(grant(2, at(0), Some(at(7200))));
    let status = wait(&mut rx, |s| s.sequence == Some(2)).await;
    assert_eq!(status.state, AuthState::Authorized);
    assert_eq!(status.grant.unwrap().expires_at, Some(at(7200)));
}

#[tokio::test]
async fn a_deleted_grant_file_makes_the_device_unauthorized() {
    let f = Fixture::new("1h");
    f.install(grant(1, at(0), Some(at(3600))));
    let (mut rx, _cancel) = f.start(Arc::new(FixedClock(at(60))));
    assert_eq!(rx.borrow().state, AuthState::Authorized);

    std::fs::remove_file(f.grant_path()).unwrap();
    let status = wait(&mut rx, |s| s.state == AuthState::Unauthorized).await;
    assert!(status.reason.unwrap().contains("no grant file"));
}

async fn wait(
    rx: &mut watch::Receiver<AuthStatus>,
    f: impl FnMut(&AuthStatus) -> bool,
) -> AuthStatus {
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(f))
        .await
        .expect("the change was noticed within 10 s")
        .unwrap()
        .clone()
}

#[derive(Debug)]
struct FixedClock(Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

#[tokio::test]
async fn a_grant_in_a_directory_that_appears_later_is_noticed() {
    // A store's devices/<serial>/ directory only appears with the first grant.
    let f = Fixture::new("1h");
    std::fs::remove_dir(f.dir.path().join("grants")).unwrap();
    let (mut rx, _cancel) = f.start(Arc::new(FixedClock(at(60))));
    assert_eq!(rx.borrow().state, AuthState::Unauthorized);

    std::fs::create_dir(f.dir.path().join("grants")).unwrap();
    f.install(grant(1, at(0), Some(at(3600))));
    let status = wait(&mut rx, |s| s.state == AuthState::Authorized).await;
    assert_eq!(status.sequence, Some(1));
}

/// The same agent with `source = "store"`: the grant is polled from a local (file://) store.
fn store_fixture(poll: &str) -> Fixture {
    let f = Fixture::new(poll);
    let d = f.dir.path().display().to_string();
    let text = format!(
        r#"
[device]
serial = "PA-0001"
[authorization]
source = "store"
verify_key = "{d}/authorization.pub"
poll_interval = "{poll}"
[upload]
store = "file://{d}/store"
recipients = ["{}"]
[paths]
state_dir = "{d}/state"
spool_dir = "{d}/spool"
[capture]
interfaces = ["lo"]
"#,
        age_recipient()
    );
    Fixture {
        config: Arc::new(pcap_config::parse(&text).unwrap()),
        ..f
    }
}

impl Fixture {
    /// Puts `doc` at `devices/PA-0001/grant.json` in the local store.
    fn put_in_store(&self, doc: AuthorizationDocument) {
        let dir = self.dir.path().join("store/devices/PA-0001");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("grant.json"),
            Envelope::sign(&doc, &self.key).to_json(),
        )
        .unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_one_month_grant_from_the_store_expires_by_itself_and_unlimited_never_does() {
    let f = store_fixture("1h");
    let month = Grant::new(serial(), None, Period::OneMonth, 1, at(0));
    let expires = month.expires_at.unwrap();
    f.put_in_store(AuthorizationDocument::Grant(month));
    let clock = TokioClock::starting_at(at(0));
    let (mut rx, _cancel) = f.start(clock.clone());
    until_state(&mut rx, AuthState::Authorized).await;
    let status = until_state(&mut rx, AuthState::Expired).await;
    assert_eq!(
        clock.now(),
        expires,
        "expired exactly a calendar month later"
    );
    assert!(status.reason.unwrap().contains("expired"));

    let f = store_fixture("1d");
    f.put_in_store(grant(1, at(0), None));
    let clock = TokioClock::starting_at(at(0));
    let (mut rx, _cancel) = f.start(clock.clone());
    until_state(&mut rx, AuthState::Authorized).await;
    tokio::time::sleep(Duration::from_secs(400 * 24 * 3600)).await;
    assert_eq!(
        rx.borrow().state,
        AuthState::Authorized,
        "unlimited, 400 days later"
    );
}

#[tokio::test(start_paused = true)]
async fn no_grant_in_the_store_means_unauthorized_and_a_rollback_is_refused() {
    let f = store_fixture("30s");
    let (mut rx, _cancel) = f.start(TokioClock::starting_at(at(0)));
    tokio::time::sleep(Duration::from_secs(34)).await;
    assert_eq!(rx.borrow().state, AuthState::Unauthorized);
    assert!(rx.borrow().reason.as_deref().unwrap().contains("no grant"));

    f.put_in_store(grant(1, at(0), Some(at(86400))));
    until_state(&mut rx, AuthState::Authorized).await;
    f.put_in_store(grant(3, at(0), Some(at(2 * 86400))));
    tokio::time::sleep(Duration::from_secs(34)).await;
    assert_eq!(rx.borrow().sequence, Some(3));
    // The older document written back: refused, nothing authorizes from it.
    f.put_in_store(grant(2, at(0), Some(at(3 * 86400))));
    let status = until_state(&mut rx, AuthState::Unauthorized).await;
    assert!(
        status.reason.unwrap().contains("sequence"),
        "rollback named"
    );
}
