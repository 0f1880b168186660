//! The fleet benchmark's devices: N simulated agents in one process, each running the agent's
//! own authority (`pcap_agent::authz::Authority`), request feed and heartbeat
//! (`pcap_agent::remote::Remote`) and doorbell listener against a real store and a real broker.
//! Only the capture itself is replaced: a scheduler that accepts every request and records
//! when it arrived. bench/fleet.sh drives it.
//!
//! ```text
//! pcap-fleet-sim populate  --dir D --endpoint URL --from I --to J
//! pcap-fleet-sim latency   --dir D --endpoint URL --devices N [--doorbell URL]
//! pcap-fleet-sim requests  --dir D --endpoint URL --devices N [--doorbell URL]
//!                          --scale K --seconds S --s3-log FILE
//! ```
//!
//! `D` holds the keys from `pcap-portal keygen` (`D/keys`) and the S3 credentials
//! (`D/s3-credentials`); the store is `s3://captures/fleet` at `URL`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use pcap_agent::authz::{AuthState, AuthStatus, Authority, Settings};
use pcap_agent::captures::record::{CaptureRecord, Origin};
use pcap_agent::captures::{CaptureState, SchedulerCommand, Summary};
use pcap_agent::clock::{Clock, SystemClock};
use pcap_agent::control::{Access, Api};
use pcap_agent::incidents::Incidents;
use pcap_agent::metrics::Metrics;
use pcap_agent::remote::Remote;
use pcap_agent::spool::SpoolService;
use pcap_config::Config;
use pcap_doorbell::{Broker, Doorbell};
use pcap_protocol::store::keys;
use pcap_protocol::{
    AuthorizationDocument, CaptureId, CaptureRequest, Envelope, Grant, Period, RequestId,
    Revocation, Serial, SigningKey,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

struct Args {
    dir: std::path::PathBuf,
    endpoint: String,
    devices: usize,
    from: usize,
    doorbell: Option<String>,
    scale: u32,
    seconds: u64,
    s3_log: Option<std::path::PathBuf>,
}

fn args() -> (String, Args) {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_default();
    let mut a = Args {
        dir: ".".into(),
        endpoint: String::new(),
        devices: 0,
        from: 1,
        doorbell: None,
        scale: 1,
        seconds: 60,
        s3_log: None,
    };
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--dir" => a.dir = value.into(),
            "--endpoint" => a.endpoint = value,
            "--devices" | "--to" => a.devices = value.parse().expect("a number"),
            "--from" => a.from = value.parse().expect("a number"),
            "--doorbell" => a.doorbell = Some(value),
            "--scale" => a.scale = value.parse().expect("a number"),
            "--seconds" => a.seconds = value.parse().expect("a number"),
            "--s3-log" => a.s3_log = Some(value.into()),
            other => panic!("unknown flag {other}"),
        }
    }
    (mode, a)
}

fn serial(i: usize) -> Serial {
    Serial::parse(&format!("FLEET-{i:05}")).expect("serial")
}

fn store(a: &Args) -> pcap_uploader::store::Store {
    let url: pcap_config::StoreUrl = "s3://captures/fleet".parse().expect("url");
    let s3 = pcap_config::S3 {
        endpoint: Some(a.endpoint.clone()),
        region: None,
        path_style: true,
        credentials_file: Some(a.dir.join("s3-credentials")),
        ca_bundle: None,
    };
    pcap_uploader::store::Store::open(&url, &s3).expect("store")
}

fn key(a: &Args, name: &str) -> SigningKey {
    SigningKey::load(&a.dir.join("keys").join(name)).expect("signing key")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (mode, a) = args();
    match mode.as_str() {
        "populate" => populate(&a).await,
        "latency" => latency(&a).await,
        "requests" => requests(&a).await,
        _ => panic!("usage: pcap-fleet-sim populate|latency|requests ..."),
    }
}

/// Writes the grant and a heartbeat of devices `from..=to`, as the portal and the agents do.
async fn populate(a: &Args) {
    let store = store(a);
    let auth = key(a, "authorization.key");
    let now = Timestamp::now();
    futures::stream::iter(a.from..=a.devices)
        .map(|i| {
            let (store, auth) = (&store, &auth);
            async move {
                let s = serial(i);
                let grant = Grant::new(
                    s.clone(),
                    Some(format!("fw-{i}")),
                    Period::ThreeMonths,
                    1,
                    now,
                );
                let doc = AuthorizationDocument::Grant(grant);
                let bytes = Envelope::sign(&doc, auth).to_json();
                store
                    .put_bytes(&store.key(&keys::grant(&s)), bytes)
                    .await
                    .expect("grant");
                let beat = heartbeat(&s, now);
                store
                    .put_document(&store.key(&keys::status(&s)), &beat)
                    .await
                    .expect("status");
            }
        })
        .buffer_unordered(64)
        .collect::<()>()
        .await;
}

fn heartbeat(s: &Serial, now: Timestamp) -> pcap_protocol::store::Heartbeat {
    use pcap_protocol::Document;
    use pcap_protocol::store::{Heartbeat, HeartbeatAuthorization};
    Heartbeat {
        schema: Heartbeat::SCHEMA,
        serial: s.clone(),
        name: None,
        agent_version: pcap_agent::VERSION.to_owned(),
        libpcap_version: "libpcap version 1.10.3".to_owned(),
        authorization: HeartbeatAuthorization {
            state: pcap_protocol::AuthState::Authorized,
            expires_at: None,
            period: Some(Period::ThreeMonths),
            sequence: Some(1),
            reason: None,
        },
        captures: Default::default(),
        spool: Default::default(),
        uploads: Default::default(),
        last_error: None,
        time: now,
        channel: None,
    }
}

/// One simulated device, as the driver watches it.
struct Device {
    serial: Serial,
    auth: watch::Receiver<AuthStatus>,
    doorbell: Doorbell,
}

/// When each device's scheduler got its first request.
type Arrivals = Arc<Mutex<HashMap<Serial, Instant>>>;

/// The config of device `i`: everything from the store, polled every `poll`; with
/// `doorbell` (URL, poll, heartbeat interval), its doorbell.
fn config(a: &Args, i: usize, poll: &str, doorbell: Option<(&str, &str, &str)>) -> Config {
    let s = serial(i);
    let d = a.dir.display();
    let recipient =
        std::fs::read_to_string(a.dir.join("keys/research.age.pub")).expect("recipient");
    let mut text = format!(
        r#"[device]
serial = "{s}"
[authorization]
source = "store"
verify_key = "{d}/keys/authorization.pub"
poll_interval = "{poll}"
[requests]
verify_key = "{d}/keys/request.pub"
poll_interval = "{poll}"
[upload]
store = "s3://captures/fleet"
recipients = ["{r}"]
[upload.s3]
endpoint = "{e}"
path_style = true
credentials_file = "{d}/s3-credentials"
[control]
socket = "{d}/sim/{s}/control.sock"
[paths]
state_dir = "{d}/sim/{s}/state"
spool_dir = "{d}/sim/{s}/spool"
[capture]
interfaces = ["lo"]
"#,
        r = recipient.trim(),
        e = a.endpoint,
    );
    if let Some((url, poll, beat)) = doorbell {
        text.push_str(&format!(
            "[doorbell]\nurl = \"{url}\"\npoll_interval = \"{poll}\"\nheartbeat_interval = \"{beat}\"\n"
        ));
    }
    let config = pcap_config::parse(&text).unwrap_or_else(|p| panic!("config: {p:?}"));
    for dir in [&config.paths.state_dir, &config.paths.spool_dir] {
        std::fs::create_dir_all(dir).expect("device directories");
    }
    config
}

/// Starts one device with `config`; its scheduler records arrivals in `arrivals`.
fn start(config: Config, arrivals: &Arrivals, cancel: &CancellationToken) -> Device {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let incidents = Incidents::default();
    let serial = config.device.serial.clone();
    let doorbell = match &config.doorbell {
        Some(d) => {
            let (doorbell, task) =
                pcap_doorbell::listen(Broker::from_config(d), &serial, cancel.child_token());
            tokio::spawn(task);
            doorbell
        }
        None => Doorbell::none(),
    };
    let (authority, auth) = Authority::new(
        Settings::from_config(&config),
        clock.clone(),
        incidents.clone(),
    );
    let authority = authority.with_doorbell(doorbell.clone());
    let (config_tx, config_rx) = watch::channel(Arc::new(config.clone()));
    let token = cancel.child_token();
    let api_config = config_rx.clone();
    tokio::spawn(async move {
        let _keep = config_tx;
        authority.run(config_rx, token).await;
    });
    let spool = SpoolService::open(&config).expect("spool");
    let (scheduler, commands) = mpsc::channel(16);
    tokio::spawn(accept_everything(
        commands,
        serial.clone(),
        arrivals.clone(),
    ));
    let (core, core_rx) = mpsc::channel(1);
    let (captures_tx, captures) = watch::channel(Summary::default());
    let keep = cancel.child_token();
    tokio::spawn(async move {
        let _keep = (core_rx, captures_tx);
        keep.cancelled().await;
    });
    let api = Arc::new(Api {
        config: api_config,
        auth: auth.clone(),
        core,
        scheduler,
        captures,
        spool: spool.api.clone(),
        metrics: Metrics::new(),
        incidents,
        access: RwLock::new(Arc::new(
            Access::resolve(&config.control, 0).expect("access"),
        )),
        clock: clock.clone(),
        started_at: clock.now(),
        doorbell: doorbell.clone(),
    });
    let remote = Remote::new(api, &config).expect("remote");
    tokio::spawn(remote.run(cancel.child_token()));
    Device {
        serial,
        auth,
        doorbell,
    }
}

/// The scheduler of a simulated device: accepts every request at once, as a capture start
/// would, and notes when the first one arrived.
async fn accept_everything(
    mut commands: mpsc::Receiver<SchedulerCommand>,
    serial: Serial,
    arrivals: Arrivals,
) {
    while let Some(command) = commands.recv().await {
        match command {
            SchedulerCommand::Start { request, reply, .. } => {
                arrivals
                    .lock()
                    .unwrap()
                    .entry(serial.clone())
                    .or_insert_with(Instant::now);
                let _ = reply.send(Ok(record(*request)));
            }
            SchedulerCommand::Get { reply, .. } => {
                let _ = reply.send(None);
            }
            SchedulerCommand::List { reply } => {
                let _ = reply.send(Vec::new());
            }
            SchedulerCommand::Stop { .. } => {}
        }
    }
}

fn record(request: CaptureRequest) -> CaptureRecord {
    CaptureRecord {
        id: CaptureId::generate(),
        state: CaptureState::Running,
        origin: Origin::Remote,
        interface: request.interface.clone(),
        effective_filter: request.filter.clone(),
        inner_filter: None,
        limits: pcap_protocol::EffectiveLimits {
            max_duration: Duration::from_secs(60),
            max_packets: None,
            max_bytes: None,
            snaplen: 262_144,
            max_pps: None,
            max_bps: None,
        },
        request,
        link_type: "EN10MB".to_owned(),
        grant_id: None,
        started_at: Timestamp::now(),
        ended_at: None,
        stop_reason: None,
        error: None,
        stats: Default::default(),
        segments: Vec::new(),
        segments_lost: 0,
        sessions: None,
    }
}

/// Starts `a.devices` devices polling every `poll` (with `a.doorbell`: its doorbell, with the
/// poll and heartbeat intervals of `doorbell`), spread over `stagger` as a fleet's devices are
/// (else they would all poll at the same moment); waits until each has read its grant (and
/// connected its doorbell).
async fn fleet(
    a: &Args,
    (poll, stagger): (&str, Duration),
    doorbell: (&str, &str),
    arrivals: &Arrivals,
    cancel: &CancellationToken,
) -> Vec<Device> {
    let settle = Instant::now();
    let mut devices = Vec::new();
    for i in 1..=a.devices {
        let bell = a
            .doorbell
            .as_deref()
            .map(|url| (url, doorbell.0, doorbell.1));
        devices.push(start(config(a, i, poll, bell), arrivals, cancel));
        tokio::time::sleep(stagger / a.devices.max(1) as u32).await;
    }
    loop {
        let ready = devices.iter().all(|d| {
            d.auth.borrow().state == AuthState::Authorized
                && (a.doorbell.is_none() || d.doorbell.is_connected())
        });
        if ready {
            break;
        }
        assert!(
            settle.elapsed() < Duration::from_secs(180),
            "the fleet did not settle"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "{} devices up in {:.1}s",
        devices.len(),
        settle.elapsed().as_secs_f64()
    );
    devices
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(what: &str, written: &HashMap<Serial, Instant>, seen: &HashMap<Serial, Instant>) {
    let mut ms: Vec<f64> = written
        .iter()
        .filter_map(|(s, w)| {
            seen.get(s)
                .map(|t| t.saturating_duration_since(*w).as_secs_f64() * 1000.0)
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    println!(
        "{what}: {} of {} devices, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        ms.len(),
        written.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN)
    );
}

/// Request -> accepted and revocation -> revoked, for every device, with the default
/// intervals (30 s polls without a doorbell; with one, its 15-minute safety net).
async fn latency(a: &Args) {
    let cancel = CancellationToken::new();
    let arrivals: Arrivals = Arc::default();
    let stagger = if a.doorbell.is_some() {
        Duration::ZERO
    } else {
        Duration::from_secs(30)
    };
    let devices = fleet(a, ("30s", stagger), ("15m", "1h"), &arrivals, &cancel).await;
    // Past the reads each doorbell's connection caused, as in a fleet that has been running.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let store = store(a);
    let broker = a.doorbell.as_ref().map(|url| Broker {
        url: url.parse().expect("broker url"),
        credentials_file: None,
        ca_bundle: None,
    });
    let request_key = key(a, "request.key");
    let auth_key = key(a, "authorization.key");
    let wait = Duration::from_secs(if broker.is_some() { 20 } else { 60 });

    // A request for every device at once: the worst case for the store and the broker.
    let written = write_all(&devices, &store, broker.as_ref(), |s| {
        let id = RequestId::generate();
        let mut request: CaptureRequest =
            serde_json::from_str(r#"{"interface":"lo","filter":"udp","reason":"unknown_device"}"#)
                .expect("request");
        request.request_id = Some(id.clone());
        request.serial = Some(s.clone());
        request.not_after = Some(Timestamp::now() + jiff::SignedDuration::from_hours(1));
        (
            keys::request(s, &id),
            Envelope::sign(&request, &request_key).to_json(),
        )
    })
    .await;
    let end = Instant::now() + wait;
    while Instant::now() < end && arrivals.lock().unwrap().len() < devices.len() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    report("request -> accepted", &written, &arrivals.lock().unwrap());
    // Rings closer than a second apart wait for each other (at most one store read a second);
    // a revocation does not follow a request within the second.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let revoked: Arrivals = Arc::default();
    for d in &devices {
        let (mut auth, serial, revoked) = (d.auth.clone(), d.serial.clone(), revoked.clone());
        tokio::spawn(async move {
            while auth.changed().await.is_ok() {
                if auth.borrow().state == AuthState::Revoked {
                    revoked.lock().unwrap().insert(serial, Instant::now());
                    return;
                }
            }
        });
    }
    let written = write_all(&devices, &store, broker.as_ref(), |s| {
        let doc =
            AuthorizationDocument::Revocation(Revocation::new(s.clone(), 2, Timestamp::now()));
        (keys::grant(s), Envelope::sign(&doc, &auth_key).to_json())
    })
    .await;
    let end = Instant::now() + wait;
    while Instant::now() < end && revoked.lock().unwrap().len() < devices.len() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    report("revocation -> revoked", &written, &revoked.lock().unwrap());
    cancel.cancel();
}

/// Writes one document per device (64 at a time), ringing each device's doorbell after its
/// write as the portal does; returns when each write completed.
async fn write_all(
    devices: &[Device],
    store: &pcap_uploader::store::Store,
    broker: Option<&Broker>,
    document: impl Fn(&Serial) -> (String, Vec<u8>),
) -> HashMap<Serial, Instant> {
    let docs: Vec<(Serial, String, Vec<u8>)> = devices
        .iter()
        .map(|d| {
            let (k, b) = document(&d.serial);
            (d.serial.clone(), k, b)
        })
        .collect();
    futures::stream::iter(docs)
        .map(|(serial, rel, bytes)| async move {
            store
                .put_bytes(&store.key(&rel), bytes)
                .await
                .expect("write");
            let at = Instant::now();
            if let Some(b) = broker
                && let Err(e) = pcap_doorbell::ring(b, std::slice::from_ref(&serial)).await
            {
                eprintln!("ring {serial}: {e}");
            }
            (serial, at)
        })
        .buffer_unordered(64)
        .collect()
        .await
}

/// Store requests of an idle fleet, by operation, over `seconds` with every interval divided
/// by `scale` (so that `seconds` stand for `seconds * scale` of real time).
async fn requests(a: &Args) {
    let cancel = CancellationToken::new();
    let arrivals: Arrivals = Arc::default();
    let k = a.scale;
    let poll = format!("{}ms", 30_000 / k);
    let (dpoll, beat) = (format!("{}ms", 900_000 / k), format!("{}ms", 3_600_000 / k));
    let stagger = Duration::from_millis(u64::from(30_000 / k));
    let _devices = fleet(a, (&poll, stagger), (&dpoll, &beat), &arrivals, &cancel).await;
    // Past the start-up reads before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = a.s3_log.as_ref().expect("--s3-log");
    let count = || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let mut by_op: std::collections::BTreeMap<String, u64> = Default::default();
        for line in text.lines() {
            if let Some((_, rest)) = line.split_once("resolved route, op: ") {
                let op = rest.split(',').next().unwrap_or("").to_owned();
                *by_op.entry(op).or_default() += 1;
            }
        }
        by_op
    };
    let before = count();
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    let after = count();
    cancel.cancel();
    let simulated_days = (a.seconds * u64::from(k)) as f64 / 86_400.0;
    let mut total = 0.0;
    for (op, n) in &after {
        let d = (*n - before.get(op).copied().unwrap_or(0)) as f64;
        let per_day = d / a.devices as f64 / simulated_days;
        total += per_day;
        println!("{op}: {per_day:.0} per device per day");
    }
    println!("all: {total:.0} per device per day");
}
