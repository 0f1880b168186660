//! The file under the encryption. Ciphertext is gathered into 1 MiB aligned blocks and written
//! with `O_DIRECT`, bypassing the page cache: at capture rates the copy into the page cache and
//! its writeback cost more CPU than the encryption, and a spool file is not read again until
//! upload. File systems without `O_DIRECT` (tmpfs) get ordinary buffered writes.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::{FcntlArg, OFlag, fcntl};

use crate::checksum::{Checksum, Hasher};

/// Alignment of direct I/O buffers and sizes (covers 512-byte and 4 KiB logical blocks).
const ALIGN: usize = 4096;
/// Size of each write to the file. Each write is one request to the device (on a virtual
/// machine, a notification that exits to the hypervisor): fewer, larger writes cost less.
const WRITE_SIZE: usize = 1 << 20;

/// One aligned block of the write buffer.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(4096))]
struct Block([u8; ALIGN]);

/// A write-only spool file: large aligned writes, direct I/O where the file system has it.
pub struct SpoolFile {
    file: File,
    direct: bool,
    buf: Vec<Block>,
    len: usize,
    written: u64,
    /// The checksum of every byte written, recorded at sealing.
    hash: Hasher,
}

impl std::fmt::Debug for SpoolFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolFile")
            .field("direct", &self.direct)
            .field("written", &self.written)
            .finish()
    }
}

impl SpoolFile {
    /// Creates `path` (it must not exist) with mode 0600; its bytes get a `checksum`.
    pub fn create(path: &Path, checksum: Checksum) -> io::Result<Self> {
        let open = |flags: i32| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(flags)
                .open(path)
        };
        let (file, direct) = match open(libc::O_DIRECT) {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (open(0)?, false),
            Err(e) => return Err(e),
        };
        Ok(SpoolFile {
            file,
            direct,
            buf: vec![Block([0; ALIGN]); WRITE_SIZE / ALIGN],
            len: 0,
            written: 0,
            hash: Hasher::new(checksum),
        })
    }

    /// Whether writes bypass the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    fn bytes(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.buf)
    }

    /// Writes what is buffered, the unaligned tail through the page cache, and returns the
    /// file (not yet fsynced), the number of bytes in it and their checksum (hex).
    pub fn finish(mut self) -> io::Result<(File, u64, String)> {
        let len = self.len;
        let data: &[u8] = bytemuck::cast_slice(&self.buf);
        self.hash.update(&data[..len]);
        let aligned = if self.direct {
            len / ALIGN * ALIGN
        } else {
            len
        };
        if aligned > 0 {
            let file = &mut self.file;
            let data: &[u8] = bytemuck::cast_slice(&self.buf);
            file.write_all(&data[..aligned])?;
        }
        if aligned < len {
            // Direct I/O needs whole blocks; the last partial block goes through the cache.
            let flags = OFlag::from_bits_truncate(fcntl(self.file.as_fd(), FcntlArg::F_GETFL)?);
            fcntl(
                self.file.as_fd(),
                FcntlArg::F_SETFL(flags - OFlag::O_DIRECT),
            )?;
            let data: &[u8] = bytemuck::cast_slice(&self.buf);
            let tail = data[aligned..len].to_vec();
            self.file.write_all(&tail)?;
        }
        Ok((self.file, self.written, self.hash.finish()))
    }
}

impl Write for SpoolFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = WRITE_SIZE - self.len;
        let n = data.len().min(room);
        let start = self.len;
        self.bytes()[start..start + n].copy_from_slice(&data[..n]);
        self.len += n;
        self.written += n as u64;
        if self.len == WRITE_SIZE {
            let data: &[u8] = bytemuck::cast_slice(&self.buf);
            self.hash.update(data);
            self.file.write_all(data)?;
            self.len = 0;
        }
        Ok(n)
    }

    /// Buffered data stays until a whole block is full or the file is finished: direct I/O
    /// cannot write part of a block.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_is_in_the_file_whatever_the_sizes() {
        let dir = tempfile::tempdir().unwrap();
        check_round_trip(&dir.path().join("f"));
    }

    #[test]
    fn a_spool_on_tmpfs_round_trips() {
        // tmpfs takes O_DIRECT on recent kernels and refuses it on older ones; either way the
        // content must be intact.
        let Ok(dir) = tempfile::tempdir_in("/dev/shm") else {
            eprintln!("skipped: no /dev/shm");
            return;
        };
        check_round_trip(&dir.path().join("f"));
    }

    fn check_round_trip(path: &Path) {
        let mut f = SpoolFile::create(path, Checksum::Sha256).unwrap();
        let data: Vec<u8> = (0..3 * WRITE_SIZE + 12_345)
            .map(|i| (i % 253) as u8)
            .collect();
        for chunk in data.chunks(65_552) {
            f.write_all(chunk).unwrap();
        }
        let (file, n, sha256) = f.finish().unwrap();
        file.sync_all().unwrap();
        assert_eq!(n, data.len() as u64);
        let expected = ring::digest::digest(&ring::digest::SHA256, &data);
        assert_eq!(sha256, pcap_protocol::keys::hex(expected.as_ref()));
        assert_eq!(std::fs::read(path).unwrap(), data);
    }
}
