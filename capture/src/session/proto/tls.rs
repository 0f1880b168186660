//! TLS: the ClientHello's server name (SNI) and ALPN protocols, with `tls-parser`.

use tls_parser::{
    TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_client_hello_extensions,
    parse_tls_plaintext,
};

use super::{Found, clean, push_unique};

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
                        push_unique(&mut found.urls, format!("tls://{}", clean(name)));
                    }
                }
                TlsExtension::ALPN(protocols) => {
                    for p in protocols {
                        push_unique(&mut found.alpn, clean(p));
                    }
                }
                _ => {}
            }
        }
    }
    Some(found)
}
