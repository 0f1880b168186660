//! What the binaries say about themselves: the version line with the commit, man pages for
//! every command and subcommand, `agent.toml(5)` written from the example config (so the page
//! cannot drift from the file the package installs), and shell completions. Each binary has a
//! hidden `generate` subcommand that writes them; the package build calls it.

use std::io;
use std::path::PathBuf;

use clap::{Args, Command, ValueEnum};
use clap_complete::Shell;

mod config_page;

pub use config_page::config_page;

/// `--version`: the version and the commit the binary was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("PCAP_COMMIT"),
    ")"
);

/// The example config, from which `agent.toml(5)` is written.
pub const EXAMPLE_CONFIG: &str = include_str!("../../config/agent.example.toml");

/// What `generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Man pages: one per command and subcommand (section 1), and for pcap-agent agent.toml(5).
    Man,
    /// Completions for bash, zsh and fish, each in a subdirectory named after the shell.
    Completions,
}

/// The hidden `generate` subcommand of each binary.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[arg(value_enum)]
    pub kind: Kind,
    /// Directory to write into (created if missing).
    pub dir: PathBuf,
}

/// Writes what `args` asks for, for `cmd`; with `config_page`, also `agent.toml.5`.
pub fn generate(cmd: Command, args: &GenerateArgs, config_page: bool) -> io::Result<()> {
    std::fs::create_dir_all(&args.dir)?;
    match args.kind {
        Kind::Man => {
            clap_mangen::generate_to(cmd, &args.dir)?;
            if config_page {
                std::fs::write(
                    args.dir.join("agent.toml.5"),
                    self::config_page(EXAMPLE_CONFIG),
                )?;
            }
        }
        Kind::Completions => {
            let mut cmd = cmd;
            let name = cmd.get_name().to_owned();
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                let dir = args.dir.join(shell.to_string());
                std::fs::create_dir_all(&dir)?;
                clap_complete::generate_to(shell, &mut cmd, &name, &dir)?;
            }
        }
    }
    Ok(())
}

/// Runs `generate` for a binary's `main`: an error names the directory and the cause.
pub fn run(cmd: Command, args: &GenerateArgs, config_page: bool) -> std::process::ExitCode {
    let name = cmd.get_name().to_owned();
    match generate(cmd, args, config_page) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: cannot write into {}: {e}", args.dir.display());
            std::process::ExitCode::FAILURE
        }
    }
}
