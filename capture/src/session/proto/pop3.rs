//! POP3 (RFC 1939, TCP 110): the users of `USER`, `APOP` and `AUTH` (RFC 5034, through
//! [`super::sasl`]), as tshark's `pop.request.parameter` of those commands, and the sender,
//! recipients, subject and attachment names of every message the client fetches (`RETR`,
//! `TOP`: [`super::imf`]). Recognised by the server's `+OK` greeting; every line of either
//! side is read as it comes, up to `STLS`'s TLS.

use pcap_protocol::session::App;

use super::imf::Message;
use super::lines::{LinePeer, PeerLines, starts_with_ci};
use super::sasl::Sasl;
use super::{Dir, Found, List, Probe, Protocol, Transports, clean};

pub static POP3: Protocol = Protocol {
    app: App::Pop3,
    transports: Transports::Tcp,
    ports: &[110],
    probe: Some(probe),
    parser: Some(|_| Box::<PeerLines<Pop3>>::default()),
};

/// A server greeting: `+OK` and a line end.
fn probe(p: &Probe<'_>) -> bool {
    p.dir == Dir::ToClient
        && p.data.starts_with(b"+OK")
        && matches!(p.data.get(3), Some(b' ' | b'\r' | b'\n'))
        && memchr::memchr(b'\n', p.data).is_some()
}

/// Both sides of a POP3 session.
#[derive(Debug, Default, Clone)]
pub struct Pop3 {
    sasl: Sasl,
    /// `RETR` and `TOP` commands not answered yet.
    fetches: u32,
    /// The message of the answer being read, up to its `.` line.
    message: Option<Message>,
}

impl LinePeer for Pop3 {
    fn line(&mut self, dir: Dir, line: &[u8], found: &mut Found) {
        match dir {
            Dir::ToServer => self.command(line, found),
            Dir::ToClient => self.answer(line, found),
        }
    }
}

impl Pop3 {
    fn command(&mut self, line: &[u8], found: &mut Found) {
        if self.sasl != Sasl::Idle {
            self.sasl = self.sasl.line(line, found);
            return;
        }
        let word = |n: usize| {
            line.split(|&b| b == b' ')
                .filter(|w| !w.is_empty())
                .nth(n)
                .unwrap_or_default()
        };
        if starts_with_ci(line, "USER ") || starts_with_ci(line, "APOP ") {
            found.add(List::Users, clean(word(1)));
        } else if starts_with_ci(line, "AUTH ") {
            self.sasl = Sasl::start(word(1), word(2), found);
        } else if starts_with_ci(line, "RETR ") || starts_with_ci(line, "TOP ") {
            self.fetches = self.fetches.saturating_add(1);
        }
    }

    fn answer(&mut self, line: &[u8], found: &mut Found) {
        if let Some(message) = &mut self.message {
            if line == b"." {
                message.end(found);
                self.message = None;
            } else {
                message.line(line.strip_prefix(b".").unwrap_or(line), found);
            }
            return;
        }
        if self.fetches > 0 && (line.starts_with(b"+OK") || line.starts_with(b"-ERR")) {
            self.fetches -= 1;
            if line.starts_with(b"+OK") {
                self.message = Some(Message::new(true));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::proto::Inspect;

    #[test]
    fn user_apop_and_auth_give_users() {
        let mut found = Found::default();
        let mut parser = PeerLines::<Pop3>::default();
        parser.feed(
            Dir::ToServer,
            b"CAPA\r\nUSER anna\r\nPASS pw\r\nAPOP bert c4c9334bac560ecc979e58001b3e22fb\r\n\
AUTH PLAIN\r\nAGNhcmwAcHc=\r\nAUTH LOGIN ZGFu\r\ncHc=\r\nRETR 1\r\n",
            &mut found,
        );
        assert_eq!(found.users, ["anna", "bert", "carl", "dan"]);
        // The answer to RETR is a message; a dot-stuffed line and the end mark are not.
        for piece in [
            &b"+OK 120 octets\r\nFrom: Bob <bob@x.test>\r\nTo: anna@x.test\r\nSub"[..],
            b"ject: hi\r\n\r\n..From: nobody@x.test\r\n.\r\n",
        ] {
            parser.feed(Dir::ToClient, piece, &mut found);
        }
        assert_eq!(found.email_sender.as_deref(), Some("bob@x.test"));
        assert_eq!(found.email_recipients, ["anna@x.test"]);
        assert_eq!(found.email_subject.as_deref(), Some("hi"));
        let probe_of = |data: &[u8]| {
            probe(&Probe {
                data,
                dir: Dir::ToClient,
                transport: crate::session::packet::TCP,
                ports: (110, 40000),
            })
        };
        assert!(probe_of(b"+OK Dovecot ready.\r\n"));
        assert!(!probe_of(b"+OKAY\r\n"));
        assert!(!probe_of(b"+OK"));
    }
}
