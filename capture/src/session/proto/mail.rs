//! Line-oriented protocols, scanned as they stream: SMTP (envelope, AUTH, the message's
//! `Subject:` and attachment names) and FTP (USER, RETR, STOR). Lines are handed over one at a
//! time, so nothing but the current line is buffered.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use pcap_protocol::session::App;

use super::{Found, clean, filename_param, push_unique};

/// Longest line kept; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 4096;

/// Splits a byte stream into lines, bounded.
#[derive(Debug, Default, Clone)]
pub struct Lines {
    partial: Vec<u8>,
    overflow: bool,
}

impl Lines {
    /// Feeds `data`; calls `each` with every complete line (without the line end).
    pub fn feed(&mut self, data: &[u8], mut each: impl FnMut(&[u8])) {
        for piece in data.split_inclusive(|&b| b == b'\n') {
            let complete = piece.last() == Some(&b'\n');
            if !self.overflow {
                let room = MAX_LINE - self.partial.len();
                self.partial
                    .extend_from_slice(&piece[..piece.len().min(room)]);
                self.overflow = piece.len() > room;
            }
            if complete {
                let line = trim_eol(&self.partial);
                each(line);
                self.partial.clear();
                self.overflow = false;
            }
        }
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn starts_with_ci(line: &[u8], prefix: &str) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// The address inside `<...>` (or the first word) after a `MAIL FROM:`/`RCPT TO:` verb.
fn address(rest: &[u8]) -> String {
    let text = String::from_utf8_lossy(rest);
    let text = text.trim();
    let inner = match (text.find('<'), text.find('>')) {
        (Some(a), Some(b)) if a < b => &text[a + 1..b],
        _ => text.split_whitespace().next().unwrap_or(""),
    };
    clean(inner.as_bytes())
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Smtp {
    #[default]
    Envelope,
    AuthPlain,
    AuthLoginUser,
    Headers,
    Body,
}

/// The client side of an SMTP session.
#[derive(Debug, Default, Clone)]
pub struct SmtpClient {
    state: Smtp,
    /// A header being unfolded: (name, value so far).
    header: Option<(String, String)>,
}

impl SmtpClient {
    pub fn line(&mut self, line: &[u8], found: &mut Found) {
        match self.state {
            Smtp::Envelope => self.envelope(line, found),
            Smtp::AuthPlain => {
                plain_user(line, found);
                self.state = Smtp::Envelope;
            }
            Smtp::AuthLoginUser => {
                if let Ok(user) = STANDARD.decode(String::from_utf8_lossy(line).trim()) {
                    push_unique(&mut found.users, clean(&user));
                }
                self.state = Smtp::Envelope;
            }
            Smtp::Headers | Smtp::Body => self.data(line, found),
        }
    }

    fn envelope(&mut self, line: &[u8], found: &mut Found) {
        if starts_with_ci(line, "MAIL FROM:") {
            found.email_sender = Some(address(&line[10..]));
        } else if starts_with_ci(line, "RCPT TO:") {
            push_unique(&mut found.email_recipients, address(&line[8..]));
        } else if starts_with_ci(line, "AUTH PLAIN") {
            let rest = line[10..].trim_ascii();
            if rest.is_empty() {
                self.state = Smtp::AuthPlain;
            } else {
                plain_user(rest, found);
            }
        } else if starts_with_ci(line, "AUTH LOGIN") {
            let rest = line[10..].trim_ascii();
            if rest.is_empty() {
                self.state = Smtp::AuthLoginUser;
            } else if let Ok(user) = STANDARD.decode(rest) {
                push_unique(&mut found.users, clean(&user));
            }
        } else if line.eq_ignore_ascii_case(b"DATA") {
            self.state = Smtp::Headers;
            self.header = None;
        }
    }

    fn data(&mut self, line: &[u8], found: &mut Found) {
        if line == b"." {
            self.finish_header(found);
            self.state = Smtp::Envelope;
            return;
        }
        // Folded continuation of the header being read.
        if matches!(line.first(), Some(b' ' | b'\t'))
            && let Some((_, value)) = &mut self.header
        {
            if value.len() < super::MAX_VALUE_LEN {
                value.push(' ');
                value.push_str(String::from_utf8_lossy(line).trim());
            }
            return;
        }
        self.finish_header(found);
        if line.is_empty() {
            // The end of the message's headers; MIME part headers follow in the body.
            self.state = Smtp::Body;
            return;
        }
        let text = String::from_utf8_lossy(line);
        if let Some((name, value)) = text.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            let wanted = match self.state {
                Smtp::Headers => matches!(
                    name.as_str(),
                    "subject" | "content-disposition" | "content-type"
                ),
                _ => matches!(name.as_str(), "content-disposition" | "content-type"),
            };
            if wanted {
                self.header = Some((name, value.trim().to_owned()));
            }
        }
    }

    fn finish_header(&mut self, found: &mut Found) {
        let Some((name, value)) = self.header.take() else {
            return;
        };
        if name == "subject" {
            found.email_subject = Some(decode_words(&value));
        } else if let Some(file) = filename_param(&value) {
            push_unique(&mut found.filenames, decode_words(&file));
        }
    }
}

/// `AUTH PLAIN` credentials: base64 of `authzid \0 user \0 password`.
fn plain_user(encoded: &[u8], found: &mut Found) {
    let Ok(decoded) = STANDARD.decode(String::from_utf8_lossy(encoded).trim()) else {
        return;
    };
    let mut parts = decoded.split(|&b| b == 0);
    let authzid = parts.next().unwrap_or_default();
    let user = parts.next().filter(|u| !u.is_empty()).unwrap_or(authzid);
    push_unique(&mut found.users, clean(user));
}

/// Decodes RFC 2047 encoded words (`=?UTF-8?B?...?=`); text without them stays as it is.
pub fn decode_words(value: &str) -> String {
    if !value.contains("=?") {
        return clean(value.as_bytes());
    }
    match rfc2047_decoder::decode(value.as_bytes()) {
        Ok(decoded) => clean(decoded.as_bytes()),
        Err(_) => clean(value.as_bytes()),
    }
}

/// The client side of an FTP control connection.
#[derive(Debug, Default, Clone)]
pub struct FtpClient;

impl FtpClient {
    pub fn line(&mut self, line: &[u8], found: &mut Found) {
        let arg = |n: usize| clean(line.get(n..).unwrap_or_default());
        if starts_with_ci(line, "USER ") {
            push_unique(&mut found.users, arg(5));
        } else if starts_with_ci(line, "RETR ") || starts_with_ci(line, "STOR ") {
            push_unique(&mut found.filenames, arg(5));
        }
    }
}

/// What a server's greeting says it is.
pub fn greeting(line: &[u8]) -> Option<App> {
    if !line.starts_with(b"220") {
        return None;
    }
    let text = String::from_utf8_lossy(line).to_ascii_uppercase();
    if text.contains("SMTP") || text.contains("MAIL") || text.contains("POSTFIX") {
        Some(App::Smtp)
    } else if text.contains("FTP") {
        Some(App::Ftp)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(client: &[u8]) -> Found {
        let mut found = Found::default();
        let mut smtp = SmtpClient::default();
        let mut lines = Lines::default();
        // Fed in awkward pieces, as TCP delivers them.
        for piece in client.chunks(7) {
            lines.feed(piece, |l| smtp.line(l, &mut found));
        }
        found
    }

    #[test]
    fn an_smtp_session_gives_envelope_subject_user_and_attachments() {
        let f = run(b"EHLO x\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<a@lab.example> SIZE=100\r\n\
RCPT TO:<b@lab.example>\r\nRCPT TO:<c@lab.example>\r\nDATA\r\nFrom: a@lab.example\r\n\
Subject: =?UTF-8?B?w4lxdWlwZW1lbnQ=?=\r\n =?UTF-8?Q?_report?=\r\nMIME-Version: 1.0\r\n\r\n\
--b\r\nContent-Disposition: attachment;\r\n filename=\"scan.pdf\"\r\n\r\nJVBERi0=\r\n--b--\r\n.\r\nQUIT\r\n");
        assert_eq!(f.email_sender.as_deref(), Some("a@lab.example"));
        assert_eq!(f.email_recipients, ["b@lab.example", "c@lab.example"]);
        assert_eq!(f.email_subject.as_deref(), Some("Équipement report"));
        assert_eq!(f.users, ["alice"]);
        assert_eq!(f.filenames, ["scan.pdf"]);
    }

    #[test]
    fn auth_login_and_ftp_commands_give_users_and_files() {
        let f = run(b"AUTH LOGIN\r\nYm9i\r\nUGFzcw==\r\n");
        assert_eq!(f.users, ["bob"]);
        let mut found = Found::default();
        let mut ftp = FtpClient;
        Lines::default().feed(b"USER anna\r\nPASS x\r\nRETR fw/v2.bin\r\n", |l| {
            ftp.line(l, &mut found)
        });
        assert_eq!(found.users, ["anna"]);
        assert_eq!(found.filenames, ["fw/v2.bin"]);
        assert_eq!(greeting(b"220 mail.example ESMTP Postfix"), Some(App::Smtp));
        assert_eq!(greeting(b"220 (vsFTPd 3.0.3)"), Some(App::Ftp));
    }

    #[test]
    fn overlong_lines_are_bounded() {
        let mut lines = Lines::default();
        let mut got = Vec::new();
        lines.feed(&vec![b'a'; 3 * MAX_LINE], |l| got.push(l.len()));
        lines.feed(b"\r\nok\r\n", |l| got.push(l.len()));
        assert_eq!(got, [MAX_LINE, 2]);
    }
}
