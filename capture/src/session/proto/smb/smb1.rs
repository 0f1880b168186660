//! The requests of an SMB1 message ([MS-CIFS] 2.2): SESSION_SETUP_ANDX's user (NTLMSSP, or the
//! account in the clear of a login without extended security), TREE_CONNECT_ANDX's share, and
//! the file names of NT_CREATE_ANDX and of Trans2's OPEN2 and path queries, along the AndX
//! chain.

use super::super::{Found, List, clean, clean_utf16le, ntlmssp};
use super::wire::{share_url, u16_at};

/// What an SMB1 header starts with.
pub const MAGIC: &[u8; 4] = b"\xffSMB";
/// Bytes of an SMB1 header.
const HEADER: usize = 32;
/// SMB_FLAGS_REPLY.
const REPLY: u8 = 0x80;
/// SMB_FLAGS2_UNICODE: strings are UTF-16LE, aligned to 2 from the header's start.
const UNICODE: u16 = 0x8000;
/// Most commands read along one AndX chain.
const MAX_CHAIN: usize = 16;
/// No further AndX command.
const NO_ANDX: u8 = 0xff;

const TRANSACTION2: u8 = 0x32;
const SESSION_SETUP_ANDX: u8 = 0x73;
const TREE_CONNECT_ANDX: u8 = 0x75;
const NT_CREATE_ANDX: u8 = 0xa2;

/// Trans2 subcommands with a file name, and where it is in their parameters.
const TRANS2_NAMES: [(u16, usize); 4] = [
    (0x00, 28), // OPEN2
    (0x05, 6),  // QUERY_PATH_INFORMATION
    (0x06, 6),  // SET_PATH_INFORMATION
    (0x10, 2),  // GET_DFS_REFERRAL: the DFS path asked for
];

/// One command block: its parameter words and data bytes, and where the bytes start in the
/// message (string alignment counts from the header's start).
struct Block<'a> {
    words: &'a [u8],
    bytes: &'a [u8],
    bytes_at: usize,
}

fn block(msg: &[u8], at: usize) -> Option<Block<'_>> {
    let count = usize::from(*msg.get(at)?);
    let words = msg.get(at + 1..at + 1 + 2 * count)?;
    let byte_count = usize::from(u16_at(msg, at + 1 + 2 * count)?);
    let bytes_at = at + 3 + 2 * count;
    // A message kept only in part keeps what of its bytes is there.
    let bytes = msg.get(bytes_at..).map(|b| &b[..b.len().min(byte_count)])?;
    Some(Block {
        words,
        bytes,
        bytes_at,
    })
}

/// Reads every request of the SMB1 message `msg` (its first bytes, as far as kept).
pub fn read(msg: &[u8], found: &mut Found) {
    if msg.get(..4) != Some(MAGIC.as_slice()) || msg.len() < HEADER + 1 {
        return;
    }
    if msg[9] & REPLY != 0 {
        return;
    }
    let unicode = u16_at(msg, 10).unwrap_or(0) & UNICODE != 0;
    let text = Text { msg, unicode };
    let mut command = msg[4];
    let mut at = HEADER;
    for _ in 0..MAX_CHAIN {
        let Some(b) = block(msg, at) else { return };
        request(command, &b, &text, found);
        let andx = matches!(
            command,
            SESSION_SETUP_ANDX | TREE_CONNECT_ANDX | NT_CREATE_ANDX
        );
        if !andx || b.words.len() < 4 || b.words[0] == NO_ANDX {
            return;
        }
        let next = usize::from(u16_at(b.words, 2).unwrap_or(0));
        // The chain only goes forward.
        if next <= at {
            return;
        }
        command = b.words[0];
        at = next;
    }
}

/// How the message's strings are read.
struct Text<'a> {
    msg: &'a [u8],
    unicode: bool,
}

impl Text<'_> {
    /// The NUL-ended string at `at` in the message (after the pad byte that aligns a UTF-16
    /// string), and where the next one starts.
    fn string(&self, mut at: usize, end: usize) -> Option<(String, usize)> {
        let bytes = self.msg.get(..end.min(self.msg.len()))?;
        if self.unicode {
            at += at % 2;
            let rest = bytes.get(at..)?;
            let len = rest
                .chunks_exact(2)
                .position(|c| c == [0, 0])
                .map_or(rest.len() & !1, |units| units * 2);
            Some((clean_utf16le(&rest[..len]), at + len + 2))
        } else {
            let rest = bytes.get(at..)?;
            let len = memchr::memchr(0, rest).unwrap_or(rest.len());
            Some((clean(&rest[..len]), at + len + 1))
        }
    }
}

fn request(command: u8, b: &Block<'_>, text: &Text<'_>, found: &mut Found) {
    let end = b.bytes_at + b.bytes.len();
    match command {
        SESSION_SETUP_ANDX => match b.words.len() {
            // Extended security: an SPNEGO blob.
            24 => {
                if let Some(login) = ntlmssp::find_authenticate(b.bytes).and_then(|a| a.login()) {
                    found.add(List::Users, login);
                }
            }
            // A login in the clear: the two password fields, then account and domain.
            26 => {
                let passwords = usize::from(u16_at(b.words, 14).unwrap_or(0))
                    + usize::from(u16_at(b.words, 16).unwrap_or(0));
                let Some((account, next)) = text.string(b.bytes_at + passwords, end) else {
                    return;
                };
                let domain = text.string(next, end).map(|d| d.0).unwrap_or_default();
                if !account.is_empty() {
                    found.add(
                        List::Users,
                        if domain.is_empty() || domain == "?" {
                            account
                        } else {
                            format!("{domain}\\{account}")
                        },
                    );
                }
            }
            _ => {}
        },
        TREE_CONNECT_ANDX if b.words.len() == 8 => {
            let password = usize::from(u16_at(b.words, 6).unwrap_or(0));
            if let Some(url) = text
                .string(b.bytes_at + password, end)
                .and_then(|(path, _)| share_url(&path))
            {
                found.add(List::Urls, url);
            }
        }
        NT_CREATE_ANDX if b.words.len() == 48 => {
            if let Some((name, _)) = text.string(b.bytes_at, end) {
                found.add(List::Filenames, name);
            }
        }
        TRANSACTION2 if b.words.len() >= 30 => {
            let sub = u16_at(b.words, 28);
            let Some(&(_, name_at)) = TRANS2_NAMES.iter().find(|(s, _)| Some(*s) == sub) else {
                return;
            };
            // The name is where the subcommand puts it in the parameters, not realigned.
            let params = usize::from(u16_at(b.words, 20).unwrap_or(0));
            let params_end = params + usize::from(u16_at(b.words, 18).unwrap_or(0));
            let Some(name) = text
                .msg
                .get(params + name_at..params_end.min(text.msg.len()))
            else {
                return;
            };
            found.add(
                List::Filenames,
                if text.unicode {
                    clean_utf16le(name)
                } else {
                    clean(&name[..memchr::memchr(0, name).unwrap_or(name.len())])
                },
            );
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::proto::ntlmssp::tests::message as ntlm_message;
    use crate::session::proto::smb::smb2::tests::utf16;

    /// An SMB1 request of `command` with `words` and `bytes`, Unicode.
    fn message(command: u8, words: &[u8], bytes: &[u8]) -> Vec<u8> {
        let mut m = MAGIC.to_vec();
        m.push(command);
        m.resize(10, 0);
        m.extend_from_slice(&(UNICODE | 0x0800).to_le_bytes());
        m.resize(HEADER, 0);
        m.push((words.len() / 2) as u8);
        m.extend_from_slice(words);
        m.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        m.extend_from_slice(bytes);
        m
    }

    fn no_andx(len: usize) -> Vec<u8> {
        let mut w = vec![0u8; len];
        w[0] = NO_ANDX;
        w
    }

    #[test]
    fn setup_tree_and_create_give_user_share_and_file() {
        let mut found = Found::default();
        let mut setup = ntlm_message("CORP", "bob", "WS");
        setup.insert(0, 0xa1);
        read(
            &message(SESSION_SETUP_ANDX, &no_andx(24), &setup),
            &mut found,
        );

        // Tree connect: a one-byte password, then the path aligned to 2.
        let mut words = no_andx(8);
        words[6] = 1;
        let start = HEADER + 1 + 8 + 2;
        let mut bytes = vec![0u8];
        if (start + 1) % 2 == 1 {
            bytes.push(0);
        }
        bytes.extend_from_slice(&utf16("\\\\FS01\\IPC$\0"));
        bytes.extend_from_slice(b"?????\0");
        read(&message(TREE_CONNECT_ANDX, &words, &bytes), &mut found);

        let start = HEADER + 1 + 48 + 2;
        let mut bytes = vec![0u8; start % 2];
        bytes.extend_from_slice(&utf16("\\svcctl\0"));
        read(&message(NT_CREATE_ANDX, &no_andx(48), &bytes), &mut found);

        assert_eq!(found.users, ["CORP\\bob"]);
        assert_eq!(found.urls, ["smb://FS01/IPC$"]);
        assert_eq!(found.filenames, ["\\svcctl"]);
    }

    #[test]
    fn a_login_in_the_clear_gives_domain_and_account() {
        let mut words = no_andx(26);
        words[14] = 3; // case-insensitive password length
        let start = HEADER + 1 + 26 + 2;
        let mut bytes = b"pw!".to_vec();
        if (start + bytes.len()) % 2 == 1 {
            bytes.push(0);
        }
        bytes.extend_from_slice(&utf16("carol\0WORKGROUP\0"));
        let mut found = Found::default();
        read(&message(SESSION_SETUP_ANDX, &words, &bytes), &mut found);
        assert_eq!(found.users, ["WORKGROUP\\carol"]);
    }

    #[test]
    fn an_andx_chain_is_followed_forward_only_and_cut_messages_never_panic() {
        // SESSION_SETUP_ANDX chained to TREE_CONNECT_ANDX.
        let mut words = vec![0u8; 24];
        words[0] = TREE_CONNECT_ANDX;
        let mut m = message(SESSION_SETUP_ANDX, &words, &[]);
        let next = m.len() as u16;
        m[HEADER + 3..HEADER + 5].copy_from_slice(&next.to_le_bytes());
        let mut tree = no_andx(8);
        tree[6] = 0;
        m.push(4);
        m.extend_from_slice(&tree);
        let path = utf16("\\\\S\\share\0");
        let at = m.len() + 2;
        let pad = at % 2;
        m.extend_from_slice(&((path.len() + pad) as u16).to_le_bytes());
        m.extend(std::iter::repeat_n(0, pad));
        m.extend_from_slice(&path);
        let mut found = Found::default();
        read(&m, &mut found);
        assert_eq!(found.urls, ["smb://S/share"]);

        // Pointing back loops no more.
        let mut back = m.clone();
        back[HEADER + 3..HEADER + 5].copy_from_slice(&(HEADER as u16).to_le_bytes());
        read(&back, &mut Found::default());
        for cut in 0..m.len() {
            read(&m[..cut], &mut Found::default());
        }
    }
}
