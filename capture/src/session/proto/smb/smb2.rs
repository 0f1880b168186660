//! The requests of an SMB2/3 message ([MS-SMB2] 2.2): SESSION_SETUP's NTLMSSP user,
//! TREE_CONNECT's share, CREATE's file name, each request of a compound chain.

use super::super::{Found, List, clean_utf16le, ntlmssp};
use super::wire::{share_url, u16_at, u32_at};

/// What an SMB2 header starts with; `\xfdSMB` is an encrypted (transform) message.
pub const MAGIC: &[u8; 4] = b"\xfeSMB";
/// Bytes of an SMB2 header.
const HEADER: usize = 64;
/// SMB2_FLAGS_SERVER_TO_REDIR: the message is a response.
const RESPONSE: u32 = 0x1;
/// Most requests read from one compound chain.
const MAX_CHAIN: usize = 64;

const SESSION_SETUP: u16 = 0x0001;
const TREE_CONNECT: u16 = 0x0003;
const CREATE: u16 = 0x0005;
const IOCTL: u16 = 0x000b;
/// FSCTL_DFS_GET_REFERRALS: its input names the DFS path asked for.
const DFS_GET_REFERRALS: u32 = 0x0006_0194;

/// Reads every request of the SMB2 message `msg` (its first bytes, as far as kept).
pub fn read(msg: &[u8], found: &mut Found) {
    let mut at = 0usize;
    for _ in 0..MAX_CHAIN {
        let Some(hdr) = msg.get(at..) else { return };
        if hdr.get(..4) != Some(MAGIC.as_slice()) || hdr.len() < HEADER {
            return;
        }
        let next = u32_at(hdr, 20).unwrap_or(0) as usize;
        // A compounded request's offsets count from its own header, and it ends where the
        // next begins.
        let this = if next >= HEADER {
            &hdr[..next.min(hdr.len())]
        } else {
            hdr
        };
        if u32_at(hdr, 16).unwrap_or(0) & RESPONSE == 0 {
            request(u16_at(hdr, 12).unwrap_or(0), this, found);
        }
        if next < HEADER {
            return;
        }
        at += next;
    }
}

/// The bytes at an (offset, length) pair of u16s at `field` in `msg`.
fn buffer(msg: &[u8], field: usize) -> Option<&[u8]> {
    let offset = usize::from(u16_at(msg, field)?);
    let len = usize::from(u16_at(msg, field + 2)?);
    msg.get(offset..offset + len)
}

fn request(command: u16, msg: &[u8], found: &mut Found) {
    match command {
        SESSION_SETUP => {
            if let Some(login) = buffer(msg, HEADER + 12)
                .and_then(ntlmssp::find_authenticate)
                .and_then(|a| a.login())
            {
                found.add(List::Users, login);
            }
        }
        TREE_CONNECT => {
            if let Some(url) = buffer(msg, HEADER + 4).and_then(|p| share_url(&clean_utf16le(p))) {
                found.add(List::Urls, url);
            }
        }
        CREATE => {
            if let Some(name) = buffer(msg, HEADER + 44).map(clean_utf16le) {
                found.add(List::Filenames, name);
            }
        }
        IOCTL if u32_at(msg, HEADER + 4) == Some(DFS_GET_REFERRALS) => {
            let offset = u32_at(msg, HEADER + 24).unwrap_or(0) as usize;
            let count = u32_at(msg, HEADER + 28).unwrap_or(0) as usize;
            // MaxReferralLevel, then the path.
            if let Some(input) = msg.get(offset.saturating_add(2)..offset.saturating_add(count)) {
                found.add(List::Filenames, clean_utf16le(input));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::session::proto::ntlmssp::tests::message as ntlm_message;

    pub(crate) fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    /// An SMB2 request header for `command`, `next` bytes to the next of a compound.
    fn header(command: u16, next: u32) -> Vec<u8> {
        let mut h = MAGIC.to_vec();
        h.extend_from_slice(&64u16.to_le_bytes());
        h.resize(12, 0);
        h.extend_from_slice(&command.to_le_bytes());
        h.resize(20, 0);
        h.extend_from_slice(&next.to_le_bytes());
        h.resize(HEADER, 0);
        h
    }

    /// A request whose body has a (u16 offset, u16 length) pair at `field` pointing to `buffer`
    /// after a fixed body of `fixed` bytes.
    fn with_buffer(command: u16, fixed: usize, field: usize, buffer: &[u8]) -> Vec<u8> {
        let mut m = header(command, 0);
        let mut body = vec![0u8; fixed];
        let offset = (HEADER + fixed) as u16;
        body[field..field + 2].copy_from_slice(&offset.to_le_bytes());
        body[field + 2..field + 4].copy_from_slice(&(buffer.len() as u16).to_le_bytes());
        m.extend_from_slice(&body);
        m.extend_from_slice(buffer);
        m
    }

    pub(crate) fn session_setup(domain: &str, user: &str) -> Vec<u8> {
        // The AUTHENTICATE inside an SPNEGO NegTokenResp, as clients send it.
        let mut blob = vec![0xa1, 0x82, 0x01, 0x00, 0x30, 0x81];
        blob.extend_from_slice(&ntlm_message(domain, user, "WS"));
        with_buffer(SESSION_SETUP, 24, 12, &blob)
    }

    pub(crate) fn tree_connect(path: &str) -> Vec<u8> {
        with_buffer(TREE_CONNECT, 8, 4, &utf16(path))
    }

    pub(crate) fn create(name: &str) -> Vec<u8> {
        with_buffer(CREATE, 56, 44, &utf16(name))
    }

    #[test]
    fn setup_tree_and_create_give_user_share_and_file() {
        let mut found = Found::default();
        read(&session_setup("CORP", "alice"), &mut found);
        read(&tree_connect("\\\\FS01\\Public"), &mut found);
        read(&create("reports\\q3.xlsx"), &mut found);
        assert_eq!(found.users, ["CORP\\alice"]);
        assert_eq!(found.urls, ["smb://FS01/Public"]);
        assert_eq!(found.filenames, ["reports\\q3.xlsx"]);
    }

    #[test]
    fn every_request_of_a_compound_is_read_and_responses_are_not() {
        let first = create("svcctl");
        let mut chain = first.clone();
        let next = chain.len().next_multiple_of(8);
        chain.resize(next, 0);
        chain[20..24].copy_from_slice(&(next as u32).to_le_bytes());
        chain.extend_from_slice(&create("srvsvc"));
        let mut found = Found::default();
        read(&chain, &mut found);
        assert_eq!(found.filenames, ["svcctl", "srvsvc"]);

        let mut response = create("secret.txt");
        response[16] |= RESPONSE as u8;
        let mut found = Found::default();
        read(&response, &mut found);
        assert!(found.filenames.is_empty());
    }

    #[test]
    fn cut_and_forged_messages_give_nothing_wrong_and_never_panic() {
        let good = create("a.txt");
        for cut in 0..good.len() {
            let mut found = Found::default();
            read(&good[..cut], &mut found);
            assert!(
                found
                    .filenames
                    .iter()
                    .all(|f| "a.txt".starts_with(f.as_str()))
            );
        }
        // A compound pointing to itself or past the end ends the chain.
        let mut looped = good.clone();
        looped[20..24].copy_from_slice(&1u32.to_le_bytes());
        read(&looped, &mut Found::default());
        let mut far = good;
        far[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        read(&far, &mut Found::default());
    }
}
