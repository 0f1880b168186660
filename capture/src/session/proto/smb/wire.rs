//! What SMB1 and SMB2 read alike: little-endian fields at an offset, and share paths as URLs.

/// A share path `\\server\share` as the URL `smb://server/share`.
pub fn share_url(path: &str) -> Option<String> {
    let rest = path.strip_prefix("\\\\")?;
    let (server, share) = rest.split_once('\\')?;
    (!server.is_empty() && !share.is_empty())
        .then(|| format!("smb://{server}/{}", share.replace('\\', "/")))
}

pub fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

pub fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_paths_become_urls() {
        assert_eq!(
            share_url("\\\\10.0.0.5\\C$").as_deref(),
            Some("smb://10.0.0.5/C$")
        );
        assert_eq!(share_url("\\\\server"), None);
        assert_eq!(share_url("share"), None);
    }
}
