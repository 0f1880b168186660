//! The checksum of a spool file: CRC-64/NVME (crc-fast) or SHA-256 (ring), computed as the
//! file is written, journaled at sealing, and recomputed wherever the file is read again (an
//! upload that copies it, a fetch).

pub use pcap_protocol::store::Checksum;

/// A checksum being computed.
pub enum Hasher {
    Crc64Nvme(crc_fast::Digest),
    Sha256(ring::digest::Context),
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind().as_str())
    }
}

impl Hasher {
    pub fn new(kind: Checksum) -> Self {
        match kind {
            Checksum::Crc64Nvme => {
                Hasher::Crc64Nvme(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme))
            }
            Checksum::Sha256 => Hasher::Sha256(ring::digest::Context::new(&ring::digest::SHA256)),
        }
    }

    pub fn kind(&self) -> Checksum {
        match self {
            Hasher::Crc64Nvme(_) => Checksum::Crc64Nvme,
            Hasher::Sha256(_) => Checksum::Sha256,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc64Nvme(d) => d.update(data),
            Hasher::Sha256(c) => c.update(data),
        }
    }

    /// The value in lowercase hex (16 digits for CRC-64/NVME, 64 for SHA-256).
    pub fn finish(self) -> String {
        match self {
            Hasher::Crc64Nvme(d) => format!("{:016x}", d.finalize()),
            Hasher::Sha256(c) => pcap_protocol::keys::hex(c.finish().as_ref()),
        }
    }
}

/// The checksum of `data` as `kind`.
pub fn of(kind: Checksum, data: &[u8]) -> String {
    let mut h = Hasher::new(kind);
    h.update(data);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_values_are_the_standard_ones() {
        // The check values of the CRC catalogue and FIPS 180-2 for "123456789" and "abc".
        assert_eq!(of(Checksum::Crc64Nvme, b"123456789"), "ae8b14860a799888");
        assert_eq!(
            of(Checksum::Sha256, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Pieces give the value of the whole.
        let mut h = Hasher::new(Checksum::Crc64Nvme);
        h.update(b"1234");
        h.update(b"56789");
        assert_eq!(h.finish(), "ae8b14860a799888");
    }
}
