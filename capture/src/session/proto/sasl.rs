//! SASL logins as the mail protocols carry them (SMTP `AUTH`, IMAP `AUTHENTICATE`, POP3
//! `AUTH`): the user of `PLAIN` (RFC 4616), `LOGIN`, and `NTLM` (the NTLMSSP AUTHENTICATE
//! message's `DOMAIN\user`), from the initial response on the command line or the client's
//! base64 lines that follow it. Passwords and hashes are never kept.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{Found, List, clean, ntlmssp};

/// Where a login is, between client lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sasl {
    /// No login under way.
    #[default]
    Idle,
    /// `PLAIN` without an initial response: the next line is the credentials.
    Plain,
    /// `LOGIN`: the next line is the user.
    LoginUser,
    /// `NTLM`: the client's lines are NTLMSSP messages until its AUTHENTICATE.
    Ntlm,
}

impl Sasl {
    /// A login of `mechanism` begins, with the initial response `initial` (empty if none, or
    /// `=`, an empty one).
    pub fn start(mechanism: &[u8], initial: &[u8], found: &mut Found) -> Sasl {
        let initial = initial.trim_ascii();
        let next = if mechanism.eq_ignore_ascii_case(b"PLAIN") {
            Sasl::Plain
        } else if mechanism.eq_ignore_ascii_case(b"LOGIN") {
            Sasl::LoginUser
        } else if mechanism.eq_ignore_ascii_case(b"NTLM") {
            Sasl::Ntlm
        } else {
            return Sasl::Idle;
        };
        if initial.is_empty() || initial == b"=" {
            next
        } else {
            next.line(initial, found)
        }
    }

    /// The client's next line during a login; returns where the login is after it.
    pub fn line(self, line: &[u8], found: &mut Found) -> Sasl {
        // `*` cancels a login.
        let decoded = match STANDARD.decode(line.trim_ascii()) {
            Ok(d) if line != b"*" => d,
            _ => return Sasl::Idle,
        };
        match self {
            Sasl::Idle => Sasl::Idle,
            Sasl::Plain => {
                // `authzid \0 user \0 password`: the user, or the authorisation identity
                // when it is empty.
                let mut parts = decoded.split(|&b| b == 0);
                let authzid = parts.next().unwrap_or_default();
                if let Some(user) = parts.next() {
                    let user = if user.is_empty() { authzid } else { user };
                    found.add(List::Users, clean(user));
                }
                Sasl::Idle
            }
            Sasl::LoginUser => {
                found.add(List::Users, clean(&decoded));
                Sasl::Idle
            }
            Sasl::Ntlm => match ntlmssp::authenticate(&decoded) {
                Some(auth) => {
                    if let Some(login) = auth.login() {
                        found.add(List::Users, login);
                    }
                    Sasl::Idle
                }
                None => Sasl::Ntlm,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(data: &[u8]) -> Vec<u8> {
        STANDARD.encode(data).into_bytes()
    }

    #[test]
    fn plain_login_and_ntlm_give_the_user_and_never_the_password() {
        let mut found = Found::default();
        let s = Sasl::start(b"plain", &b64(b"\0alice\0secret"), &mut found);
        assert_eq!(s, Sasl::Idle);
        let s = Sasl::start(b"LOGIN", b"", &mut found);
        let s = s.line(&b64(b"bob"), &mut found);
        assert_eq!(s, Sasl::Idle, "the password line is not read as a user");
        let s = Sasl::start(b"NTLM", b"", &mut found);
        let s = s.line(&b64(b"NTLMSSP\0\x01\0\0\0\x07\x82\x08\xa2"), &mut found);
        assert_eq!(s, Sasl::Ntlm, "NEGOTIATE: the login goes on");
        let auth = ntlmssp::tests::message("CORP", "carol", "WS1");
        assert_eq!(s.line(&b64(&auth), &mut found), Sasl::Idle);
        assert_eq!(found.users, ["alice", "bob", "CORP\\carol"]);
        let mut none = Found::default();
        assert_eq!(Sasl::Plain.line(b"*", &mut none), Sasl::Idle);
        assert_eq!(Sasl::Plain.line(b"not base64!", &mut none), Sasl::Idle);
        assert_eq!(Sasl::start(b"CRAM-MD5", b"", &mut none), Sasl::Idle);
        assert!(none.users.is_empty());
    }
}
