//! FTP control connections: `USER` names and `RETR`/`STOR` file names, for every command of
//! the session; and the data connections they open, announced to the flow table from the
//! server's `227`/`229` answers to `PASV`/`EPSV` and the client's `PORT`/`EPRT` (RFC 959,
//! RFC 2428), so that each is `ftp-data` with the name of the file it carries. Recognised by
//! the server's greeting; the lines of either side are read as they come ([`super::lines`]).

use pcap_protocol::session::App;

use super::lines::{LinePeer, PeerLines, greeting, starts_with_ci};
use super::{Dir, Expected, Found, List, Probe, Protocol, Side, Transports, clean};

pub static FTP: Protocol = Protocol {
    app: App::Ftp,
    transports: Transports::Tcp,
    ports: &[21],
    probe: Some(probe),
    parser: Some(|_| Box::<PeerLines<Ftp>>::default()),
};

/// An FTP greeting that is not an SMTP one (the registry tries SMTP first).
fn probe(p: &Probe<'_>) -> bool {
    p.dir == Dir::ToClient && greeting(p.data).is_some_and(|g| g.contains("FTP"))
}

/// Both sides of an FTP control connection.
#[derive(Debug, Default, Clone)]
pub struct Ftp {
    /// The data connection last announced: the side it reaches and the port there.
    data: Option<(Side, u16)>,
}

impl LinePeer for Ftp {
    fn line(&mut self, dir: Dir, line: &[u8], found: &mut Found) {
        match dir {
            Dir::ToServer => self.command(line, found),
            Dir::ToClient => self.reply(line, found),
        }
    }
}

impl Ftp {
    fn command(&mut self, line: &[u8], found: &mut Found) {
        let arg = |n: usize| clean(line.get(n..).unwrap_or_default());
        if starts_with_ci(line, "USER ") {
            found.add(List::Users, arg(5));
        } else if starts_with_ci(line, "RETR ") || starts_with_ci(line, "STOR ") {
            let file = arg(5);
            if let Some((side, port)) = self.data.take() {
                found.expected.push(Expected {
                    app: App::FtpData,
                    side,
                    port,
                    file: Some(file.clone()),
                });
            }
            found.add(List::Filenames, file);
        } else if starts_with_ci(line, "PORT ") {
            if let Some(port) = port_of_numbers(&line[5..]) {
                self.expect(Side::Client, port, found);
            }
        } else if starts_with_ci(line, "EPRT ") {
            // `|1|10.0.0.1|6275|`: the last field is the port.
            let fields: Vec<&[u8]> = line[5..].trim_ascii().split(|&b| b == b'|').collect();
            if let Some(port) = fields.get(3).and_then(|p| number(p)) {
                self.expect(Side::Client, port, found);
            }
        }
    }

    fn reply(&mut self, line: &[u8], found: &mut Found) {
        if line.starts_with(b"227") {
            // `227 Entering Passive Mode (10,0,0,2,195,149).`
            let open = memchr::memchr(b'(', line).map_or(4.min(line.len()), |i| i + 1);
            let close = memchr::memrchr(b')', line).unwrap_or(line.len());
            if let Some(port) = line.get(open..close).and_then(port_of_numbers) {
                self.expect(Side::Server, port, found);
            }
        } else if line.starts_with(b"229") {
            // `229 Entering Extended Passive Mode (|||6446|)`.
            let open = memchr::memchr(b'(', line);
            let close = memchr::memrchr(b')', line);
            if let (Some(a), Some(b)) = (open, close)
                && a < b
            {
                let inner = &line[a + 1..b];
                let fields: Vec<&[u8]> = inner.split(|&c| c == b'|').collect();
                if let Some(port) = fields.get(3).and_then(|p| number(p)) {
                    self.expect(Side::Server, port, found);
                }
            }
        }
    }

    fn expect(&mut self, side: Side, port: u16, found: &mut Found) {
        self.data = Some((side, port));
        found.expected.push(Expected {
            app: App::FtpData,
            side,
            port,
            file: None,
        });
    }
}

/// The port of `h1,h2,h3,h4,p1,p2`.
fn port_of_numbers(text: &[u8]) -> Option<u16> {
    let parts: Vec<u16> = text
        .trim_ascii()
        .split(|&b| b == b',')
        .map(|p| number(p).filter(|&n| n <= 255))
        .collect::<Option<_>>()?;
    match parts[..] {
        [_, _, _, _, high, low] => Some(high << 8 | low).filter(|&p| p != 0),
        _ => None,
    }
}

fn number(text: &[u8]) -> Option<u16> {
    let text = text.trim_ascii();
    if text.is_empty() || text.len() > 5 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::proto::Inspect;

    #[test]
    fn ftp_commands_give_users_files_and_the_data_connections() {
        let mut found = Found::default();
        let mut parser = PeerLines::<Ftp>::default();
        parser.feed(
            Dir::ToServer,
            b"USER anna\r\nPASS x\r\nPASV\r\n",
            &mut found,
        );
        parser.feed(
            Dir::ToClient,
            b"227 Entering Passive Mode (10,0,0,2,195,149).\r\n",
            &mut found,
        );
        parser.feed(
            Dir::ToServer,
            b"RETR fw/v2.bin\r\nEPRT |1|10.0.0.1|6275|\r\n",
            &mut found,
        );
        parser.feed(
            Dir::ToClient,
            b"229 Entering Extended Passive Mode (|||6446|)\r\n",
            &mut found,
        );
        parser.feed(
            Dir::ToServer,
            b"PORT 10,0,0,1,4,1\r\nSTOR up.txt\r\n",
            &mut found,
        );
        assert_eq!(found.users, ["anna"]);
        assert_eq!(found.filenames, ["fw/v2.bin", "up.txt"]);
        let announced: Vec<(Side, u16, Option<&str>)> = found
            .expected
            .iter()
            .map(|e| (e.side, e.port, e.file.as_deref()))
            .collect();
        assert_eq!(
            announced,
            [
                (Side::Server, 50069, None),
                (Side::Server, 50069, Some("fw/v2.bin")),
                (Side::Client, 6275, None),
                (Side::Server, 6446, None),
                (Side::Client, 1025, None),
                (Side::Client, 1025, Some("up.txt")),
            ]
        );
        assert_eq!(port_of_numbers(b"1,2,3,4,256,1"), None);
        assert_eq!(port_of_numbers(b"1,2,3,4,5"), None);
        assert_eq!(port_of_numbers(b"1,2,3,4,0,0"), None);
    }
}
