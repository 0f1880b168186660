//! What parsers find, and the text helpers they share: values from the wire made safe to keep
//! and bounded, file names from paths and header parameters.

/// Fields a parser found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub urls: Vec<String>,
    pub filenames: Vec<String>,
    pub users: Vec<String>,
    pub alpn: Vec<String>,
    pub email_sender: Option<String>,
    pub email_recipients: Vec<String>,
    pub email_subject: Option<String>,
}

impl Found {
    /// Adds what `other` found: list values not there yet, the first sender and subject.
    pub fn merge(&mut self, other: Found) {
        for (mine, theirs) in [
            (&mut self.urls, other.urls),
            (&mut self.filenames, other.filenames),
            (&mut self.users, other.users),
            (&mut self.alpn, other.alpn),
            (&mut self.email_recipients, other.email_recipients),
        ] {
            for v in theirs {
                push_unique(mine, v);
            }
        }
        if self.email_sender.is_none() {
            self.email_sender = other.email_sender;
        }
        if self.email_subject.is_none() {
            self.email_subject = other.email_subject;
        }
    }

    /// Nothing found.
    pub const EMPTY: Found = Found {
        urls: Vec::new(),
        filenames: Vec::new(),
        users: Vec::new(),
        alpn: Vec::new(),
        email_sender: None,
        email_recipients: Vec::new(),
        email_subject: None,
    };
}

/// The first bytes of one direction, kept while a parser still needs them whole (a header
/// block, a ClientHello), at most `limit` bytes.
#[derive(Debug, Default)]
pub struct Head(Vec<u8>);

impl Head {
    /// Appends what fits of `data` under `limit`; the bytes so far.
    pub fn extend(&mut self, data: &[u8], limit: usize) -> &[u8] {
        let room = limit.saturating_sub(self.0.len());
        self.0.extend_from_slice(&data[..data.len().min(room)]);
        &self.0
    }

    /// Whether `limit` bytes are there (no more will be kept).
    pub fn full(&self, limit: usize) -> bool {
        self.0.len() >= limit
    }

    /// The bytes so far.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Forgets the first `n` bytes (a message parsed).
    pub fn consume(&mut self, n: usize) {
        self.0.drain(..n.min(self.0.len()));
    }
}

/// Longest text value kept from a packet (URLs, names, subjects).
pub const MAX_VALUE_LEN: usize = 2048;
/// Most values kept in one list field.
pub const MAX_VALUES: usize = 64;

/// Text from the wire, made safe to keep: lossy UTF-8, control characters dropped, bounded.
pub fn clean(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_VALUE_LEN)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Adds `value` to `list` unless it is empty, already there, or the list is full.
pub fn push_unique(list: &mut Vec<String>, value: String) {
    if !value.is_empty() && list.len() < MAX_VALUES && !list.contains(&value) {
        list.push(value);
    }
}

/// The file name part of a URL path: `/dl/a%20b.bin?x=1` -> `a b.bin`.
pub fn filename_of_path(path: &str) -> Option<String> {
    let path = path.split(['?', '#']).next()?;
    let last = path.rsplit('/').next()?;
    let decoded = percent_decode(last);
    (!decoded.is_empty()).then_some(decoded)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(h), Some(l)) = ((*h as char).to_digit(16), (*l as char).to_digit(16))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    clean(&out)
}

/// The value of `filename=` (or `filename*=UTF-8''...`, or `name=`) in a header value such as
/// `Content-Disposition: attachment; filename="report.pdf"`.
pub fn filename_param(value: &str) -> Option<String> {
    let mut found = None;
    for part in value.split(';') {
        let Some((key, val)) = part.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let val = val.trim();
        let decoded = if key == "filename*" {
            // RFC 5987: charset'lang'percent-encoded
            val.splitn(3, '\'').nth(2).map(percent_decode)
        } else if key == "filename" || (key == "name" && found.is_none()) {
            Some(clean(val.trim_matches('"').as_bytes()))
        } else {
            None
        };
        if let Some(d) = decoded.filter(|d| !d.is_empty()) {
            // filename* wins over filename, which wins over name.
            if key == "filename*" {
                return Some(d);
            }
            if key == "filename" || found.is_none() {
                found = Some(d);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_come_from_paths_and_disposition_headers() {
        assert_eq!(
            filename_of_path("/dl/a%20b.bin?x=1").as_deref(),
            Some("a b.bin")
        );
        assert_eq!(filename_of_path("/"), None);
        assert_eq!(
            filename_param("attachment; filename=\"report.pdf\"").as_deref(),
            Some("report.pdf")
        );
        assert_eq!(
            filename_param("attachment; filename=\"x.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf")
                .as_deref(),
            Some("résumé.pdf")
        );
        assert_eq!(
            filename_param("application/pdf; name=\"a.pdf\"").as_deref(),
            Some("a.pdf")
        );
        assert_eq!(filename_param("inline"), None);
    }
}
