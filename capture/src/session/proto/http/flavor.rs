//! Which protocol a text message belongs to, by the version its start line names: HTTP,
//! RTSP or SIP, whatever the method.

/// Which protocol a text request line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Http,
    Rtsp,
    Sip,
}

/// Recognizes the first line of a request or response by its version, whatever the method
/// (UPnP's `NOTIFY` and `SUBSCRIBE`, WebDAV's `PROPFIND`) or a target holding spaces:
/// `GET /x HTTP/1.1`, `RTSP/1.0 200 OK`, `INVITE sip:bob@example.com SIP/2.0`. A few empty
/// lines may come first.
pub fn flavor(data: &[u8]) -> Option<Flavor> {
    let skipped = data
        .iter()
        .take(8)
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    let data = &data[skipped..];
    // Every method and version starts with a letter; most traffic is rejected here.
    if !data.first().is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let line_end = data
        .iter()
        .take(2048)
        .position(|&b| b == b'\n')
        .unwrap_or(data.len().min(2048));
    let line = std::str::from_utf8(&data[..line_end]).ok()?.trim_end();
    let (first, rest) = line.split_once(' ')?;
    if let Some(flavor) = version_of(first) {
        // A response: its status code follows.
        let code = rest.trim_start().get(..3)?;
        return code.bytes().all(|b| b.is_ascii_digit()).then_some(flavor);
    }
    if !is_method(first) {
        return None;
    }
    let (_, version) = rest.rsplit_once(' ')?;
    version_of(version)
}

/// Whether `token` can be a method: letters (any case), digits, `-` and `_`.
pub fn is_method(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 32
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What protocol a version token names: `HTTP/1.1`, `HTTP/1.2`, `RTSP/1.0`, `SIP/2.0`.
pub fn version_of(token: &str) -> Option<Flavor> {
    // Compared as bytes: a token from the wire may hold a character across the prefix's end.
    let has = |p: &str| {
        token.len() > p.len() && token.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
    };
    if has("HTTP/") {
        Some(Flavor::Http)
    } else if has("RTSP/") {
        Some(Flavor::Rtsp)
    } else if has("SIP/") {
        Some(Flavor::Sip)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_token_cut_inside_a_character_is_no_version() {
        assert_eq!(version_of("HTT\u{709}1.1z"), None);
        assert_eq!(version_of("SI\u{e9}/2.0"), None);
        assert_eq!(version_of("http/1.1"), Some(Flavor::Http));
    }

    #[test]
    fn rtsp_and_sip_are_told_apart_from_http() {
        assert_eq!(
            flavor(b"DESCRIBE rtsp://cam/stream RTSP/1.0\r\n"),
            Some(Flavor::Rtsp)
        );
        assert_eq!(
            flavor(b"INVITE sip:bob@example.com SIP/2.0\r\n"),
            Some(Flavor::Sip)
        );
        assert_eq!(flavor(b"SSH-2.0-OpenSSH\r\n"), None);
    }
}
