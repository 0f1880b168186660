//! IMAP (RFC 9051, TCP 143): the users of `LOGIN` and `AUTHENTICATE` (through
//! [`super::sasl`]), as tshark's `imap.request.username`, and the sender, recipients, subject
//! and attachment names ([`super::imf`]) of every message the client appends (`APPEND`'s
//! literal) or fetches whole or by its header (a `FETCH` answer's `BODY[]`, `RFC822`,
//! `BODY[HEADER]` literal). Recognised by the server's `* OK` or `* PREAUTH` greeting; every
//! line of either side is read as it comes, up to `STARTTLS`'s TLS.

use pcap_protocol::session::App;

use super::imf::Message;
use super::lines::{LinePeer, PeerLines};
use super::sasl::Sasl;
use super::{Dir, Found, List, Probe, Protocol, Transports, clean};

pub static IMAP: Protocol = Protocol {
    app: App::Imap,
    transports: Transports::Tcp,
    ports: &[143],
    probe: Some(probe),
    parser: Some(|_| Box::<PeerLines<Imap>>::default()),
};

/// A server greeting: `* OK` or `* PREAUTH`, and a line end.
fn probe(p: &Probe<'_>) -> bool {
    p.dir == Dir::ToClient
        && (p.data.starts_with(b"* OK") || p.data.starts_with(b"* PREAUTH"))
        && memchr::memchr(b'\n', p.data).is_some()
}

/// Both sides of an IMAP session.
#[derive(Debug, Default, Clone)]
pub struct Imap {
    sasl: Sasl,
    /// A message literal being read each way: its bytes still to come, and the message.
    literal: [Option<(u64, Message)>; 2],
}

impl LinePeer for Imap {
    fn line(&mut self, dir: Dir, line: &[u8], found: &mut Found) {
        let slot = &mut self.literal[dir.index()];
        if let Some((left, message)) = slot {
            message.line(line, found);
            // The line and its line end (CRLF, as IMAP's lines are).
            let used = line.len() as u64 + 2;
            if used >= *left {
                message.end(found);
                *slot = None;
            } else {
                *left -= used;
            }
            return;
        }
        match dir {
            Dir::ToServer => self.command(line, found),
            Dir::ToClient => {
                // `* 3 FETCH (UID 9 BODY[] {2048}`: a message follows.
                let fetch = memchr::memmem::find(line, b" FETCH (").is_some();
                let whole = [
                    &b"BODY[]"[..],
                    b"RFC822",
                    b"BODY[HEADER",
                    b"BODY.PEEK[]",
                    b"BINARY[]",
                ]
                .iter()
                .any(|s| memchr::memmem::find(line, s).is_some());
                if fetch
                    && whole
                    && let Some(len) = literal_len(line)
                {
                    self.literal[dir.index()] = Some((len, Message::new(true)));
                }
            }
        }
    }
}

impl Imap {
    fn command(&mut self, line: &[u8], found: &mut Found) {
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
        } else if command.eq_ignore_ascii_case(b"APPEND")
            && let Some(len) = literal_len(line)
        {
            self.literal[Dir::ToServer.index()] = Some((len, Message::new(true)));
        }
    }
}

/// The length of the literal a line ends with (`{123}`, or `{123+}` without waiting).
fn literal_len(line: &[u8]) -> Option<u64> {
    let open = memchr::memrchr(b'{', line)?;
    let inner = line[open + 1..].strip_suffix(b"}")?;
    let digits = inner.strip_suffix(b"+").unwrap_or(inner);
    if digits.is_empty() || digits.len() > 12 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits)
        .ok()?
        .parse()
        .ok()
        .filter(|&n| n > 0)
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
        let mut parser = PeerLines::<Imap>::default();
        parser.feed(
            Dir::ToServer,
            b"a1 CAPABILITY\r\na2 LOGIN anna secret\r\na3 login \"b \\\"q\\\" rt\" \"pw\"\r\n\
a4 AUTHENTICATE PLAIN AGNhcmwAcHc=\r\na5 AUTHENTICATE LOGIN\r\nZGFu\r\ncHc=\r\n\
a6 LOGIN {4}\r\n",
            &mut found,
        );
        assert_eq!(found.users, ["anna", "b \"q\" rt", "carl", "dan"]);
        // An appended message, and a fetched one: a literal each, read by its length.
        let message = "From: Bob <bob@x.test>\r\nTo: anna@x.test\r\nSubject: hi\r\n\r\nbody\r\n";
        let append = format!(
            "a7 APPEND INBOX (\\Seen) {{{}}}\r\n{message}",
            message.len()
        );
        parser.feed(Dir::ToServer, append.as_bytes(), &mut found);
        parser.feed(Dir::ToServer, b"a8 LOGIN after literal\r\n", &mut found);
        assert_eq!(found.users.last().map(String::as_str), Some("after"));
        assert_eq!(found.email_sender.as_deref(), Some("bob@x.test"));
        let fetched = "From: c@x.test\r\nCc: dan@x.test\r\n\r\n--b\r\nContent-Type: text/plain; name=a.txt\r\n\r\nx\r\n";
        let answer = format!(
            "* 1 FETCH (UID 4 BODY[] {{{}}}\r\n{fetched})\r\na9 OK done\r\n",
            fetched.len()
        );
        for piece in answer.as_bytes().chunks(9) {
            parser.feed(Dir::ToClient, piece, &mut found);
        }
        assert_eq!(found.email_recipients, ["anna@x.test", "dan@x.test"]);
        assert_eq!(found.filenames, ["a.txt"]);
        assert_eq!(literal_len(b"x {99999999999999999999}"), None);
        assert_eq!(literal_len(b"x {12+}"), Some(12));
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
