//! The file under the encryption: buffers the ciphertext into large writes and hashes it on the
//! way, so the segment's SHA-256 is known the moment it is sealed, without reading it back.

use std::fs::File;
use std::io::{self, Write};

/// Size of each write to the file.
const WRITE_SIZE: usize = 1 << 20;

/// A buffered, hashing file writer.
pub struct HashingFile {
    file: File,
    buf: Vec<u8>,
    hash: ring::digest::Context,
    written: u64,
}

impl std::fmt::Debug for HashingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashingFile")
            .field("written", &self.written)
            .finish()
    }
}

impl HashingFile {
    pub fn new(file: File) -> Self {
        HashingFile {
            file,
            buf: Vec::with_capacity(WRITE_SIZE),
            hash: ring::digest::Context::new(&ring::digest::SHA256),
            written: 0,
        }
    }

    fn drain(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes what is buffered and returns the file, the SHA-256 and the size of all bytes.
    pub fn finish(mut self) -> io::Result<(File, [u8; 32], u64)> {
        self.drain()?;
        let mut digest = [0u8; 32];
        digest.copy_from_slice(self.hash.finish().as_ref());
        Ok((self.file, digest, self.written))
    }
}

impl Write for HashingFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.hash.update(data);
        self.written += data.len() as u64;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= WRITE_SIZE {
            self.drain()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.file.flush()
    }
}
