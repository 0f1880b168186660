//! `pcapctl`: the host operator's client for the agent's control socket.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pcap_agent::client::{Answer, Client, ClientError, DEFAULT_SOCKET};
use serde_json::Value;

/// Exit status when the agent is not running (EX_UNAVAILABLE).
const EX_UNAVAILABLE: u8 = 69;
/// Exit status when the socket may not be used (EX_NOPERM).
const EX_NOPERM: u8 = 77;

#[derive(Debug, Parser)]
#[command(
    name = "pcapctl",
    version,
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
    command: Command,
}

// Parsed once per run; the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
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
    Start(StartArgs),
    /// Every capture, newest first.
    List,
    /// One capture: request, effective filter, limits, stats, segments.
    Show { id: String },
    /// Stop a running capture; its open segment is sealed.
    Stop { id: String },
}

#[derive(Debug, clap::Args)]
struct StartArgs {
    #[arg(long)]
    interface: String,
    /// BPF filter; empty captures everything but the agent's own traffic.
    #[arg(long, default_value = "")]
    filter: String,
    /// unknown_device, unknown_application or other.
    #[arg(long, default_value = "other")]
    reason: String,
    #[arg(long)]
    subject: Option<String>,
    /// Stop after this long, e.g. 60s.
    #[arg(long)]
    duration: Option<String>,
    /// Stop after this many packets.
    #[arg(long)]
    packets: Option<u64>,
    /// Stop after this many bytes, e.g. 100MiB.
    #[arg(long)]
    bytes: Option<String>,
    #[arg(long)]
    snaplen: Option<u32>,
    /// Packets per second at most.
    #[arg(long)]
    pps: Option<u64>,
    /// Bytes per second at most, e.g. 10MiB.
    #[arg(long)]
    bps: Option<String>,
}

impl StartArgs {
    fn body(&self) -> Vec<u8> {
        let mut limits = serde_json::Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                limits.insert(k.to_owned(), v);
            }
        };
        put("max_duration", self.duration.clone().map(Value::from));
        put("max_packets", self.packets.map(Value::from));
        put("max_bytes", self.bytes.clone().map(Value::from));
        put("snaplen", self.snaplen.map(Value::from));
        put("max_pps", self.pps.map(Value::from));
        put("max_bps", self.bps.clone().map(Value::from));
        let mut body = serde_json::json!({
            "interface": self.interface,
            "filter": self.filter,
            "reason": self.reason,
            "limits": limits,
        });
        if let Some(s) = &self.subject {
            body["subject"] = Value::from(s.clone());
        }
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    let answer = runtime.block_on(async {
        match &cli.command {
            Command::Status => client.get("/v1/status").await,
            Command::Authorization => client.get("/v1/authorization").await,
            Command::Reload => client.post("/v1/reload", None).await,
            Command::Spool => client.get("/v1/spool").await,
            Command::Reap => client.post("/v1/reap", None).await,
            Command::Capture { action } => match action {
                CaptureAction::Start(args) => client.post("/v1/captures", Some(args.body())).await,
                CaptureAction::List => client.get("/v1/captures").await,
                CaptureAction::Show { id } => {
                    client.get(&format!("/v1/captures/{}", path_part(id))).await
                }
                CaptureAction::Stop { id } => {
                    client
                        .send(
                            http::Method::DELETE,
                            &format!("/v1/captures/{}", path_part(id)),
                            None,
                        )
                        .await
                }
            },
        }
    });
    let answer = match answer {
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
    let body = match answer.json() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("pcapctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    match cli.command {
        Command::Status => print_status(&body),
        Command::Authorization => print_authorization(&body),
        Command::Reload => print_reload(&body),
        Command::Spool => print_spool(&body),
        Command::Reap => println!(
            "reaped: {} uploaded deleted, {} expired, {} purged, {} dropped for the quota; spool {} bytes{}",
            s(&body, "/deleted_uploaded"),
            s(&body, "/expired"),
            s(&body, "/purged"),
            s(&body, "/dropped_for_quota"),
            s(&body, "/spool_bytes"),
            if body["refusing"] == true {
                ", full: new segments are refused"
            } else {
                ""
            }
        ),
        Command::Capture { action } => match action {
            CaptureAction::Start(_) => {
                println!(
                    "capture {} started on {}",
                    s(&body, "/id"),
                    s(&body, "/interface")
                );
                print_capture(&body);
            }
            CaptureAction::List => print_capture_list(&body),
            CaptureAction::Show { .. } => print_capture(&body),
            CaptureAction::Stop { .. } => {
                println!(
                    "capture {} stopped: {}",
                    s(&body, "/id"),
                    s(&body, "/stop_reason")
                );
                print_capture(&body);
            }
        },
    }
    ExitCode::SUCCESS
}

fn fail(answer: &Answer) -> ExitCode {
    match answer.error() {
        Some((code, message)) => eprintln!("pcapctl: {message} ({code})"),
        None => eprintln!("pcapctl: the agent answered {}", answer.status),
    }
    if let Ok(v) = answer.json()
        && let Some(problems) = v
            .pointer("/error/details/problems")
            .and_then(Value::as_array)
    {
        for p in problems {
            eprintln!("  {}", p.as_str().unwrap_or_default());
        }
    }
    if answer
        .error()
        .is_some_and(|(code, _)| code == "peer_not_allowed")
    {
        ExitCode::from(EX_NOPERM)
    } else {
        ExitCode::FAILURE
    }
}

fn s(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn authorization_line(state: &str, expires: &str, reason: &str) -> String {
    match (state, expires.is_empty()) {
        ("authorized", true) => "authorized, without expiry".to_owned(),
        ("authorized", false) => format!("authorized until {expires}"),
        (other, _) if !reason.is_empty() => format!("{other}: {reason}"),
        (other, _) => other.to_owned(),
    }
}

fn print_status(v: &Value) {
    let name = s(v, "/name");
    let device = if name.is_empty() {
        s(v, "/serial")
    } else {
        format!("{} ({name})", s(v, "/serial"))
    };
    println!(
        "pcap-agent {} (pid {}), up {}s",
        s(v, "/version"),
        s(v, "/pid"),
        s(v, "/uptime_seconds")
    );
    println!("device:        {device}");
    println!(
        "authorization: {}",
        authorization_line(
            &s(v, "/authorization/state"),
            &s(v, "/authorization/expires_at"),
            &s(v, "/authorization/reason")
        )
    );
    let interfaces: Vec<String> = v
        .pointer("/captures/interfaces")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "captures:      {} running (at most {}) on {}",
        s(v, "/captures/running"),
        s(v, "/captures/max_concurrent"),
        interfaces.join(", ")
    );
    println!("store:         {}", s(v, "/store"));
    println!(
        "spool:         {} bytes in {}{}",
        s(v, "/spool/bytes"),
        s(v, "/spool/dir"),
        if v.pointer("/spool/refusing_new_segments") == Some(&Value::Bool(true)) {
            " (full: new segments refused)"
        } else {
            ""
        }
    );
    println!(
        "uploads:       {} files, {} bytes uploaded, {} failed attempts{}",
        s(v, "/uploads/uploaded_files"),
        s(v, "/uploads/uploaded_bytes"),
        s(v, "/uploads/failed_attempts"),
        match s(v, "/uploads/permanent_error").as_str() {
            "" => String::new(),
            e => format!("\n  STORE REFUSES UPLOADS: {e}"),
        }
    );
    match v.pointer("/last_errors").and_then(Value::as_array) {
        Some(errors) if !errors.is_empty() => {
            println!("last errors:");
            for e in errors {
                println!(
                    "  {} [{}] {}",
                    s(e, "/time"),
                    s(e, "/source"),
                    s(e, "/message")
                );
            }
        }
        _ => println!("last errors:   none"),
    }
}

fn print_authorization(v: &Value) {
    println!("state:    {} (since {})", s(v, "/state"), s(v, "/since"));
    if v.get("grant").is_some() {
        let expires = s(v, "/grant/expires_at");
        println!(
            "grant:    {} (period {}, sequence {})",
            s(v, "/grant/grant_id"),
            s(v, "/grant/period"),
            s(v, "/grant/sequence")
        );
        println!(
            "valid:    from {} {}",
            s(v, "/grant/not_before"),
            if expires.is_empty() {
                "without expiry".to_owned()
            } else {
                format!("until {expires}")
            }
        );
    } else if v.get("sequence").is_some() {
        println!("sequence: {}", s(v, "/sequence"));
    }
    let reason = s(v, "/reason");
    if !reason.is_empty() {
        println!("reason:   {reason}");
    }
}

fn print_reload(v: &Value) {
    println!("config reloaded from {}", s(v, "/report/config"));
    if let Some(keys) = v.pointer("/report/needs_restart").and_then(Value::as_array)
        && !keys.is_empty()
    {
        let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        println!(
            "changed settings that take effect after a restart: {}",
            keys.join(", ")
        );
    }
}

/// Keeps an id from the command line to one path segment.
fn path_part(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect()
}

fn print_capture_list(v: &Value) {
    let list = v
        .get("captures")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if list.is_empty() {
        println!("no captures");
        return;
    }
    println!(
        "{:<36}  {:<8}  {:<10}  {:<20}  {:>9}  {:>12}  {:>4}  STOP",
        "ID", "STATE", "INTERFACE", "STARTED", "PACKETS", "BYTES", "SEGS"
    );
    for c in &list {
        println!(
            "{:<36}  {:<8}  {:<10}  {:<20}  {:>9}  {:>12}  {:>4}  {}",
            s(c, "/id"),
            s(c, "/state"),
            s(c, "/interface"),
            s(c, "/started_at").chars().take(19).collect::<String>(),
            s(c, "/stats/written"),
            s(c, "/stats/bytes_written"),
            s(c, "/stats/segments"),
            s(c, "/stop_reason")
        );
    }
}

fn print_capture(v: &Value) {
    println!(
        "state:     {}{}",
        s(v, "/state"),
        match s(v, "/stop_reason").as_str() {
            "" => String::new(),
            r => format!(" ({r})"),
        }
    );
    println!(
        "reason:    {} {}",
        s(v, "/request/reason"),
        s(v, "/request/subject")
    );
    println!("filter:    {}", s(v, "/effective_filter"));
    println!("link type: {}", s(v, "/link_type"));
    let limits: Vec<String> = v
        .get("limits")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k}={}", v.as_str().map_or(v.to_string(), str::to_owned)))
                .collect()
        })
        .unwrap_or_default();
    println!("limits:    {}", limits.join(", "));
    println!("started:   {}", s(v, "/started_at"));
    let ended = s(v, "/ended_at");
    if !ended.is_empty() {
        println!("ended:     {ended}");
    }
    println!(
        "packets:   {} received, {} written ({} bytes), dropped: {} rate limit, {} kernel, {} interface",
        s(v, "/stats/received"),
        s(v, "/stats/written"),
        s(v, "/stats/bytes_written"),
        s(v, "/stats/dropped_rate_limit"),
        s(v, "/stats/dropped_kernel"),
        s(v, "/stats/dropped_interface")
    );
    let segments = v
        .get("segments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    println!(
        "segments:  {} sealed, {} lost",
        segments.len(),
        s(v, "/segments_lost")
    );
    for seg in &segments {
        println!(
            "  {:>6}  {:>10} bytes  {:>8} packets",
            s(seg, "/seq"),
            s(seg, "/size"),
            s(seg, "/packets")
        );
    }
    let error = s(v, "/error");
    if !error.is_empty() {
        println!("error:     {error}");
    }
}

fn print_spool(v: &Value) {
    println!(
        "spool {}: {} bytes, {}% free{}",
        s(v, "/dir"),
        s(v, "/bytes"),
        s(v, "/free_percent"),
        if v["refusing_new_segments"] == true {
            ", full: new segments refused"
        } else {
            ""
        }
    );
    let files = v
        .get("files")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    println!(
        "{:<36}  {:<18}  {:<9}  {:>10}  {:>8}  {:>3}  LAST ERROR",
        "CAPTURE", "FILE", "STATE", "BYTES", "AGE s", "TRY"
    );
    for f in &files {
        println!(
            "{:<36}  {:<18}  {:<9}  {:>10}  {:>8}  {:>3}  {}",
            s(f, "/capture"),
            s(f, "/name"),
            s(f, "/state"),
            s(f, "/size"),
            s(f, "/age_seconds"),
            s(f, "/attempts"),
            s(f, "/last_error")
        );
    }
    println!(
        "uploads: {} files, {} bytes, captures complete: {}, failed attempts: {}",
        s(v, "/uploads/uploaded_files"),
        s(v, "/uploads/uploaded_bytes"),
        s(v, "/uploads/manifests"),
        s(v, "/uploads/failed_attempts"),
    );
    let permanent = s(v, "/uploads/permanent_error");
    if !permanent.is_empty() {
        println!("the store refuses uploads: {permanent}");
    }
}
