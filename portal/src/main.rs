//! `pcap-portal`: the customer's administrator authorizes devices; the research team (later)
//! requests, fetches and deletes captures. Everything goes through the store.
//!
//! # Layout
//!
//! - `store`: the store (a `file://` directory with the key layout of DESIGN.md).
//! - `keygen`: the key pairs of both parties and the research team's age identity.
//! - `grants`: authorize, reauthorize, unauthorize, list.

#![forbid(unsafe_code)]

mod grants;
mod keygen;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pcap_protocol::Period;

#[derive(Debug, Parser)]
#[command(
    name = "pcap-portal",
    version,
    about = "Authorize devices and manage captures through the store"
)]
struct Cli {
    /// The store: file:///absolute/path (s3:// comes with the store client).
    #[arg(long, global = true, env = "PCAP_STORE")]
    store: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the authorization and request key pairs and the research team's age identity.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Authorize a device ("SERIAL" or "SERIAL NAME") for a period from now.
    Authorize {
        device: String,
        #[arg(long)]
        period: Period,
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
    /// Every device with a grant: serial, name, period, expiry, state.
    List {
        #[arg(long)]
        json: bool,
        /// Verify the grants with this public key (default: derived from PCAP_AUTHORIZATION_KEY).
        #[arg(long, env = "PCAP_AUTHORIZATION_PUB")]
        verify_key: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pcap-portal: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Keygen { out } = &cli.command {
        keygen::run(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let store = store::Store::open(cli.store.as_deref())?;
    let now = jiff::Timestamp::now();
    match cli.command {
        Command::Keygen { .. } => Ok(ExitCode::SUCCESS),
        Command::Authorize {
            device,
            period,
            key,
        } => grants::authorize(&store, &key, &device, period, now),
        Command::Reauthorize {
            serial,
            period,
            key,
        } => grants::reauthorize(&store, &key, &serial, period, now),
        Command::Unauthorize { serials, key } => grants::unauthorize(&store, &key, &serials, now),
        Command::List { json, verify_key } => {
            grants::list(&store, verify_key.as_deref(), json, now)
        }
    }
}
