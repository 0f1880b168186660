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
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

    /// The account `name` if `password` is its password, hashing in `memory` (grown to the
    /// hash's size if it is smaller, and kept by the caller for the next login: Argon2's
    /// memory is the whole cost of a login, and memory freed is not given back to the
    /// system). An unknown name costs the same hashing as a known one, so timing does not
    /// tell which names exist.
    pub fn verify(&self, name: &str, password: &str, memory: &mut Vec<Block>) -> Option<&User> {
        let user = self.find(name).map(|i| &self.file.users[i]);
        let stored = user.map_or(DUMMY_HASH, |u| u.password.as_str());
        // Hashed before the account is looked at: an unknown name costs the same.
        let matches = verify_password(stored, password.as_bytes(), memory);
        user.filter(|_| matches)
    }

    /// The account `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&User> {
        self.find(name).map(|i| &self.file.users[i])
    }
}

impl User {
    /// What a session of this account depends on: its role and its password hash. A session
    /// whose stamp differs from its account's (the password changed, the account was removed
    /// and added again) ends.
    pub fn stamp(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.password.as_bytes());
        format!(
            "{}:{}",
            self.role.as_str(),
            pcap_protocol::keys::hex(&digest.as_ref()[..16])
        )
    }
}

/// Largest Argon2 memory a stored hash may ask for (in 1 KiB blocks): 256 MiB.
const MAX_BLOCKS: usize = 256 * 1024;

/// Whether `password` hashes to the PHC string `stored`, hashing in `memory`.
fn verify_password(stored: &str, password: &[u8], memory: &mut Vec<Block>) -> bool {
    use subtle::ConstantTimeEq;
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) =
        (Params::try_from(&hash), Algorithm::try_from(hash.algorithm))
    else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        .is_ok()
        && bool::from(out.ct_eq(expected.as_bytes()))
}

/// The users file as a running console reads it: read again whenever it changes (its device,
/// inode, size or modification time), so an account removed or a password changed takes
/// effect at the next request, without a restart. A file that cannot be read as it is now
/// keeps the accounts last read, and says so once.
#[derive(Debug)]
pub struct WatchedUsers {
    path: PathBuf,
    current: std::sync::Mutex<(Option<FileId>, std::sync::Arc<Users>)>,
}

/// What identifies a version of a file.
type FileId = (u64, u64, u64, i64, i64);

fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
}

impl WatchedUsers {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let id = file_id(path);
        let users = Users::load(path)?;
        Ok(WatchedUsers {
            path: path.to_owned(),
            current: std::sync::Mutex::new((id, std::sync::Arc::new(users))),
        })
    }

    /// The accounts as the file holds them now.
    pub fn current(&self) -> std::sync::Arc<Users> {
        let id = file_id(&self.path);
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.0 != id {
            current.0 = id;
            match Users::load(&self.path) {
                Ok(users) => current.1 = std::sync::Arc::new(users),
                Err(e) => eprintln!("pcap-portal: {e:#}; the accounts read before stay in force"),
            }
        }
        current.1.clone()
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

/// Whether `name` can be an account's name: 1 to 64 letters, digits, '.', '_', '-' or '@'.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

fn check_name(name: &str) -> anyhow::Result<()> {
    if !is_valid_name(name) {
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
            println!("removed {name}; a running console ends its sessions at their next request");
        }
        UsersCommand::Check {
            name,
            file,
            password_stdin,
        } => {
            let users = Users::load(&file.path)?;
            let password = read_secret(password_stdin, false)?;
            return Ok(match users.verify(&name, &password, &mut Vec::new()) {
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
            println!(
                "password of {name} changed; a running console ends its sessions at their next request"
            );
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
        let mut memory = Vec::new();
        assert_eq!(
            users
                .verify("alice", "correct horse battery", &mut memory)
                .map(|u| u.role),
            Some(Role::Admin)
        );
        assert!(
            users
                .verify("alice", "wrong horse battery", &mut memory)
                .is_none()
        );
        assert!(
            users
                .verify("mallory", "correct horse battery", &mut memory)
                .is_none()
        );
        // The memory is kept for the next login: the default parameters' 19 MiB, used for an
        // unknown name as for a known one.
        assert_eq!(memory.len(), Params::DEFAULT_M_COST as usize);
        let mut unknown = Vec::new();
        assert!(
            users
                .verify("nobody", "correct horse battery", &mut unknown)
                .is_none()
        );
        assert_eq!(unknown.len(), Params::DEFAULT_M_COST as usize);

        let mut users = Users::load(&path).unwrap();
        let e = users
            .add("alice", Role::Viewer, "another long one")
            .unwrap_err();
        assert!(e.to_string().contains("already"), "{e}");
        users.passwd("alice", "a brand new password").unwrap();
        assert!(
            users
                .verify("alice", "a brand new password", &mut Vec::new())
                .is_some()
        );
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
