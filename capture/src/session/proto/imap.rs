//! IMAP (RFC 9051, TCP 143): the users of `LOGIN` and `AUTHENTICATE` (through
//! [`super::sasl`]), as tshark's `imap.request.username`. Recognised by the server's `* OK`
//! or `* PREAUTH` greeting; every client line is read as it comes, up to `STARTTLS`'s TLS.

use pcap_protocol::session::App;

use super::lines::{ClientLines, LineClient};
use super::sasl::Sasl;
use super::{Dir, Found, List, Probe, Protocol, Transports, clean};

pub static IMAP: Protocol = Protocol {
    app: App::Imap,
    transports: Transports::Tcp,
    ports: &[143],
    probe: Some(probe),
    parser: Some(|_| Box::<ClientLines<ImapClient>>::default()),
};

/// A server greeting: `* OK` or `* PREAUTH`, and a line end.
fn probe(p: &Probe<'_>) -> bool {
    p.dir == Dir::ToClient
        && (p.data.starts_with(b"* OK") || p.data.starts_with(b"* PREAUTH"))
        && memchr::memchr(b'\n', p.data).is_some()
}

/// The client side of an IMAP session.
#[derive(Debug, Default, Clone)]
pub struct ImapClient {
    sasl: Sasl,
}

impl LineClient for ImapClient {
    fn line(&mut self, line: &[u8], found: &mut Found) {
        if self.sasl != Sasl::Idle {
            self.sasl = self.sasl.line(line, found);
            return;
        }
        // `tag COMMAND arguments`.
        let mut words = line.splitn(3, |&b| b == b' ');
        let (_tag, command, args) = (words.next(), words.next(), words.next());
        let (Some(command), Some(args)) = (command, args) else {
            return;
        };
        if command.eq_ignore_ascii_case(b"LOGIN") {
            if let Some(user) = astring(args) {
                found.add(List::Users, user);
            }
        } else if command.eq_ignore_ascii_case(b"AUTHENTICATE") {
            let mut parts = args.splitn(2, |&b| b == b' ');
            let mechanism = parts.next().unwrap_or_default();
            self.sasl = Sasl::start(mechanism, parts.next().unwrap_or_default(), found);
        }
    }
}

/// The first argument of `args` as an atom or a quoted string (RFC 9051 `astring`); a
/// literal (`{n}`, its bytes on the next lines) is not read.
fn astring(args: &[u8]) -> Option<String> {
    let value = if let Some(quoted) = args.strip_prefix(b"\"") {
        let mut out = Vec::new();
        let mut escaped = false;
        for &b in quoted {
            match (escaped, b) {
                (false, b'\\') => escaped = true,
                (false, b'"') => break,
                _ => {
                    out.push(b);
                    escaped = false;
                }
            }
        }
        out
    } else {
        let atom = args.split(|&b| b == b' ').next()?;
        if atom.starts_with(b"{") {
            return None;
        }
        atom.to_vec()
    };
    (!value.is_empty()).then(|| clean(&value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::proto::Inspect;

    #[test]
    fn login_and_authenticate_give_users() {
        let mut found = Found::default();
        let mut parser = ClientLines::<ImapClient>::default();
        parser.feed(
            Dir::ToServer,
            b"a1 CAPABILITY\r\na2 LOGIN anna secret\r\na3 login \"b \\\"q\\\" rt\" \"pw\"\r\n\
a4 AUTHENTICATE PLAIN AGNhcmwAcHc=\r\na5 AUTHENTICATE LOGIN\r\nZGFu\r\ncHc=\r\n\
a6 LOGIN {4}\r\n",
            &mut found,
        );
        assert_eq!(found.users, ["anna", "b \"q\" rt", "carl", "dan"]);
        let probe_of = |data: &[u8]| {
            probe(&Probe {
                data,
                dir: Dir::ToClient,
                transport: crate::session::packet::TCP,
                ports: (143, 40000),
            })
        };
        assert!(probe_of(b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n"));
        assert!(!probe_of(b"* OK"));
    }
}
