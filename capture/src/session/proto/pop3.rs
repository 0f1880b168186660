//! POP3 (RFC 1939, TCP 110): the users of `USER`, `APOP` and `AUTH` (RFC 5034, through
//! [`super::sasl`]), as tshark's `pop.request.parameter` of those commands. Recognised by the
//! server's `+OK` greeting; every client line is read as it comes, up to `STLS`'s TLS.

use pcap_protocol::session::App;

use super::lines::{ClientLines, LineClient, starts_with_ci};
use super::sasl::Sasl;
use super::{Dir, Found, List, Probe, Protocol, Transports, clean};

pub static POP3: Protocol = Protocol {
    app: App::Pop3,
    transports: Transports::Tcp,
    ports: &[110],
    probe: Some(probe),
    parser: Some(|_| Box::<ClientLines<Pop3Client>>::default()),
};

/// A server greeting: `+OK` and a line end.
fn probe(p: &Probe<'_>) -> bool {
    p.dir == Dir::ToClient
        && p.data.starts_with(b"+OK")
        && matches!(p.data.get(3), Some(b' ' | b'\r' | b'\n'))
        && memchr::memchr(b'\n', p.data).is_some()
}

/// The client side of a POP3 session.
#[derive(Debug, Default, Clone)]
pub struct Pop3Client {
    sasl: Sasl,
}

impl LineClient for Pop3Client {
    fn line(&mut self, line: &[u8], found: &mut Found) {
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
        let mut parser = ClientLines::<Pop3Client>::default();
        parser.feed(
            Dir::ToServer,
            b"CAPA\r\nUSER anna\r\nPASS pw\r\nAPOP bert c4c9334bac560ecc979e58001b3e22fb\r\n\
AUTH PLAIN\r\nAGNhcmwAcHc=\r\nAUTH LOGIN ZGFu\r\ncHc=\r\nRETR 1\r\n",
            &mut found,
        );
        assert_eq!(found.users, ["anna", "bert", "carl", "dan"]);
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
