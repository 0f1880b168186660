//! TLS: the ClientHello's server name (SNI, as `tls://<name>`) and ALPN protocols, with
//! `tls-parser`. Recognised by a handshake record from either side.

use pcap_protocol::session::App;
use tls_parser::{
    TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_client_hello_extensions,
    parse_tls_plaintext,
};

use super::values::Head;
use super::{Dir, Found, Inspect, List, Protocol, Transports, Wants, clean};

pub static TLS: Protocol = Protocol {
    app: App::Tls,
    transports: Transports::Tcp,
    ports: &[443, 8443],
    probe: Some(|p| looks_like_tls(p.data)),
    parser: Some(|_| Box::<Parser>::default()),
};

/// Bytes of the client's first record kept to read its ClientHello.
const HELLO_LIMIT: usize = 8 * 1024;

/// The client's first record, read once it is whole.
#[derive(Debug, Default)]
struct Parser {
    head: Head,
}

impl Inspect for Parser {
    fn feed(&mut self, dir: Dir, data: &[u8], found: &mut Found) -> Wants {
        if dir == Dir::ToClient {
            return Wants::More;
        }
        match client_hello(self.head.extend(data, HELLO_LIMIT)) {
            Some(hello) => {
                found.merge(hello);
                Wants::Done
            }
            None if self.head.full(HELLO_LIMIT) => Wants::Done,
            None => Wants::More,
        }
    }

    fn wants(&self, dir: Dir) -> bool {
        dir == Dir::ToServer
    }

    fn buffered(&self) -> usize {
        self.head.heap_bytes()
    }
}

/// Whether `data` starts like a TLS handshake record (type 22, version 3.x).
pub fn looks_like_tls(data: &[u8]) -> bool {
    matches!(data, [0x16, 0x03, 0x00..=0x04, ..])
}

/// The SNI and ALPN of a ClientHello, once the whole record is there; `Some` with nothing in
/// it for a complete record that is not a ClientHello.
pub fn client_hello(data: &[u8]) -> Option<Found> {
    let (_, record) = match parse_tls_plaintext(data) {
        Ok(r) => r,
        Err(tls_parser::nom::Err::Incomplete(_)) => return None,
        Err(_) => return Some(Found::default()),
    };
    let mut found = Found::default();
    for msg in &record.msg {
        let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello)) = msg else {
            continue;
        };
        let Some(ext) = hello.ext else {
            continue;
        };
        let Ok((_, extensions)) = parse_tls_client_hello_extensions(ext) else {
            continue;
        };
        for e in extensions {
            match e {
                TlsExtension::SNI(names) => {
                    if let Some((_, name)) = names.first() {
                        found.add(List::Urls, format!("tls://{}", clean(name)));
                    }
                }
                TlsExtension::ALPN(protocols) => {
                    for p in protocols {
                        found.add(List::Alpn, clean(p));
                    }
                }
                _ => {}
            }
        }
    }
    Some(found)
}
