//! FTP control connections: `USER` names and `RETR`/`STOR` file names, for every command of
//! the session. Recognised by the server's greeting; the client's lines are read as they come
//! ([`super::lines`]).

use pcap_protocol::session::App;

use super::lines::{ClientLines, LineClient, greeting, starts_with_ci};
use super::{Dir, Found, List, Probe, Protocol, Transports, clean};

pub static FTP: Protocol = Protocol {
    app: App::Ftp,
    transports: Transports::Tcp,
    ports: &[21],
    probe: Some(probe),
    parser: Some(|_| Box::<ClientLines<FtpClient>>::default()),
};

/// An FTP greeting that is not an SMTP one (the registry tries SMTP first).
fn probe(p: &Probe<'_>) -> bool {
    p.dir == Dir::ToClient && greeting(p.data).is_some_and(|g| g.contains("FTP"))
}

/// The client side of an FTP control connection.
#[derive(Debug, Default, Clone)]
pub struct FtpClient;

impl LineClient for FtpClient {
    fn line(&mut self, line: &[u8], found: &mut Found) {
        let arg = |n: usize| clean(line.get(n..).unwrap_or_default());
        if starts_with_ci(line, "USER ") {
            found.add(List::Users, arg(5));
        } else if starts_with_ci(line, "RETR ") || starts_with_ci(line, "STOR ") {
            found.add(List::Filenames, arg(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::proto::Inspect;

    #[test]
    fn ftp_commands_give_users_and_files() {
        let mut found = Found::default();
        let mut parser = ClientLines::<FtpClient>::default();
        parser.feed(
            Dir::ToServer,
            b"USER anna\r\nPASS x\r\nRETR fw/v2.bin\r\n",
            &mut found,
        );
        assert_eq!(found.users, ["anna"]);
        assert_eq!(found.filenames, ["fw/v2.bin"]);
    }
}
