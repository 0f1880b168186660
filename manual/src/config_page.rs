//! `agent.toml(5)`, written from the commented example config: its opening comment is the
//! description, each table a subsection, each key (set, or shown commented out) an entry with
//! the comment above it. The page is generated from the file the package installs as
//! /etc/pcap-agent/agent.toml, so the two say the same.

use clap_mangen::roff::{Roff, bold, roman};

#[derive(Debug, Default)]
struct Table {
    name: String,
    /// Shown commented out: the table is optional and off unless written.
    optional: bool,
    about: Vec<String>,
    settings: Vec<Setting>,
}

#[derive(Debug)]
struct Setting {
    key: String,
    value: String,
    /// Commented out in the example: not set unless written.
    set: bool,
    about: Vec<String>,
}

/// The example's structure: the opening paragraphs and the tables.
#[derive(Debug, Default)]
struct Example {
    description: Vec<Vec<String>>,
    tables: Vec<Table>,
}

/// A `key = value` line (after any comment mark): the key, the value and a trailing comment.
fn setting(line: &str) -> Option<(String, String, Option<String>)> {
    let (key, rest) = line.split_once('=')?;
    let key = key.trim_end();
    if key.is_empty()
        || key.starts_with(' ')
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return None;
    }
    let rest = rest.trim();
    if rest.is_empty() {
        return None;
    }
    // The first '#' outside a string starts a comment.
    let mut quoted = false;
    let mut split = rest.len();
    for (i, c) in rest.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => {
                split = i;
                break;
            }
            _ => {}
        }
    }
    let comment = rest[split..].trim_start_matches('#').trim();
    Some((
        key.to_owned(),
        rest[..split].trim().to_owned(),
        (!comment.is_empty()).then(|| comment.to_owned()),
    ))
}

/// A `[table]` line.
fn table(line: &str) -> Option<&str> {
    let name = line.strip_prefix('[')?.strip_suffix(']')?;
    (!name.is_empty() && !name.contains(['[', ']', ' '])).then_some(name)
}

fn parse(text: &str) -> Example {
    let mut example = Example::default();
    let mut pending: Vec<String> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_end();
        if line.is_empty() {
            if !pending.is_empty() {
                let paragraph = std::mem::take(&mut pending);
                match example.tables.last_mut() {
                    Some(t) => t.about.extend(paragraph),
                    None => example.description.push(paragraph),
                }
            }
            continue;
        }
        // An empty comment line ends a paragraph, as a blank line does.
        if line == "#" {
            if !pending.is_empty() {
                let paragraph = std::mem::take(&mut pending);
                match example.tables.last_mut() {
                    Some(t) => t.about.extend(paragraph),
                    None => example.description.push(paragraph),
                }
            }
            continue;
        }
        let (commented, body) = match line.strip_prefix('#') {
            Some(rest) => (true, rest.strip_prefix(' ').unwrap_or(rest)),
            None => (false, line),
        };
        // A comment continuing the trailing comment of the setting above it.
        if commented && body.starts_with(' ') && body.trim_start().starts_with('#') {
            if let Some(s) = example
                .tables
                .last_mut()
                .and_then(|t| t.settings.last_mut())
            {
                s.about
                    .push(body.trim_start().trim_start_matches('#').trim().to_owned());
            }
            continue;
        }
        if let Some(name) = table(body) {
            example.tables.push(Table {
                name: name.to_owned(),
                optional: commented,
                about: std::mem::take(&mut pending),
                settings: Vec::new(),
            });
            continue;
        }
        if let Some((key, value, comment)) = setting(body)
            && let Some(t) = example.tables.last_mut()
        {
            let mut about = std::mem::take(&mut pending);
            about.extend(comment);
            t.settings.push(Setting {
                key,
                value,
                set: !commented,
                about,
            });
            continue;
        }
        if commented {
            pending.push(body.trim().to_owned());
        }
    }
    example
}

/// The roff source of `agent.toml(5)` from the example config's text.
pub fn config_page(example: &str) -> String {
    let parsed = parse(example);
    let mut page = Roff::new();
    page.control(
        "TH",
        [
            "AGENT.TOML",
            "5",
            "",
            &format!("pcap-agent {}", crate::VERSION),
        ],
    );
    page.control("SH", ["NAME"]);
    page.text([roman("agent.toml - configuration of the pcap-agent daemon")]);
    page.control("SH", ["SYNOPSIS"]);
    page.text([bold("/etc/pcap-agent/agent.toml")]);
    page.control("SH", ["DESCRIPTION"]);
    // The example's first line names the file, which the synopsis already does.
    for (i, paragraph) in parsed.description.iter().enumerate() {
        let lines = if i == 0 {
            &paragraph[1..]
        } else {
            &paragraph[..]
        };
        if !lines.is_empty() {
            page.control("PP", []);
            page.text([roman(lines.join(" "))]);
        }
    }
    page.control("PP", []);
    page.text([roman(
        "The file is TOML. Each setting below is shown with its default; a setting shown \
         as \"not set\" is off unless written, and the value given is an example. The same \
         text, as a file to start from, is installed as /etc/pcap-agent/agent.toml.",
    )]);
    page.control("SH", ["SETTINGS"]);
    for t in &parsed.tables {
        let heading = if t.optional {
            format!("[{}] (optional)", t.name)
        } else {
            format!("[{}]", t.name)
        };
        page.control("SS", [heading.as_str()]);
        if !t.about.is_empty() {
            page.text([roman(t.about.join(" "))]);
        }
        for s in &t.settings {
            page.control("TP", []);
            if s.set {
                page.text([bold(&s.key), roman(" = "), roman(&s.value)]);
            } else {
                page.text([
                    bold(&s.key),
                    roman(" (not set; for example "),
                    roman(&s.value),
                    roman(")"),
                ]);
            }
            if !s.about.is_empty() {
                page.text([roman(s.about.join(" "))]);
            }
        }
    }
    page.control("SH", ["FILES"]);
    page.text([
        bold("/etc/pcap-agent/agent.toml"),
        roman(" (mode 0640, group pcap-agent; keys and credentials beside it in /etc/pcap-agent)"),
    ]);
    page.control("SH", ["SEE ALSO"]);
    page.text([
        bold("pcap-agent"),
        roman("(1), "),
        bold("pcap-agent-check-config"),
        roman("(1), "),
        bold("pcapctl"),
        roman("(1), "),
        bold("systemctl"),
        roman("(1)"),
    ]);
    page.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table and key of the example, with the commented-out ones written in, as TOML.
    fn everything(example: &Example) -> String {
        let mut text = String::new();
        for t in &example.tables {
            text.push_str(&format!("[{}]\n", t.name));
            for s in &t.settings {
                text.push_str(&format!("{} = {}\n", s.key, s.value));
            }
        }
        text
    }

    #[test]
    fn every_key_the_page_documents_is_one_the_config_accepts() {
        let parsed = parse(crate::EXAMPLE_CONFIG);
        let all = everything(&parsed);
        // The raw schema refuses unknown keys: a documented key the agent does not know
        // fails here, naming it.
        if let Err(e) = toml::from_str::<pcap_config::raw::RawConfig>(&all) {
            panic!("the example documents a key the config does not accept: {e}\n{all}");
        }
        let keys: usize = parsed.tables.iter().map(|t| t.settings.len()).sum();
        assert!(parsed.tables.len() >= 14 && keys >= 70, "{parsed:#?}");
    }

    #[test]
    fn every_key_the_config_accepts_is_documented() {
        let parsed = parse(crate::EXAMPLE_CONFIG);
        let documented: Vec<String> = parsed
            .tables
            .iter()
            .flat_map(|t| {
                t.settings
                    .iter()
                    .map(move |s| format!("{}.{}", t.name, s.key))
            })
            .chain(parsed.tables.iter().map(|t| t.name.clone()))
            .collect();
        let keys = probe::keys::<pcap_config::raw::RawConfig>();
        assert!(keys.len() >= 80, "the probe found only {keys:?}");
        for key in keys {
            assert!(
                documented.contains(&key),
                "{key} is a setting of the config but not in config/agent.example.toml (and so not in agent.toml(5)); document it there"
            );
        }
    }

    #[test]
    fn the_page_has_each_table_and_key_with_its_description() {
        let page = config_page(crate::EXAMPLE_CONFIG);
        assert!(page.contains("\n.TH AGENT.TOML 5"), "{page}");
        for needle in [
            ".SS [upload.s3]\n",
            "[doorbell] (optional)",
            "\\fBrecipients\\fR = [\"age1examplerecipientreplacewiththeresearchteamsrecipient\"]",
            "\\fBmetrics_listen\\fR (not set; for example \"127.0.0.1:9465\")",
            "\\fBon_full\\fR = \"refuse\"",
            "How long uploaded segments stay on the host",
            "access_key_id",
        ] {
            assert!(page.contains(needle), "{needle:?} missing from\n{page}");
        }
    }

    #[test]
    fn settings_and_tables_are_told_from_prose() {
        assert_eq!(
            setting(r#"store = "file:///x" # where"#),
            Some((
                "store".into(),
                r#""file:///x""#.into(),
                Some("where".into())
            ))
        );
        assert_eq!(
            setting(r##"url = "a#b""##),
            Some(("url".into(), r##""a#b""##.into(), None))
        );
        assert_eq!(setting("A list is accepted: verify_key = [\"a\"]"), None);
        assert_eq!(setting("  access_key_id = \"...\""), None);
        assert_eq!(table("[capture.defaults]"), Some("capture.defaults"));
        assert_eq!(table("[not a table]"), None);
    }

    /// The dotted names of every table and key a `Deserialize` type reads, found by letting
    /// it deserialize from a probe that answers each struct with all of its fields.
    mod probe {
        use std::cell::RefCell;

        use serde::Deserialize;
        use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

        #[derive(Debug)]
        pub struct Error(String);
        impl std::fmt::Display for Error {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::error::Error for Error {}
        impl de::Error for Error {
            fn custom<T: std::fmt::Display>(msg: T) -> Self {
                Error(msg.to_string())
            }
        }

        pub fn keys<T: for<'de> Deserialize<'de>>() -> Vec<String> {
            let found = RefCell::new(Vec::new());
            T::deserialize(Probe {
                path: String::new(),
                found: &found,
            })
            .unwrap_or_else(|e| panic!("probe: {e}"));
            found.into_inner()
        }

        struct Probe<'a> {
            path: String,
            found: &'a RefCell<Vec<String>>,
        }

        impl<'de> de::Deserializer<'de> for Probe<'_> {
            type Error = Error;
            // A leaf: an empty string is what every leaf type of the schema reads.
            fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_str("")
            }
            fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_some(self)
            }
            fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_bool(false)
            }
            fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_u64(0)
            }
            fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_i64(0)
            }
            fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_u32(0)
            }
            fn deserialize_u16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_u16(0)
            }
            fn deserialize_u8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_u8(0)
            }
            fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_f64(0.0)
            }
            fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_seq(de::value::SeqDeserializer::<_, Error>::new(
                    std::iter::empty::<()>(),
                ))
            }
            fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_map(de::value::MapDeserializer::<_, Error>::new(
                    std::iter::empty::<((), ())>(),
                ))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _name: &'static str,
                fields: &'static [&'static str],
                v: V,
            ) -> Result<V::Value, Error> {
                if !self.path.is_empty() {
                    self.found.borrow_mut().push(self.path.clone());
                }
                v.visit_map(Fields {
                    prefix: self.path,
                    fields: fields.iter(),
                    current: None,
                    found: self.found,
                })
            }
            serde::forward_to_deserialize_any! {
                i8 i16 i32 i128 u128 f32 char str string bytes byte_buf unit unit_struct
                newtype_struct tuple tuple_struct enum identifier ignored_any
            }
        }

        struct Fields<'a> {
            prefix: String,
            fields: std::slice::Iter<'static, &'static str>,
            current: Option<&'static str>,
            found: &'a RefCell<Vec<String>>,
        }

        impl<'de> MapAccess<'de> for Fields<'_> {
            type Error = Error;
            fn next_key_seed<K: DeserializeSeed<'de>>(
                &mut self,
                seed: K,
            ) -> Result<Option<K::Value>, Error> {
                let Some(field) = self.fields.next() else {
                    return Ok(None);
                };
                self.current = Some(field);
                seed.deserialize((*field).into_deserializer()).map(Some)
            }
            fn next_value_seed<V: DeserializeSeed<'de>>(
                &mut self,
                seed: V,
            ) -> Result<V::Value, Error> {
                let field = self.current.take().unwrap_or_default();
                let path = if self.prefix.is_empty() {
                    field.to_owned()
                } else {
                    format!("{}.{field}", self.prefix)
                };
                // Tables record themselves (deserialize_struct); leaves are recorded here.
                let before = self.found.borrow().len();
                let value = seed.deserialize(Probe {
                    path: path.clone(),
                    found: self.found,
                })?;
                if self.found.borrow().len() == before {
                    self.found.borrow_mut().push(path);
                }
                Ok(value)
            }
        }
    }
}
