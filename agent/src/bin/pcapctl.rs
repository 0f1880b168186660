//! `pcapctl`: the host operator's client for the agent's control socket. It reads the agent's
//! answers as the types of `pcap_agent::control::api` and prints them for people, or passes
//! the agent's JSON through with `--json`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use jiff::Timestamp;
use pcap_agent::authz::AuthStatus;
use pcap_agent::captures::CaptureRecord;
use pcap_agent::client::{Answer, Client, ClientError, DEFAULT_SOCKET};
use pcap_agent::control::api::{CaptureList, Reloaded, Spool, SpoolUsage, Status};
use pcap_protocol::request::cli::CaptureFlags;
use pcap_protocol::units::{format_duration, format_size};
use pcap_protocol::{AuthState, CaptureId, EffectiveLimits};
use pcap_uploader::reaper::ReapReport;

/// Exit status when the agent is not running (EX_UNAVAILABLE).
const EX_UNAVAILABLE: u8 = 69;
/// Exit status when the socket may not be used (EX_NOPERM).
const EX_NOPERM: u8 = 77;

#[derive(Debug, Parser)]
#[command(
    name = "pcapctl",
    version = pcap_manual::VERSION,
    about = "Talk to the pcap-agent daemon on its control socket"
)]
struct Cli {
    /// The control socket.
    #[arg(long, global = true, env = "PCAPCTL_SOCKET", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Print the agent's JSON answer instead of a summary.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    #[command(flatten)]
    Api(Command),
    /// Write the man pages or the shell completions (for packaging).
    #[command(hide = true)]
    Generate(pcap_manual::GenerateArgs),
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Version, device, authorization, captures and recent errors.
    Status,
    /// The authorization state and the grant behind it.
    Authorization,
    /// Make the agent re-read its config file.
    Reload,
    /// Spool files and their upload state, usage, upload status.
    Spool,
    /// Run the reaper now.
    Reap,
    /// Start, list, show and stop captures.
    Capture {
        #[command(subcommand)]
        action: CaptureAction,
    },
}

#[derive(Debug, Subcommand)]
enum CaptureAction {
    /// Start a capture on an allowed interface.
    Start(CaptureFlags),
    /// Every capture, newest first.
    List,
    /// One capture: request, effective filter, limits, stats, segments.
    Show { id: CaptureId },
    /// Stop a running capture; its open segment is sealed.
    Stop { id: CaptureId },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        Top::Api(command) => command,
        Top::Generate(args) => return pcap_manual::run(Cli::command(), &args, false),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pcapctl: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = Client::new(&cli.socket);
    let answer = match runtime.block_on(ask(&client, &command)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("pcapctl: {e}");
            return ExitCode::from(match e {
                ClientError::NotRunning { .. } | ClientError::NotListening { .. } => EX_UNAVAILABLE,
                ClientError::PermissionDenied { .. } => EX_NOPERM,
                _ => 1,
            });
        }
    };
    if !answer.status.is_success() {
        return fail(&answer);
    }
    if cli.json {
        println!("{}", String::from_utf8_lossy(&answer.body).trim_end());
        return ExitCode::SUCCESS;
    }
    match show(&command, &answer) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pcapctl: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sends the request of `command`.
async fn ask(client: &Client, command: &Command) -> Result<Answer, ClientError> {
    match command {
        Command::Status => client.get("/v1/status").await,
        Command::Authorization => client.get("/v1/authorization").await,
        Command::Reload => client.post("/v1/reload", None).await,
        Command::Spool => client.get("/v1/spool").await,
        Command::Reap => client.post("/v1/reap", None).await,
        Command::Capture { action } => match action {
            CaptureAction::Start(flags) => {
                let body = serde_json::to_vec(&flags.request()).unwrap_or_default();
                client.post("/v1/captures", Some(body)).await
            }
            CaptureAction::List => client.get("/v1/captures").await,
            CaptureAction::Show { id } => client.get(&format!("/v1/captures/{id}")).await,
            CaptureAction::Stop { id } => {
                client
                    .send(http::Method::DELETE, &format!("/v1/captures/{id}"), None)
                    .await
            }
        },
    }
}

/// Prints a successful answer for people.
fn show(command: &Command, answer: &Answer) -> Result<(), ClientError> {
    match command {
        Command::Status => print_status(&answer.parse()?),
        Command::Authorization => print_authorization(&answer.parse()?),
        Command::Reload => print_reload(&answer.parse()?),
        Command::Spool => print_spool(&answer.parse()?),
        Command::Reap => print_reap(&answer.parse()?),
        Command::Capture { action } => match action {
            CaptureAction::Start(_) => {
                let c: CaptureRecord = answer.parse()?;
                println!("capture {} started on {}", c.id, c.interface);
                print_capture(&c);
            }
            CaptureAction::List => print_capture_list(&answer.parse()?),
            CaptureAction::Show { .. } => print_capture(&answer.parse()?),
            CaptureAction::Stop { .. } => {
                let c: CaptureRecord = answer.parse()?;
                let reason = c.stop_reason.map_or("", |r| r.as_str());
                println!("capture {} stopped: {reason}", c.id);
                print_capture(&c);
            }
        },
    }
    Ok(())
}

fn fail(answer: &Answer) -> ExitCode {
    let Some(error) = answer.error() else {
        eprintln!("pcapctl: the agent answered {}", answer.status);
        return ExitCode::FAILURE;
    };
    eprintln!("pcapctl: {} ({})", error.message, error.code);
    for p in error.details.iter().flat_map(|d| &d.problems) {
        eprintln!("  {p}");
    }
    if error.code == "peer_not_allowed" {
        ExitCode::from(EX_NOPERM)
    } else {
        ExitCode::FAILURE
    }
}

/// A time to the second, or `-`.
fn at(t: Option<Timestamp>) -> String {
    t.map_or("-".to_owned(), |t| {
        t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
    })
}

fn authorization_line(
    state: AuthState,
    expires: Option<Timestamp>,
    reason: Option<&str>,
) -> String {
    match (state, expires, reason) {
        (AuthState::Authorized, None, _) => "authorized, without expiry".to_owned(),
        (AuthState::Authorized, Some(t), _) => format!("authorized until {}", at(Some(t))),
        (other, _, Some(reason)) => format!("{other}: {reason}"),
        (other, _, None) => other.to_string(),
    }
}

fn spool_line(usage: &SpoolUsage) -> String {
    let s = &usage.summary;
    format!(
        "{} of capture files in {} ({} waiting for upload), journal {}{}",
        format_size(s.capture_bytes),
        usage.dir.display(),
        format_size(s.unuploaded_bytes),
        format_size(s.journal_bytes),
        if s.refusing_new_segments {
            "; full: new segments are refused"
        } else {
            ""
        }
    )
}

fn print_status(v: &Status) {
    let device = match &v.name {
        Some(name) => format!("{} ({name})", v.serial),
        None => v.serial.to_string(),
    };
    println!(
        "pcap-agent {} (pid {}), up {}",
        v.version,
        v.pid,
        format_duration(std::time::Duration::from_secs(
            v.uptime_seconds.max(0) as u64
        ))
    );
    println!("device:        {device}");
    println!(
        "authorization: {}",
        authorization_line(
            v.authorization.state,
            v.authorization.expires_at,
            v.authorization.reason.as_deref()
        )
    );
    println!(
        "captures:      {} running (at most {}) on {}",
        v.captures.running,
        v.captures.max_concurrent,
        v.captures.interfaces.join(", ")
    );
    println!("store:         {}", v.store);
    println!("channel:       {}", channel_line(&v.channel));
    println!("spool:         {}", spool_line(&v.spool));
    let u = &v.uploads;
    println!(
        "uploads:       {} files, {} uploaded, {} failed attempts",
        u.uploaded_files,
        format_size(u.uploaded_bytes),
        u.failed_attempts
    );
    if let Some(e) = &u.permanent_error {
        println!("  STORE REFUSES UPLOADS: {e}");
    }
    if v.last_errors.is_empty() {
        println!("last errors:   none");
    } else {
        println!("last errors:");
        for e in &v.last_errors {
            println!("  {} [{}] {}", at(Some(e.time)), e.source, e.message);
        }
    }
}

/// How the agent hears of documents: its poll, remote requests, and the doorbell.
fn channel_line(c: &pcap_protocol::store::Channel) -> String {
    let requests = if c.requests {
        "remote requests on"
    } else {
        "local requests only"
    };
    let poll = format!("store read every {}s", c.poll_interval_seconds);
    match &c.doorbell {
        None => format!("{requests}, {poll}, no doorbell"),
        Some(d) => {
            let why = d
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            format!(
                "{requests}, {poll}, doorbell {} {} since {}{why}",
                d.broker,
                d.state.as_str(),
                at(Some(d.since))
            )
        }
    }
}

fn print_authorization(v: &AuthStatus) {
    println!("state:    {} (since {})", v.state, at(Some(v.since)));
    if let Some(g) = &v.grant {
        println!(
            "grant:    {} (period {}, sequence {})",
            g.grant_id, g.period, g.sequence
        );
        let until = match g.expires_at {
            Some(t) => format!("until {}", at(Some(t))),
            None => "without expiry".to_owned(),
        };
        println!("valid:    from {} {until}", at(Some(g.not_before)));
    } else if let Some(sequence) = v.sequence {
        println!("sequence: {sequence}");
    }
    if let Some(reason) = &v.reason {
        println!("reason:   {reason}");
    }
}

fn print_reload(v: &Reloaded) {
    println!("config reloaded from {}", v.report.config);
    if !v.report.needs_restart.is_empty() {
        println!(
            "changed settings that take effect after a restart: {}",
            v.report.needs_restart.join(", ")
        );
    }
}

fn print_reap(r: &ReapReport) {
    println!(
        "reaped: {} uploaded deleted, {} expired, {} purged, {} dropped for the quota; {} of files left in the spool{}",
        r.deleted_uploaded,
        r.expired,
        r.purged,
        r.dropped_for_quota,
        format_size(r.spool_bytes),
        if r.refusing {
            "; full: new segments are refused"
        } else {
            ""
        }
    );
}

fn print_capture_list(v: &CaptureList) {
    if v.captures.is_empty() {
        println!("no captures");
        return;
    }
    println!(
        "{:<36}  {:<8}  {:<10}  {:<20}  {:>9}  {:>12}  {:>4}  STOP",
        "ID", "STATE", "INTERFACE", "STARTED", "PACKETS", "BYTES", "SEGS"
    );
    for c in &v.captures {
        println!(
            "{:<36}  {:<8}  {:<10}  {:<20}  {:>9}  {:>12}  {:>4}  {}",
            c.id,
            c.state.as_str(),
            c.interface,
            c.started_at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            c.stats.written,
            c.stats.bytes_written,
            c.stats.segments,
            c.stop_reason.map_or("", |r| r.as_str())
        );
    }
}

/// The limits as a user writes them: `duration 48h, packets 20, snaplen 65535`.
fn limits_line(l: &EffectiveLimits) -> String {
    let mut parts = vec![format!("duration {}", format_duration(l.max_duration))];
    parts.extend(l.max_packets.map(|n| format!("packets {n}")));
    parts.extend(l.max_bytes.map(|n| format!("bytes {}", format_size(n))));
    parts.push(format!("snaplen {}", l.snaplen));
    parts.extend(l.max_pps.map(|n| format!("max-pps {n}")));
    parts.extend(l.max_bps.map(|n| format!("max-bps {}/s", format_size(n))));
    parts.join(", ")
}

fn print_capture(c: &CaptureRecord) {
    let stop = c
        .stop_reason
        .map(|r| format!(" ({})", r.as_str()))
        .unwrap_or_default();
    println!("capture:          {}", c.id);
    println!("state:            {}{stop}", c.state.as_str());
    let subject = c
        .request
        .subject
        .as_deref()
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    println!("reason:           {}{subject}", c.request.reason.as_str());
    println!(
        "interface:        {} (link type {})",
        c.interface, c.link_type
    );
    let requested = if c.request.filter.is_empty() {
        "(none: everything)"
    } else {
        &c.request.filter
    };
    println!("requested filter: {requested}");
    if let Some(tunnel) = &c.request.tunnel {
        println!("tunnel:           {tunnel} (the requested filter applies inside it)");
    }
    println!("effective filter: {}", c.effective_filter);
    if let Some(inner) = &c.inner_filter {
        println!("inner filter:     {inner} (on the frames inside the tunnel, in the agent)");
    }
    println!("limits:           {}", limits_line(&c.limits));
    println!("started:          {}", at(Some(c.started_at)));
    if c.ended_at.is_some() {
        println!("ended:            {}", at(c.ended_at));
    }
    let s = &c.stats;
    println!(
        "packets:          {} received, {} written ({}), dropped: {} rate limit, {} kernel, {} interface",
        s.received,
        s.written,
        format_size(s.bytes_written),
        s.dropped_rate_limit,
        s.dropped_kernel,
        s.dropped_interface
    );
    println!(
        "segments:         {} sealed, {} lost",
        c.segments.len(),
        c.segments_lost
    );
    for seg in &c.segments {
        println!(
            "  {:>6}  {:>12}  {:>8} packets",
            seg.seq,
            format_size(seg.size),
            seg.packets
        );
    }
    if let Some(sessions) = &c.sessions {
        let apps: Vec<String> = sessions
            .by_application
            .iter()
            .map(|(app, n)| format!("{app} {n}"))
            .collect();
        println!("sessions:         {} ({})", sessions.total, apps.join(", "));
    }
    if let Some(error) = &c.error {
        println!("error:            {error}");
    }
}

fn print_spool(v: &Spool) {
    let free = v
        .free_percent
        .map(|f| format!(", {f}% of the file system free"))
        .unwrap_or_default();
    println!("spool: {}{free}", spool_line(&v.usage));
    println!(
        "{:<36}  {:<18}  {:<9}  {:>10}  {:>8}  {:>3}  LAST ERROR",
        "CAPTURE", "FILE", "STATE", "BYTES", "AGE s", "TRY"
    );
    for f in &v.files {
        println!(
            "{:<36}  {:<18}  {:<9}  {:>10}  {:>8}  {:>3}  {}",
            f.capture,
            f.name,
            f.state.as_str(),
            f.size,
            f.age_seconds.map_or("-".to_owned(), |a| a.to_string()),
            f.attempts,
            f.last_error.as_deref().unwrap_or("")
        );
    }
    let u = &v.uploads;
    println!(
        "uploads: {} files, {}, captures complete: {}, failed attempts: {}",
        u.uploaded_files,
        format_size(u.uploaded_bytes),
        u.manifests,
        u.failed_attempts,
    );
    if let Some(e) = &u.permanent_error {
        println!("the store refuses uploads: {e}");
    }
}
