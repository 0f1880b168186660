//! `pcap-agent`: the daemon, and the commands that check its config.
//!
//! `run` reads top to bottom: config, tracing, runtime, daemon (which binds, spawns, waits for a
//! signal and drains).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use pcap_agent::{daemon, logging};
use pcap_config::{DEFAULT_CONFIG_PATH, LogFormat};

/// Exit status for a bad config or command line (EX_USAGE).
const EX_USAGE: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "pcap-agent",
    version = pcap_manual::VERSION,
    about = "On-demand packet capture agent, under the customer's authorization"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the man pages or the shell completions (for packaging).
    #[command(hide = true)]
    Generate(pcap_manual::GenerateArgs),
    /// Run the daemon (what the systemd unit starts).
    Run {
        #[arg(long, env = "PCAP_AGENT_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Log format on stderr; overrides [logging] format.
        #[arg(long, value_enum)]
        log_format: Option<FormatArg>,
    },
    /// Validate the config and print every problem; exit 64 if there are any.
    CheckConfig {
        #[arg(long, env = "PCAP_AGENT_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Session records of a pcap or pcapng file, one JSON line per session on stdout.
    Analyze {
        file: PathBuf,
        /// Apply the [sharing] switches and [sessions] maps of this agent config.
        #[arg(long)]
        sharing_from: Option<PathBuf>,
        /// The interface the file was captured on (names its virtual system).
        #[arg(long)]
        interface: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    Json,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run { config, log_format } => run(&config, log_format),
        Command::CheckConfig { config } => check_config(&config),
        Command::Analyze {
            file,
            sharing_from,
            interface,
        } => analyze(&file, sharing_from.as_deref(), interface.as_deref()),
        Command::Generate(args) => pcap_manual::run(Cli::command(), &args, true),
    }
}

fn run(path: &Path, format: Option<FormatArg>) -> ExitCode {
    // Everything the daemon creates (state, spool, a local store's objects) is its own alone,
    // however it is started; the systemd unit sets the same mask.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let config = match pcap_config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pcap-agent: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let format = format.map(|f| match f {
        FormatArg::Text => LogFormat::Text,
        FormatArg::Json => LogFormat::Json,
    });
    let log = logging::init(&config.logging, format);
    // Reloads re-read this file; an absolute path keeps reports clear.
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("pcap-agent")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pcap-agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let uploads = match pcap_agent::spool::upload_runtime(config.upload.nice) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pcap-agent: cannot start the upload runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(daemon::run(path, config, log, uploads.handle().clone()));
    // An upload cut short here is started over after the next start (the journal has it).
    uploads.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "pcap-agent cannot start.");
            eprintln!("pcap-agent: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status for unreadable input data (EX_DATAERR).
const EX_DATAERR: u8 = 65;
/// Sessions the flow table of `analyze` holds before it evicts the oldest.
const ANALYZE_MAX_SESSIONS: usize = 2_000_000;
/// Bytes the sessions of `analyze` hold before the longest idle stop being inspected.
const ANALYZE_MAX_BYTES: u64 = 1 << 30;

fn analyze(file: &Path, sharing_from: Option<&Path>, interface: Option<&str>) -> ExitCode {
    use std::io::Write;
    let (sharing, sessions) = match sharing_from.map(pcap_config::load_sharing) {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            eprintln!("pcap-agent analyze: {e}");
            return ExitCode::from(EX_USAGE);
        }
        None => (
            pcap_config::Sharing::default(),
            pcap_config::Sessions::default(),
        ),
    };
    let sessions = pcap_config::Sessions {
        max: sessions.max.max(ANALYZE_MAX_SESSIONS),
        max_bytes: sessions.max_bytes.max(ANALYZE_MAX_BYTES),
        ..sessions
    };
    let input = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("pcap-agent analyze: cannot open {}: {e}", file.display());
            return ExitCode::from(EX_DATAERR);
        }
    };
    let users = sessions
        .users
        .as_deref()
        .map(pcap_capture::session::UserMapFile::new);
    let users = users.map(|mut u| u.refresh().clone());
    let ctx = pcap_capture::session::RecordContext {
        sharing: &sharing,
        virtual_system: interface
            .and_then(|i| sessions.virtual_systems.get(i))
            .map(String::as_str),
        virtual_systems: Some(&sessions.virtual_systems),
        users: users.as_ref(),
        community_id_seed: sessions.community_id_seed,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = pcap_capture::analyze::analyze_file(
        input,
        &ctx,
        pcap_capture::session::SessionTable::configured(&sessions),
        &mut out,
    );
    let _ = out.flush();
    match result {
        Ok(summary) => {
            eprintln!(
                "{}: {} packets, {} sessions",
                file.display(),
                summary.packets,
                summary.sessions
            );
            if summary.inspection_stopped > 0 {
                eprintln!(
                    "{}: {} sessions stopped being inspected early, their fields perhaps \
                     incomplete: the flow table reached {} MiB ([sessions] max_bytes)",
                    file.display(),
                    summary.inspection_stopped,
                    sessions.max_bytes >> 20
                );
            }
            if summary.fragments_given_up > 0 {
                eprintln!(
                    "{}: {} IP fragments whose datagram never came whole (not in any session)",
                    file.display(),
                    summary.fragments_given_up
                );
            }
            if summary.unknown_link > 0 {
                eprintln!(
                    "{}: {} packets of a link type pcap-agent does not read (not in any session)",
                    file.display(),
                    summary.unknown_link
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pcap-agent analyze: {}: {e}", file.display());
            ExitCode::from(EX_DATAERR)
        }
    }
}

fn check_config(path: &Path) -> ExitCode {
    match pcap_config::load(path) {
        Ok(c) => {
            println!(
                "{}: OK (device {}, {} interface(s), store {})",
                path.display(),
                c.device.serial,
                c.capture.interfaces.len(),
                c.upload.store
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EX_USAGE)
        }
    }
}
