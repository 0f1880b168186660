//! SMTP: the envelope (`MAIL FROM`, every `RCPT TO`), `AUTH PLAIN`/`LOGIN` users, and each
//! message's `Subject:` (RFC 2047 decoded) and attachment names, for every message of the
//! session (the sender and subject kept are the first message's). Recognised by the server's
//! greeting; every client line of the session is read as it comes ([`super::lines`]), a
//! message body's lines only as far as telling a MIME part header from its content.

use pcap_protocol::session::App;

use super::imf::Message;
use super::lines::{ClientLines, LineClient, greeting, starts_with_ci};
use super::sasl::Sasl;
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

#[derive(Debug, Clone, Default)]
enum Smtp {
    #[default]
    Envelope,
    /// A login under way.
    Auth,
    /// A message after `DATA`, up to its `.` line.
    Data(Message),
}

/// The client side of an SMTP session.
#[derive(Debug, Default, Clone)]
pub struct SmtpClient {
    state: Smtp,
    sasl: Sasl,
}

impl LineClient for SmtpClient {
    fn line(&mut self, line: &[u8], found: &mut Found) {
        match &mut self.state {
            Smtp::Envelope => self.envelope(line, found),
            Smtp::Auth => {
                self.sasl = self.sasl.line(line, found);
                if self.sasl == Sasl::Idle {
                    self.state = Smtp::Envelope;
                }
            }
            Smtp::Data(message) => {
                if line == b"." {
                    message.end(found);
                    self.state = Smtp::Envelope;
                } else {
                    // A dot-stuffed line starts with one more dot.
                    message.line(line.strip_prefix(b".").unwrap_or(line), found);
                }
            }
        }
    }
}

impl SmtpClient {
    fn envelope(&mut self, line: &[u8], found: &mut Found) {
        if starts_with_ci(line, "MAIL FROM:") {
            found.set_sender(address(&line[10..]));
        } else if starts_with_ci(line, "RCPT TO:") {
            found.add(List::EmailRecipients, address(&line[8..]));
        } else if starts_with_ci(line, "AUTH ") {
            let mut words = line[5..].trim_ascii().splitn(2, |&b| b == b' ');
            let mechanism = words.next().unwrap_or_default();
            self.sasl = Sasl::start(mechanism, words.next().unwrap_or_default(), found);
            if self.sasl != Sasl::Idle {
                self.state = Smtp::Auth;
            }
        } else if line.eq_ignore_ascii_case(b"DATA") {
            // The envelope gave the sender and recipients.
            self.state = Smtp::Data(Message::new(false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::proto::lines::ClientLines;
    use crate::session::proto::{Inspect, Wants};

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
    fn every_message_of_a_session_is_read_and_tls_ends_it() {
        let big = "QUJD".repeat(19);
        let mut session =
            b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nSubject: one\r\n\r\n".to_vec();
        for _ in 0..45_000 {
            session.extend_from_slice(big.as_bytes());
            session.extend_from_slice(b"\r\n");
        }
        session.extend_from_slice(
            b".\r\nMAIL FROM:<z@x>\r\nRCPT TO:<c@x>\r\nDATA\r\nSubject: two\r\n\r\n\
--b\r\nContent-Type: text/plain; name=\"log.txt\"\r\n\r\nok\r\n.\r\nSTARTTLS\r\n",
        );
        assert!(session.len() > 3 << 20, "past any fixed budget");
        let mut found = Found::default();
        let mut parser = ClientLines::<SmtpClient>::default();
        for piece in session.chunks(1460) {
            assert_eq!(parser.feed(Dir::ToServer, piece, &mut found), Wants::More);
        }
        assert_eq!(found.email_recipients, ["b@x", "c@x"]);
        assert_eq!(found.filenames, ["log.txt"]);
        assert_eq!(
            found.email_sender.as_deref(),
            Some("a@x"),
            "the first message's"
        );
        assert_eq!(found.email_subject.as_deref(), Some("one"));
        assert_eq!(
            parser.feed(Dir::ToServer, b"\x16\x03\x01\x02\x00\x01", &mut found),
            Wants::Done,
            "the ClientHello after STARTTLS"
        );
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
