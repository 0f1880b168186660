//! What parsers find, and the text helpers they share: values from the wire made safe to keep
//! and bounded, file names from paths and header parameters.

/// How much of what it found a session keeps: values per list and bytes per value
/// (`[sessions] max_values` and `max_value_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub values: usize,
    pub value_bytes: usize,
}

impl Bounds {
    pub const DEFAULT: Bounds = Bounds {
        values: 64,
        value_bytes: 4096,
    };
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds::DEFAULT
    }
}

impl From<&pcap_config::Sessions> for Bounds {
    fn from(s: &pcap_config::Sessions) -> Self {
        Bounds {
            values: s.max_values,
            value_bytes: s.max_value_bytes,
        }
    }
}

/// The lists of values a session finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Urls,
    Filenames,
    Users,
    Alpn,
    EmailRecipients,
}

/// Values left out of each list because it was full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub urls: u32,
    pub filenames: u32,
    pub users: u32,
    pub alpn: u32,
    pub email_recipients: u32,
}

/// Fields a parser found, each list bounded ([`Bounds`]) with a count of what did not fit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub urls: Vec<String>,
    pub filenames: Vec<String>,
    pub users: Vec<String>,
    pub alpn: Vec<String>,
    pub email_sender: Option<String>,
    pub email_recipients: Vec<String>,
    pub email_subject: Option<String>,
    pub dropped: Dropped,
    /// Connections announced since the flow table last took them (not part of the record).
    pub expected: Vec<super::Expected>,
    bounds: Bounds,
    /// A hash of each list value kept (with its list), so that a value is compared only with
    /// those it may equal: a full list of long values costs a new value one scan of integers,
    /// not a byte compare with each.
    seen: Vec<u64>,
    /// Heap bytes the values hold (their strings, their hashes and the lists' room).
    heap: usize,
}

/// The hash of a list value.
fn fingerprint(list: List, value: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x5e55_1015).hash_one((list as u8, value))
}

impl Found {
    /// Nothing found yet, keeping at most `bounds`.
    pub const fn new(bounds: Bounds) -> Self {
        Found {
            urls: Vec::new(),
            filenames: Vec::new(),
            users: Vec::new(),
            alpn: Vec::new(),
            email_sender: None,
            email_recipients: Vec::new(),
            email_subject: None,
            dropped: Dropped {
                urls: 0,
                filenames: 0,
                users: 0,
                alpn: 0,
                email_recipients: 0,
            },
            expected: Vec::new(),
            bounds,
            seen: Vec::new(),
            heap: 0,
        }
    }

    /// Nothing found.
    pub const EMPTY: Found = Found::new(Bounds::DEFAULT);

    fn list_mut(&mut self, list: List) -> (&mut Vec<String>, &mut u32) {
        match list {
            List::Urls => (&mut self.urls, &mut self.dropped.urls),
            List::Filenames => (&mut self.filenames, &mut self.dropped.filenames),
            List::Users => (&mut self.users, &mut self.dropped.users),
            List::Alpn => (&mut self.alpn, &mut self.dropped.alpn),
            List::EmailRecipients => (
                &mut self.email_recipients,
                &mut self.dropped.email_recipients,
            ),
        }
    }

    /// Adds `value` to `list` (cut to the bounds' bytes) unless it is empty or already there;
    /// past the bounds' count it is dropped, and counted.
    pub fn add(&mut self, list: List, value: String) {
        let value = self.bounded(value);
        if value.is_empty() {
            return;
        }
        let hash = fingerprint(list, &value);
        let maybe_there = self.seen.contains(&hash);
        let limit = self.bounds.values;
        let (values, dropped) = self.list_mut(list);
        if maybe_there && values.contains(&value) {
            return;
        }
        if values.len() >= limit {
            *dropped = dropped.saturating_add(1);
            return;
        }
        let room = values.capacity() * std::mem::size_of::<String>()
            + self.seen.capacity() * std::mem::size_of::<u64>();
        let bytes = value.capacity();
        let (values, _) = self.list_mut(list);
        values.push(value);
        let lists = values.capacity() * std::mem::size_of::<String>();
        self.seen.push(hash);
        let grown = lists + self.seen.capacity() * std::mem::size_of::<u64>() - room;
        self.heap += bytes + grown;
    }

    /// Heap bytes the values hold.
    pub fn heap_bytes(&self) -> usize {
        self.heap
    }

    /// Whether `list` holds as many values as the bounds allow.
    pub fn is_full(&mut self, list: List) -> bool {
        let limit = self.bounds.values;
        self.list_mut(list).0.len() >= limit
    }

    /// The sender, unless one was found before.
    pub fn set_sender(&mut self, value: String) {
        if self.email_sender.is_none() {
            self.email_sender = Some(self.bounded(value)).filter(|v| !v.is_empty());
            self.heap += self.email_sender.as_ref().map_or(0, String::capacity);
        }
    }

    /// The subject, unless one was found before.
    pub fn set_subject(&mut self, value: String) {
        if self.email_subject.is_none() {
            let value = self.bounded(value);
            self.heap += value.capacity();
            self.email_subject = Some(value);
        }
    }

    /// `value` cut to the bounds' bytes, at a character boundary.
    fn bounded(&self, mut value: String) -> String {
        if value.len() > self.bounds.value_bytes {
            let mut end = self.bounds.value_bytes;
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            value.truncate(end);
            value.shrink_to_fit();
        }
        value
    }

    /// Adds what `other` found: list values not there yet (with what `other` dropped), the
    /// first sender and subject.
    pub fn merge(&mut self, other: Found) {
        let Found {
            urls,
            filenames,
            users,
            alpn,
            email_sender,
            email_recipients,
            email_subject,
            dropped,
            expected: _,
            bounds: _,
            seen: _,
            heap: _,
        } = other;
        for (list, values, lost) in [
            (List::Urls, urls, dropped.urls),
            (List::Filenames, filenames, dropped.filenames),
            (List::Users, users, dropped.users),
            (List::Alpn, alpn, dropped.alpn),
            (
                List::EmailRecipients,
                email_recipients,
                dropped.email_recipients,
            ),
        ] {
            for v in values {
                self.add(list, v);
            }
            let (_, mine) = self.list_mut(list);
            *mine = mine.saturating_add(lost);
        }
        if let Some(v) = email_sender {
            self.set_sender(v);
        }
        if let Some(v) = email_subject {
            self.set_subject(v);
        }
    }
}

/// The first bytes of one direction, kept while a parser still needs them whole (a header
/// block, a ClientHello), at most `limit` bytes.
#[derive(Debug, Default)]
pub struct Head(Vec<u8>);

impl Head {
    /// Appends what fits of `data` under `limit`; the bytes so far.
    pub fn extend(&mut self, data: &[u8], limit: usize) -> &[u8] {
        let take = data.len().min(limit.saturating_sub(self.0.len()));
        let need = self.0.len() + take;
        if need > self.0.capacity() {
            // Doubling, but never past the limit: a cut head holds at most `limit` bytes.
            let room = need.max(self.0.capacity() * 2).min(limit);
            self.0.reserve_exact(room - self.0.len());
        }
        self.0.extend_from_slice(&data[..take]);
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

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.0.capacity()
    }

    /// Forgets the first `n` bytes (a message parsed).
    pub fn consume(&mut self, n: usize) {
        self.0.drain(..n.min(self.0.len()));
    }
}

/// Longest text value read from a packet before the bounds cut it (URLs, names, subjects).
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// Text from the wire, made safe to keep: lossy UTF-8, control characters dropped, bounded.
pub fn clean(bytes: &[u8]) -> String {
    let mut out = String::new();
    clean_into(bytes, &mut out);
    out
}

/// [`clean`], appended to `out`.
pub fn clean_into(bytes: &[u8], out: &mut String) {
    let bytes = &bytes[..bytes.len().min(MAX_VALUE_LEN)];
    // Printable ASCII, what names on the wire mostly are, needs no more than a trim (of
    // spaces, its only white space); a short one is copied by character, without the UTF-8
    // check's setup.
    if bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
        let end = bytes
            .iter()
            .rposition(|&b| b != b' ')
            .map_or(start, |i| i + 1);
        let text = &bytes[start..end];
        if text.len() <= 32 {
            out.extend(text.iter().map(|&b| char::from(b)));
        } else if let Ok(text) = std::str::from_utf8(text) {
            out.push_str(text);
        }
        return;
    }
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    out.push_str(text.trim());
}

/// UTF-16LE text from the wire (SMB, NTLMSSP), made safe to keep as [`clean`] does; a NUL
/// ends it.
pub fn clean_utf16le(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes[..bytes.len().min(MAX_VALUE_LEN)]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    clean(String::from_utf16_lossy(&units).as_bytes())
}

/// The file name part of a URL path: `/dl/a%20b.bin?x=1` -> `a b.bin`.
pub fn filename_of_path(path: &str) -> Option<String> {
    let path = path.split(['?', '#']).next()?;
    let last = path.rsplit('/').next()?;
    let decoded = percent_decode(last);
    (!decoded.is_empty()).then_some(decoded)
}

fn percent_decode(s: &str) -> String {
    clean(&percent_decode_bytes(s))
}

fn percent_decode_bytes(s: &str) -> Vec<u8> {
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
    out
}

/// The parameters of a header value such as `attachment; filename="a;b.pdf"; size=3`, read
/// the lenient way: keys lower-cased, values as tokens or quoted strings (backslash escapes
/// undone, a missing closing quote taken to the end), spaces around `=` allowed.
pub fn params(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = value;
    // The disposition or media type before the first `;` is no parameter.
    match rest.find(';') {
        Some(i) if !rest[..i].contains('=') => rest = &rest[i + 1..],
        _ => {}
    }
    while !rest.trim().is_empty() && out.len() < 32 {
        let Some(eq) = rest.find(['=', ';']) else {
            break;
        };
        if rest.as_bytes()[eq] == b';' {
            rest = &rest[eq + 1..];
            continue;
        }
        let key = rest[..eq].trim().to_ascii_lowercase();
        let after = rest[eq + 1..].trim_start();
        let (val, next) = if let Some(quoted) = after.strip_prefix('"') {
            let mut val = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            val.push(e);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => val.push(c),
                }
            }
            let tail = &quoted[end.min(quoted.len())..];
            (val, tail.find(';').map_or("", |i| &tail[i + 1..]))
        } else {
            match after.find(';') {
                Some(i) => (after[..i].trim().to_owned(), &after[i + 1..]),
                None => (after.trim().to_owned(), ""),
            }
        };
        if !key.is_empty() {
            out.push((key, val));
        }
        rest = next;
    }
    out
}

/// An RFC 5987 extended value, `charset'language'percent-encoded`, decoded (UTF-8 and
/// Latin-1 charsets; anything else is taken as UTF-8).
fn extended_value(value: &str) -> Option<String> {
    let mut parts = value.splitn(3, '\'');
    let charset = parts.next()?.to_ascii_lowercase();
    let _language = parts.next()?;
    let encoded = parts.next()?;
    let bytes = percent_decode_bytes(encoded);
    let text = if charset == "iso-8859-1" || charset == "latin1" {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some(clean(text.as_bytes()))
}

/// The file name a `Content-Disposition` value gives: `filename*` (RFC 6266: it wins), else
/// `filename`.
pub fn filename_param(value: &str) -> Option<String> {
    let params = params(value);
    let extended = params
        .iter()
        .filter(|(k, _)| k == "filename*")
        .find_map(|(_, v)| extended_value(v))
        .filter(|v| !v.is_empty());
    extended.or_else(|| {
        params
            .iter()
            .find(|(k, _)| k == "filename")
            .map(|(_, v)| clean(v.as_bytes()))
            .filter(|v| !v.is_empty())
    })
}

/// The `name` parameter of a `Content-Type` value (`application/pdf; name="a.pdf"`), which
/// mail clients use for an attachment's file name.
pub fn name_param(value: &str) -> Option<String> {
    params(value)
        .into_iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| clean(v.as_bytes()))
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_keep_their_bounds_and_count_what_did_not_fit() {
        let mut f = Found::new(Bounds {
            values: 2,
            value_bytes: 5,
        });
        for v in ["aaa", "bbb", "aaa", "ccc", "ddd"] {
            f.add(List::Urls, v.to_owned());
        }
        assert_eq!(f.urls, ["aaa", "bbb"]);
        assert_eq!(
            f.dropped.urls, 2,
            "ccc and ddd; a repeated value is not dropped"
        );
        // A value longer than the bytes allowed is cut, at a character boundary.
        f.add(List::Users, "ééé".to_owned());
        assert_eq!(f.users, ["éé"]);
        f.set_subject("first subject".to_owned());
        f.set_subject("second".to_owned());
        assert_eq!(f.email_subject.as_deref(), Some("first"));
        let mut other = Found::new(Bounds::DEFAULT);
        other.add(List::Urls, "eee".to_owned());
        other.dropped.filenames = 3;
        f.merge(other);
        assert_eq!((f.dropped.urls, f.dropped.filenames), (3, 3));
    }

    #[test]
    fn a_value_is_a_repeat_only_in_its_own_list_and_the_heap_counts_what_is_kept() {
        let mut f = Found::new(Bounds::DEFAULT);
        let long = "x".repeat(4000);
        for i in 0..64 {
            f.add(List::Urls, format!("{long}{i}"));
        }
        let heap = f.heap_bytes();
        assert!(heap >= 64 * 4000, "{heap}");
        // Repeats of kept values, in any order, change nothing.
        for i in (0..64).rev() {
            f.add(List::Urls, format!("{long}{i}"));
        }
        assert_eq!(
            (f.urls.len(), f.dropped.urls, f.heap_bytes()),
            (64, 0, heap)
        );
        // The same text in another list is that list's value.
        f.add(List::Filenames, format!("{long}0"));
        assert_eq!(f.filenames.len(), 1);
        assert!(f.heap_bytes() > heap);
        // A new value for a full list is dropped, each time it comes.
        f.add(List::Urls, "new".to_owned());
        f.add(List::Urls, "new".to_owned());
        assert_eq!(f.dropped.urls, 2);
    }

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
            name_param("application/pdf; name=\"a.pdf\"").as_deref(),
            Some("a.pdf")
        );
        assert_eq!(filename_param("application/pdf; name=\"a.pdf\""), None);
        assert_eq!(filename_param("inline"), None);
        // The shapes servers send, and those meant to evade naive parsers.
        for (value, want) in [
            ("attachment; filename=fw.bin", "fw.bin"),
            ("attachment;filename = \"a;b.pdf\"", "a;b.pdf"),
            ("ATTACHMENT; FILENAME=\"x.zip\"", "x.zip"),
            ("attachment; filename=\"quo\\\"te.txt\"", "quo\"te.txt"),
            ("attachment; filename=\"open.exe", "open.exe"),
            ("attachment; filename*=ISO-8859-1''caf%E9.txt", "café.txt"),
            (
                "form-data; name=\"file\"; filename=\"upload.png\"",
                "upload.png",
            ),
        ] {
            assert_eq!(filename_param(value).as_deref(), Some(want), "{value}");
        }
        assert_eq!(filename_param("form-data; name=\"comment\""), None);
    }
}
