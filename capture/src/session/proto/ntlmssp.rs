//! NTLMSSP ([MS-NLMP] 2.2.1.3), wherever it travels (HTTP `Authorization: NTLM` and
//! `Negotiate`, and the SMB, DCE/RPC, LDAP and mail logins that carry it): the AUTHENTICATE
//! message's domain, user and workstation, never its responses (they are password hashes).

/// What every NTLMSSP message starts with.
const SIGNATURE: &[u8] = b"NTLMSSP\0";
/// The message type of AUTHENTICATE.
const AUTHENTICATE: u32 = 3;
/// NTLMSSP_NEGOTIATE_UNICODE: names are UTF-16LE, else OEM (taken as Latin-1).
const UNICODE: u32 = 0x1;
/// Longest name read from a message.
const MAX_NAME: usize = 512;

/// The names of an AUTHENTICATE message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticate {
    pub domain: String,
    pub user: String,
    pub workstation: String,
}

impl Authenticate {
    /// The user as tshark shows it, `DOMAIN\user` (or `user` without a domain); `None` for
    /// an anonymous login.
    pub fn login(&self) -> Option<String> {
        if self.user.is_empty() {
            return None;
        }
        Some(if self.domain.is_empty() {
            self.user.clone()
        } else {
            format!("{}\\{}", self.domain, self.user)
        })
    }
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// The AUTHENTICATE message at the start of `msg`, if it is one.
pub fn authenticate(msg: &[u8]) -> Option<Authenticate> {
    if msg.get(..8)? != SIGNATURE || u32_at(msg, 8)? != AUTHENTICATE {
        return None;
    }
    let flags = u32_at(msg, 60).unwrap_or(0);
    let name = |field: usize| -> Option<String> {
        let len = usize::from(u16_at(msg, field)?).min(MAX_NAME * 2);
        let offset = usize::try_from(u32_at(msg, field + 4)?).ok()?;
        let bytes = msg.get(offset..offset.checked_add(len)?)?;
        Some(if flags & UNICODE != 0 {
            super::clean_utf16le(bytes)
        } else {
            let latin1: String = bytes.iter().map(|&b| char::from(b)).collect();
            super::clean(latin1.as_bytes())
        })
    };
    Some(Authenticate {
        domain: name(28)?,
        user: name(36)?,
        workstation: name(44).unwrap_or_default(),
    })
}

/// The first AUTHENTICATE message inside `data` (an SPNEGO token, a security blob), found by
/// its signature.
pub fn find_authenticate(data: &[u8]) -> Option<Authenticate> {
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&data[from..], SIGNATURE) {
        if let Some(auth) = authenticate(&data[from + i..]) {
            return Some(auth);
        }
        from += i + 1;
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An AUTHENTICATE message for `domain\user` from `workstation`, UTF-16LE.
    pub(crate) fn message(domain: &str, user: &str, workstation: &str) -> Vec<u8> {
        let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
        let (d, u, w) = (utf16(domain), utf16(user), utf16(workstation));
        let mut m = SIGNATURE.to_vec();
        m.extend_from_slice(&AUTHENTICATE.to_le_bytes());
        let mut payload = Vec::new();
        let base = 72u32;
        let mut field = |bytes: &[u8], m: &mut Vec<u8>| {
            let offset = base + payload.len() as u32;
            m.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
            m.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
            m.extend_from_slice(&offset.to_le_bytes());
            payload.extend_from_slice(bytes);
        };
        field(&[0; 24], &mut m); // LM response
        field(&[1; 24], &mut m); // NT response
        field(&d, &mut m);
        field(&u, &mut m);
        field(&w, &mut m);
        field(&[], &mut m); // session key
        m.extend_from_slice(&(UNICODE | 0x0008_0000).to_le_bytes());
        m.extend_from_slice(&[0; 8]); // version
        m.extend_from_slice(&payload);
        m
    }

    #[test]
    fn the_login_of_an_authenticate_message_is_domain_and_user() {
        let m = message("CORP", "alice", "WS-01");
        let auth = authenticate(&m).unwrap();
        assert_eq!(auth.login().as_deref(), Some("CORP\\alice"));
        assert_eq!(auth.workstation, "WS-01");
        // Inside another message (an SPNEGO token), found by its signature.
        let mut wrapped = vec![0xa1, 0x82, 0x01, 0x00, b'N', b'T'];
        wrapped.extend_from_slice(&m);
        assert_eq!(find_authenticate(&wrapped).unwrap().user, "alice");
        // Truncated and forged offsets are refused, never a panic.
        for cut in 0..m.len() {
            let _ = authenticate(&m[..cut]);
        }
        let mut bad = m.clone();
        bad[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(authenticate(&bad).is_none());
        assert_eq!(
            authenticate(&message("", "", "")).and_then(|a| a.login()),
            None
        );
    }
}
