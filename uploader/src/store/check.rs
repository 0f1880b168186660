//! The check of a spool file's bytes, as an upload reads them, against the checksum recorded
//! when the file was sealed.

use std::path::Path;

use pcap_spool::checksum::{Checksum, Hasher};

use super::error::UploadError;

/// The bytes of a spool file as the upload reads them, against the checksum of its sealing.
pub(super) struct Check<'a> {
    hasher: Option<(Hasher, &'a str)>,
    path: &'a Path,
}

impl<'a> Check<'a> {
    pub(super) fn new(sealed: Option<(Checksum, &'a str)>, path: &'a Path) -> Self {
        Check {
            hasher: sealed.map(|(kind, value)| (Hasher::new(kind), value)),
            path,
        }
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        if let Some((h, _)) = &mut self.hasher {
            h.update(data);
        }
    }

    pub(super) fn checked(&self) -> bool {
        self.hasher.is_some()
    }

    /// Whether what was read is what was sealed (call once, after the last byte).
    pub(super) fn verify(&mut self) -> Result<(), UploadError> {
        let Some((h, want)) = self.hasher.take() else {
            return Ok(());
        };
        let kind = h.kind();
        let got = h.finish();
        if got.eq_ignore_ascii_case(want) {
            // Checked: keep reporting it as such.
            self.hasher = Some((Hasher::new(kind), want));
            return Ok(());
        }
        Err(UploadError::Corrupted(format!(
            "the spool file {} changed after it was sealed ({} {want} at sealing, {got} read back)",
            self.path.display(),
            kind.as_str(),
        )))
    }
}
