//! The agent's configuration: what an operator writes in `/etc/pcap-agent/agent.toml`.
//!
//! # Layout
//!
//! - [`source`]: reads the TOML text, remembers the line of every key, and deserializes it into
//!   the raw schema, collecting every schema error (unknown key, wrong type) instead of stopping
//!   at the first.
//! - [`raw`]: the serde schema (`deny_unknown_fields`), every field optional.
//! - [`validate`]: raw -> [`Config`]: defaults, units, required fields, contradictions; each
//!   problem with its key path and line.
//! - [`model`]: the typed, checked [`Config`] the rest of the agent uses.
//! - [`units`]: durations (`"60s"`) and sizes (`"100MiB"`).
//! - [`error`]: [`ConfigError`] and [`Problem`].
//!
//! # Where the data goes
//!
//! `pcap-agent run` and `check-config` call [`load`]; the daemon keeps the result in a watch
//! channel and replaces it on reload only when the new file is valid.

#![forbid(unsafe_code)]

pub mod error;
pub mod model;
pub mod raw;
pub mod source;
pub mod units;
pub mod validate;

use std::path::Path;

pub use error::{ConfigError, Problem};
pub use model::*;

/// Default location of the agent's config file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/pcap-agent/agent.toml";

/// Reads, parses and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|problems| ConfigError::Invalid {
        path: path.to_owned(),
        problems,
    })
}

/// The `[sharing]` and `[sessions]` tables of a config file, checked on their own: what
/// `pcap-agent analyze --sharing-from` needs, on a machine that may not have the agent's keys.
pub fn load_sharing(path: &Path) -> Result<(Sharing, Sessions), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |problems| ConfigError::Invalid {
        path: path.to_owned(),
        problems,
    };
    let doc = source::Document::parse(&text).map_err(invalid)?;
    let (config, mut problems) = check(&doc);
    problems.retain(|p| {
        p.key.starts_with("sharing") || p.key.starts_with("sessions") || p.key.is_empty()
    });
    if problems.is_empty() {
        Ok((config.sharing, config.sessions))
    } else {
        Err(invalid(problems))
    }
}

/// Parses and validates config text; every problem found is in the error.
pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
    let doc = source::Document::parse(text)?;
    let (config, mut problems) = check(&doc);
    if problems.is_empty() {
        Ok(config)
    } else {
        problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        Err(problems)
    }
}

/// Deserializes and validates `doc`. A key whose value has the wrong type is reported once:
/// validation, which then sees no value there, does not add "is required" or "is empty".
fn check(doc: &source::Document) -> (Config, Vec<Problem>) {
    let (raw, schema) = doc.deserialize();
    let mut checked = Vec::new();
    let config = validate::validate(raw, doc, &mut checked);
    checked.retain(|p| !schema.iter().any(|s| s.key == p.key));
    let mut problems = schema;
    problems.extend(checked);
    (config, problems)
}
