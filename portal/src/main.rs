//! `pcap-portal`: the customer's administrator authorizes devices; the research team requests,
//! fetches and deletes captures. Everything goes through the store (`file://` or `s3://`).
//!
//! # Layout
//!
//! - `store`: the store client (object_store, as the agent's), keys from
//!   `pcap_protocol::store::keys`, documents read as their types.
//! - `keygen`: the key pairs of both parties and the research team's age identity.
//! - `grants`: authorize, reauthorize, unauthorize.
//! - `devices`: the fleet's listing (one paged LIST, concurrent reads, an ETag cache).
//! - `listing`, `cache`: what every listing shares: runs of objects, progress, cached
//!   documents.
//! - `bell`: rings the devices' doorbells after a document is written.
//! - `issued`: the portal's own record of the sequences it issued.
//! - `requests`: signed capture requests and their results.
//! - `captures`: list, fetch (verify and decrypt), delete, purge.
//! - `audit`: the trail of every change under `audit/` in the store.
//! - `text`: store-supplied text made safe for a terminal.
//! - `users`: the web console's accounts (Argon2id hashes in a 0600 file).
//! - `console`: `serve`, the web console on the same functions.

#![forbid(unsafe_code)]

mod audit;
mod bell;
mod cache;
mod captures;
mod console;
mod devices;
mod grants;
mod issued;
mod keygen;
mod listing;
mod requests;
mod store;
mod text;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use pcap_protocol::units::parse_duration;
use pcap_protocol::{Period, Serial};

#[derive(Debug, Parser)]
#[command(
    name = "pcap-portal",
    version = pcap_manual::VERSION,
    about = "Authorize devices, request captures and manage them, all through the store"
)]
struct Cli {
    /// The store: file:///absolute/path or s3://bucket/prefix.
    #[arg(long, global = true, env = "PCAP_STORE")]
    store: Option<String>,
    #[command(flatten)]
    s3: store::S3Args,
    /// Where the portal keeps the sequences it issued and its cache of store documents
    /// (default: $XDG_STATE_HOME/pcap-portal, else ~/.local/state/pcap-portal).
    #[arg(long, global = true, env = "PCAP_PORTAL_STATE")]
    state_dir: Option<PathBuf>,
    /// Store requests a listing, purge or delete keeps in flight at once.
    #[arg(long, global = true, env = "PCAP_PORTAL_CONCURRENCY", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
    /// Read every document from the store, not from the portal's cache of unchanged ones.
    #[arg(long, global = true)]
    no_cache: bool,
    #[command(flatten)]
    doorbell: bell::DoorbellArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the man pages or the shell completions (for packaging).
    #[command(hide = true)]
    Generate(pcap_manual::GenerateArgs),
    /// Create the authorization and request key pairs and the research team's age identity.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Devices: every device that reported to the store or has a grant.
    Devices {
        #[command(subcommand)]
        command: DevicesCommand,
    },
    /// Same as `devices list`.
    #[command(hide = true)]
    List {
        #[command(flatten)]
        args: devices::ListArgs,
    },
    /// Authorize a device ("SERIAL" or "SERIAL NAME") for a period from now.
    Authorize {
        device: String,
        #[arg(long)]
        period: Period,
        /// Authorize a device that has not reported to the store yet.
        #[arg(long)]
        allow_unseen: bool,
        #[command(flatten)]
        key: grants::KeyArg,
    },
    /// Give an authorized device a new period starting now.
    Reauthorize {
        serial: String,
        #[arg(long)]
        period: Period,
        #[command(flatten)]
        key: grants::KeyArg,
    },
    /// Withdraw the authorization of one or more devices.
    Unauthorize {
        #[arg(required = true)]
        serials: Vec<String>,
        #[command(flatten)]
        key: grants::KeyArg,
    },
    /// Ask a device for a capture (a request signed with the request key).
    Request(requests::RequestArgs),
    /// Captures in the store.
    Captures {
        #[command(subcommand)]
        command: CapturesCommand,
    },
    /// Every change made through the portal, newest first (from `audit/` in the store).
    Audit {
        #[arg(long)]
        serial: Option<Serial>,
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// The web console (on loopback): log in, the devices, authorize and unauthorize.
    Serve(console::ServeArgs),
    /// The web console's accounts.
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Delete captures uploaded longer ago than the retention limit.
    Purge {
        #[arg(long, value_parser = parse_duration, default_value = "30d")]
        older_than: Duration,
        /// Show what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DevicesCommand {
    /// Serial, name, agent version, last seen, authorization state, period, expiry.
    List {
        #[command(flatten)]
        args: devices::ListArgs,
    },
}

#[derive(Debug, Subcommand)]
enum CapturesCommand {
    /// Id, serial, reason, start, duration, packets, bytes, complete or not, age.
    List {
        #[arg(long)]
        serial: Option<Serial>,
        #[arg(long)]
        json: bool,
    },
    /// Download, verify and decrypt a capture into plain .pcap files and sessions.json.
    Fetch {
        /// SERIAL/ID, or the id alone if only one device has a capture with it.
        capture: captures::CaptureRef,
        /// The device whose capture it is (instead of SERIAL/ID).
        #[arg(long)]
        serial: Option<Serial>,
        #[arg(long)]
        out: PathBuf,
        /// The research team's age identity (research.age from keygen).
        #[arg(long, env = "PCAP_RESEARCH_IDENTITY")]
        identity: PathBuf,
    },
    /// Remove every object of the captures (after analysis).
    Delete {
        /// SERIAL/ID each, or ids alone if only one device has a capture with each.
        #[arg(required = true)]
        captures: Vec<captures::CaptureRef>,
        /// The device whose captures they are (instead of SERIAL/ID).
        #[arg(long)]
        serial: Option<Serial>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pcap-portal: {}", text::clean(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let cli = match cli.command {
        Command::Keygen { out } => {
            keygen::run(&out)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Users { command } => return users::run(command),
        Command::Generate(args) => {
            return Ok(pcap_manual::run(Cli::command(), &args, false));
        }
        command => Cli { command, ..cli },
    };
    // The store client is async: every command that reads it runs on one runtime, here.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the I/O runtime: {e}"))?;
    runtime.block_on(run_with_store(cli))
}

async fn run_with_store(cli: Cli) -> anyhow::Result<ExitCode> {
    let bell = bell::Bell::from_args(&cli.doorbell)?;
    let store =
        store::Store::open(cli.store.as_deref(), &cli.s3, cli.concurrency.into())?.with_bell(bell);
    let now = jiff::Timestamp::now();
    let state_dir = cli.state_dir.clone().or_else(issued::default_dir);
    let issued = || issued::Issued::open(state_dir.as_deref(), store.url().to_string());
    let cache = || match cli.no_cache {
        true => cache::Cache::default(),
        false => cache::Cache::open(
            state_dir.as_deref(),
            &store.url().to_string(),
            cache::DEFAULT_BUDGET,
        ),
    };
    match cli.command {
        Command::Keygen { .. } | Command::Users { .. } | Command::Generate(_) => {
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            serial,
            limit,
            json,
        } => audit::list(&store, serial.as_ref(), limit, json, cache()).await,
        Command::Serve(args) => console::serve(store, &args, state_dir).await,
        Command::Devices {
            command: DevicesCommand::List { args },
        }
        | Command::List { args } => devices::list(&store, &args, cache(), now).await,
        Command::Authorize {
            device,
            period,
            allow_unseen,
            key,
        } => {
            grants::authorize(
                &store,
                &mut issued()?,
                &key,
                &device,
                period,
                allow_unseen,
                now,
            )
            .await
        }
        Command::Reauthorize {
            serial,
            period,
            key,
        } => grants::reauthorize(&store, &mut issued()?, &key, &serial, period, now).await,
        Command::Unauthorize { serials, key } => {
            grants::unauthorize(&store, &mut issued()?, &key, &serials, now).await
        }
        Command::Request(args) => requests::request(&store, &args, now).await,
        Command::Captures { command } => match command {
            CapturesCommand::List { serial, json } => {
                captures::list(&store, serial.as_ref(), json, cache(), now).await
            }
            CapturesCommand::Fetch {
                capture,
                serial,
                out,
                identity,
            } => captures::fetch(&store, &capture.on(serial.as_ref())?, &out, &identity).await,
            CapturesCommand::Delete { captures, serial } => {
                let refs = captures
                    .into_iter()
                    .map(|c| c.on(serial.as_ref()))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                captures::delete(&store, &refs).await
            }
        },
        Command::Purge {
            older_than,
            dry_run,
        } => captures::purge(&store, older_than, dry_run, now).await,
    }
}
