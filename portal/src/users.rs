//! The web console's accounts, in a users file the portal host keeps (`--users FILE` or
//! `PCAP_PORTAL_USERS`): `pcap-portal users add NAME --role owner|admin|viewer|research`,
//! `users list`, `users remove NAME`, `users passwd NAME`. Passwords are stored as Argon2id
//! hashes (PHC strings, the argon2 crate's default parameters); the file is written 0600 and
//! refused when others can read it.
//!
//! Roles (enforced by the console): `owner` and `admin` may authorize, reauthorize and
//! unauthorize; `viewer` may look; `research` may request, list and download captures.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest user name.
const MAX_NAME_LEN: usize = 64;
/// Largest users file read.
const MAX_FILE: usize = 4 << 20;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Viewer,
    Research,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
            Role::Research => "research",
        }
    }

    /// Whether the role may authorize, reauthorize and unauthorize devices.
    pub fn may_authorize(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

/// One account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// The Argon2id PHC string.
    password: String,
    pub created_at: Timestamp,
    #[serde(default)]
    pub password_changed_at: Option<Timestamp>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    users: Vec<User>,
}

/// The users file, loaded.
#[derive(Debug)]
pub struct Users {
    path: PathBuf,
    file: File,
}

impl Users {
    /// Loads `path`; a missing file is an empty one (until saved). A file others can read is
    /// refused.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let file = match std::fs::metadata(path) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    bail!(
                        "the users file {} is readable by others (mode {mode:o}); chmod 600 it",
                        path.display()
                    );
                }
                let bytes = pcap_spool::fsio::read_limited(path, MAX_FILE)
                    .with_context(|| format!("cannot read the users file {}", path.display()))?;
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("the users file {} is damaged", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the users file {}", path.display()));
            }
        };
        Ok(Users {
            path: path.to_owned(),
            file,
        })
    }

    fn save(&self) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.file)?;
        pcap_spool::fsio::write_atomic_mode(&self.path, &bytes, 0o600)
            .with_context(|| format!("cannot write the users file {}", self.path.display()))
    }

    pub fn list(&self) -> &[User] {
        &self.file.users
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.file.users.iter().position(|u| u.name == name)
    }

    pub fn add(&mut self, name: &str, role: Role, password: &str) -> anyhow::Result<()> {
        check_name(name)?;
        if self.find(name).is_some() {
            bail!("there is already a user {name:?}; use `users passwd` or `users remove`");
        }
        self.file.users.push(User {
            name: name.to_owned(),
            role,
            password: hash(password)?,
            created_at: Timestamp::now(),
            password_changed_at: None,
        });
        self.save()
    }

    pub fn remove(&mut self, name: &str) -> anyhow::Result<()> {
        let i = self
            .find(name)
            .with_context(|| format!("there is no user {name:?}"))?;
        self.file.users.remove(i);
        self.save()
    }

    pub fn passwd(&mut self, name: &str, password: &str) -> anyhow::Result<()> {
        let i = self
            .find(name)
            .with_context(|| format!("there is no user {name:?}"))?;
        self.file.users[i].password = hash(password)?;
        self.file.users[i].password_changed_at = Some(Timestamp::now());
        self.save()
    }

    /// The account `name` if `password` is its password. An unknown name costs the same
    /// hashing as a known one, so timing does not tell which names exist.
    pub fn verify(&self, name: &str, password: &str) -> Option<&User> {
        let user = self.find(name).map(|i| &self.file.users[i]);
        let stored = user.map_or(DUMMY_HASH, |u| u.password.as_str());
        let ok = PasswordHash::new(stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        user.filter(|_| ok)
    }
}

/// A hash of a password nobody has, verified against when the name is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$x3YLkIyV0XfdKFhrcdjbzMTKBu8LmKSwfiplzRhc0as";

fn hash(password: &str) -> anyhow::Result<String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        bail!("the password must have at least {MIN_PASSWORD_LEN} characters");
    }
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?
        .to_string())
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !ok {
        bail!(
            "user name {name:?} must be 1 to {MAX_NAME_LEN} letters, digits, '.', '_', '-' or '@'"
        );
    }
    Ok(())
}

/// The `users` commands.
#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Add an account.
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: Role,
        #[command(flatten)]
        file: UsersFile,
        /// Read the password from the first line of stdin (else it is asked on the terminal).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Name, role and creation time of every account (never a password or its hash).
    List {
        #[command(flatten)]
        file: UsersFile,
    },
    /// Remove an account.
    Remove {
        name: String,
        #[command(flatten)]
        file: UsersFile,
    },
    /// Check a password (exit 0 if it is the account's, 1 if not), as the console's login does.
    Check {
        name: String,
        #[command(flatten)]
        file: UsersFile,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set an account's password.
    Passwd {
        name: String,
        #[command(flatten)]
        file: UsersFile,
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Where the users file is.
#[derive(Debug, clap::Args)]
pub struct UsersFile {
    /// The users file (created 0600 by `users add`).
    #[arg(long = "users", env = "PCAP_PORTAL_USERS")]
    pub path: PathBuf,
}

pub fn run(command: UsersCommand) -> anyhow::Result<ExitCode> {
    match command {
        UsersCommand::Add {
            name,
            role,
            file,
            password_stdin,
        } => {
            let mut users = Users::load(&file.path)?;
            let password = read_secret(password_stdin, true)?;
            users.add(&name, role, &password)?;
            println!("added {name} ({})", role.as_str());
        }
        UsersCommand::List { file } => {
            let users = Users::load(&file.path)?;
            println!("{:<24} {:<9} CREATED", "NAME", "ROLE");
            for u in users.list() {
                println!("{:<24} {:<9} {}", u.name, u.role.as_str(), u.created_at);
            }
        }
        UsersCommand::Remove { name, file } => {
            Users::load(&file.path)?.remove(&name)?;
            println!("removed {name}");
        }
        UsersCommand::Check {
            name,
            file,
            password_stdin,
        } => {
            let users = Users::load(&file.path)?;
            let password = read_secret(password_stdin, false)?;
            return Ok(match users.verify(&name, &password) {
                Some(u) => {
                    println!("{name} ({}): password correct", u.role.as_str());
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!("pcap-portal: wrong user name or password");
                    ExitCode::FAILURE
                }
            });
        }
        UsersCommand::Passwd {
            name,
            file,
            password_stdin,
        } => {
            let mut users = Users::load(&file.path)?;
            let password = read_secret(password_stdin, true)?;
            users.passwd(&name, &password)?;
            println!("password of {name} changed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A password: the first line of stdin, or asked on the terminal (twice if `twice`).
fn read_secret(from_stdin: bool, twice: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_owned());
    }
    let first = rpassword::prompt_password("password: ")
        .context("no terminal to ask for the password on; pass --password-stdin")?;
    if !twice {
        return Ok(first);
    }
    let again = rpassword::prompt_password("again: ")
        .context("no terminal to ask for the password on; pass --password-stdin")?;
    if first != again {
        bail!("the two passwords differ");
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_added_verified_changed_and_removed_and_the_file_stays_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let mut users = Users::load(&path).unwrap();
        users
            .add("alice", Role::Admin, "correct horse battery")
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("$argon2id$") && !text.contains("correct horse"));

        let users = Users::load(&path).unwrap();
        assert_eq!(
            users
                .verify("alice", "correct horse battery")
                .map(|u| u.role),
            Some(Role::Admin)
        );
        assert!(users.verify("alice", "wrong horse battery").is_none());
        assert!(users.verify("mallory", "correct horse battery").is_none());

        let mut users = Users::load(&path).unwrap();
        let e = users
            .add("alice", Role::Viewer, "another long one")
            .unwrap_err();
        assert!(e.to_string().contains("already"), "{e}");
        users.passwd("alice", "a brand new password").unwrap();
        assert!(users.verify("alice", "a brand new password").is_some());
        users.remove("alice").unwrap();
        assert!(Users::load(&path).unwrap().list().is_empty());
    }

    #[test]
    fn short_passwords_bad_names_and_open_files_are_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        let mut users = Users::load(&path).unwrap();
        let e = users.add("bob", Role::Viewer, "short").unwrap_err();
        assert!(e.to_string().contains("at least 12"), "{e}");
        let e = users
            .add("bob smith", Role::Viewer, "long enough pass")
            .unwrap_err();
        assert!(e.to_string().contains("letters, digits"), "{e}");
        users.add("bob", Role::Viewer, "long enough pass").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Users::load(&path).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn the_dummy_hash_is_a_valid_argon2id_hash() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
