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

#[derive(Debug, Subcommand)]
enum Command {
    /// Version, device, authorization, captures and recent errors.
    Status,
    /// The authorization state and the grant behind it.
    Authorization,
    /// Make the agent re-read its config file.
    Reload,
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
        match cli.command {
            Command::Status => client.get("/v1/status").await,
            Command::Authorization => client.get("/v1/authorization").await,
            Command::Reload => client.post("/v1/reload", None).await,
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
    if answer.status == http::StatusCode::FORBIDDEN {
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
