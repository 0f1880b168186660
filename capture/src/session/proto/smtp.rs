//! SMTP: the envelope (`MAIL FROM`, every `RCPT TO`), `AUTH PLAIN`/`LOGIN` users, and each
//! message's `Subject:` (RFC 2047 decoded) and attachment names, for every message of the
//! session. Recognised by the server's greeting; the client's lines are scanned as they come,
//! up to
//! [`super::lines::LINE_BUDGET`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pcap_protocol::session::App;

use super::lines::{ClientLines, LineClient, greeting, starts_with_ci};
use super::values::{filename_param, name_param};
use super::{Dir, Found, List, Probe, Protocol, Transports, clean};

pub static SMTP: Protocol = Protocol {
    app: App::Smtp,
    transports: Transports::Tcp,
    ports: &[25, 465, 587],
    probe: Some(probe),
    parser: Some(|_| Box::<ClientLines<SmtpClient>>::default()),
};

fn probe(p: &Probe<'_>) -> bool {
    p.dir == Dir::ToClient
        && greeting(p.data)
            .is_some_and(|g| g.contains("SMTP") || g.contains("MAIL") || g.contains("POSTFIX"))
}

/// The client's side of a session, line by line.
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

impl LineClient for SmtpClient {
    fn line(&mut self, line: &[u8], found: &mut Found) {
        match self.state {
            Smtp::Envelope => self.envelope(line, found),
            Smtp::AuthPlain => {
                plain_user(line, found);
                self.state = Smtp::Envelope;
            }
            Smtp::AuthLoginUser => {
                if let Ok(user) = STANDARD.decode(String::from_utf8_lossy(line).trim()) {
                    found.add(List::Users, clean(&user));
                }
                self.state = Smtp::Envelope;
            }
            Smtp::Headers | Smtp::Body => self.data(line, found),
        }
    }
}

impl SmtpClient {
    fn envelope(&mut self, line: &[u8], found: &mut Found) {
        if starts_with_ci(line, "MAIL FROM:") {
            found.set_sender(address(&line[10..]));
        } else if starts_with_ci(line, "RCPT TO:") {
            found.add(List::EmailRecipients, address(&line[8..]));
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
                found.add(List::Users, clean(&user));
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
        let file = match name.as_str() {
            "subject" => {
                found.set_subject(decode_words(&value));
                return;
            }
            "content-type" => name_param(&value),
            _ => filename_param(&value),
        };
        if let Some(file) = file {
            found.add(List::Filenames, decode_words(&file));
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
    found.add(List::Users, clean(user));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::proto::Inspect;
    use crate::session::proto::lines::ClientLines;

    fn run(client: &[u8]) -> Found {
        let mut found = Found::default();
        let mut parser = ClientLines::<SmtpClient>::default();
        // Fed in awkward pieces, as TCP delivers them.
        for piece in client.chunks(7) {
            parser.feed(Dir::ToServer, piece, &mut found);
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
    fn auth_login_gives_the_user_and_greetings_tell_smtp_from_ftp() {
        let f = run(b"AUTH LOGIN\r\nYm9i\r\nUGFzcw==\r\n");
        assert_eq!(f.users, ["bob"]);
        let greets = |data: &[u8]| {
            crate::session::proto::detect(&Probe {
                data,
                dir: Dir::ToClient,
                transport: crate::session::packet::TCP,
                ports: (25, 40000),
            })
            .map(|p| p.app)
        };
        assert_eq!(
            greets(b"220 mail.example ESMTP Postfix\r\n"),
            Some(App::Smtp)
        );
        assert_eq!(greets(b"220 (vsFTPd 3.0.3)\r\n"), Some(App::Ftp));
    }
}
