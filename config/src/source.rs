//! From TOML text to the raw schema, with the line of every key and every schema error.
//!
//! serde stops at the first error. To report all of them, a failing key is recorded with its
//! path and line, removed from the table, and deserialization runs again, until it succeeds.

use std::collections::HashMap;

use toml::de::{DeTable, DeValue};

use crate::error::Problem;
use crate::raw::RawConfig;

/// Most schema errors reported from one file before giving up.
const MAX_SCHEMA_ERRORS: usize = 100;

/// Parsed config text: the table and the line of each key path.
#[derive(Debug)]
pub struct Document {
    table: toml::Table,
    lines: HashMap<String, usize>,
}

impl Document {
    /// Parses TOML text; a syntax error is the one problem.
    pub fn parse(text: &str) -> Result<Self, Vec<Problem>> {
        let spanned = DeTable::parse(text).map_err(|e| vec![syntax_problem(text, &e)])?;
        let mut lines = HashMap::new();
        index_table(text, "", spanned.get_ref(), &mut lines);
        let table =
            toml::from_str::<toml::Table>(text).map_err(|e| vec![syntax_problem(text, &e)])?;
        Ok(Document { table, lines })
    }

    /// The 1-based line of `key`, or of the nearest enclosing table that is in the file.
    pub fn line(&self, key: &str) -> Option<usize> {
        let mut key = key;
        loop {
            if let Some(line) = self.lines.get(key) {
                return Some(*line);
            }
            key = &key[..key.rfind(['.', '['])?];
        }
    }

    /// Deserializes into the raw schema, collecting every schema error.
    pub fn deserialize(&self) -> (RawConfig, Vec<Problem>) {
        let mut table = self.table.clone();
        let mut problems = Vec::new();
        while problems.len() < MAX_SCHEMA_ERRORS {
            match serde_path_to_error::deserialize::<_, RawConfig>(toml::Value::Table(
                table.clone(),
            )) {
                Ok(raw) => return (raw, problems),
                Err(err) => {
                    let key = err.path().to_string();
                    problems.push(Problem {
                        key: key.clone(),
                        message: explain(err.inner().message()),
                        line: self.line(&key),
                    });
                    if !remove(&mut table, &key) {
                        break;
                    }
                }
            }
        }
        (RawConfig::default(), problems)
    }
}

/// A schema error in the operator's words: a single value where a list belongs says how to
/// write the list.
fn explain(message: &str) -> String {
    match message
        .strip_prefix("invalid type: string ")
        .and_then(|rest| rest.strip_suffix(", expected a sequence"))
    {
        Some(value) => format!("{value} is a single value, not a list; write [{value}]"),
        None => message.to_owned(),
    }
}

fn syntax_problem(text: &str, err: &toml::de::Error) -> Problem {
    Problem {
        key: String::new(),
        message: format!("not valid TOML: {}", err.message().trim()),
        line: err.span().map(|s| line_of(text, s.start)),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn index_table(text: &str, prefix: &str, table: &DeTable<'_>, lines: &mut HashMap<String, usize>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        lines.insert(path.clone(), line_of(text, key.span().start));
        index_value(text, &path, value.get_ref(), lines);
    }
}

fn index_value(text: &str, path: &str, value: &DeValue<'_>, lines: &mut HashMap<String, usize>) {
    match value {
        DeValue::Table(t) => index_table(text, path, t, lines),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                lines.insert(item_path.clone(), line_of(text, item.span().start));
                index_value(text, &item_path, item.get_ref(), lines);
            }
        }
        _ => {}
    }
}

/// Removes the value at a serde_path_to_error path (`a.b`, `a.list[2]`: the whole list goes).
fn remove(table: &mut toml::Table, path: &str) -> bool {
    let path = path.split('[').next().unwrap_or(path);
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else {
        return false;
    };
    let mut current = table;
    for part in parts {
        match current.get_mut(part) {
            Some(toml::Value::Table(t)) => current = t,
            _ => return false,
        }
    }
    current.remove(last).is_some()
}
