//! The rate-limit gate: when a capture's token bucket runs dry, the socket's BPF program is
//! swapped for one that keeps one byte of each matching packet, until the bucket has refilled.
//!
//! Packets over the limit then still reach the agent, to be counted exactly as
//! `dropped_rate_limit`, but the kernel copies one byte of each instead of up to the snaplen.
//! That copy on the receiving CPU is what a capture costs the host's own traffic; with the gate
//! a rate-limited capture of a busy flow costs about what a capture of nothing costs.
//!
//! The programs are libpcap's own compilation of the filter on the live handle (so they carry
//! libpcap's Linux-specific code, such as VLAN handling), attached directly with
//! `SO_ATTACH_FILTER`. Cooked captures (`any`) need libpcap's rewriting of link-layer loads and
//! keep the plain user-space rate limit.

use std::os::fd::{AsRawFd, BorrowedFd};

use pcap::{Active, Capture, Linktype};

/// Bytes the gated program keeps of each packet.
pub const GATED_LEN: u32 = 1;

const BPF_CLASS_MASK: u16 = 0x07;
const BPF_RET: u16 = 0x06;
const BPF_RVAL_MASK: u16 = 0x18;
const BPF_K: u16 = 0x00;

/// A classic BPF program in the kernel's representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program(Vec<libc::sock_filter>);

impl Program {
    /// The instructions of a libpcap program (read through its textual form, which is
    /// `code jt jf k` per instruction).
    pub fn from_pcap(program: &pcap::BpfProgram) -> Option<Self> {
        program
            .get_instructions()
            .iter()
            .map(|i| {
                let text = i.to_string();
                let mut parts = text.split_whitespace().map(str::parse::<u64>);
                let mut next = || parts.next()?.ok();
                Some(libc::sock_filter {
                    code: u16::try_from(next()?).ok()?,
                    jt: u8::try_from(next()?).ok()?,
                    jf: u8::try_from(next()?).ok()?,
                    k: u32::try_from(next()?).ok()?,
                })
            })
            .collect::<Option<Vec<_>>>()
            .filter(|v| !v.is_empty())
            .map(Program)
    }

    /// The same program keeping [`GATED_LEN`] bytes of each accepted packet; `None` if the
    /// program returns a computed length, which cannot be rewritten.
    pub fn gated(&self) -> Option<Self> {
        let mut insns = self.0.clone();
        for i in &mut insns {
            if i.code & BPF_CLASS_MASK == BPF_RET {
                if i.code & BPF_RVAL_MASK != BPF_K {
                    return None;
                }
                if i.k != 0 {
                    i.k = GATED_LEN;
                }
            }
        }
        Some(Program(insns))
    }

    /// Attaches the program to the capture socket, replacing the one there.
    #[allow(unsafe_code)]
    pub fn attach(&self, socket: BorrowedFd<'_>) -> std::io::Result<()> {
        let len = u16::try_from(self.0.len())
            .map_err(|_| std::io::Error::other("BPF program too long"))?;
        let prog = libc::sock_fprog {
            len,
            filter: self.0.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `len` valid instructions owned by `self`, which outlives
        // the call; the kernel copies the program before setsockopt returns and only reads it.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&raw const prog).cast(),
                size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

/// The two programs of a gated capture and whether the gate is closed.
#[derive(Debug)]
pub struct Gate {
    open: Program,
    closed: Program,
    is_closed: bool,
}

impl Gate {
    /// Builds the gate for `filter` on a live capture, if its link type allows it.
    pub fn new(capture: &Capture<Active>, filter: &str, linktype: Linktype) -> Option<Self> {
        if linktype == Linktype::LINUX_SLL || linktype == Linktype::LINUX_SLL2 {
            return None;
        }
        let compiled = capture.compile(filter, true).ok()?;
        let open = Program::from_pcap(&compiled)?;
        let closed = open.gated()?;
        Some(Gate {
            open,
            closed,
            is_closed: false,
        })
    }

    pub fn is_closed(&self) -> bool {
        self.is_closed
    }

    /// Closes the gate: matching packets arrive as [`GATED_LEN`] bytes.
    pub fn close(&mut self, socket: BorrowedFd<'_>) -> std::io::Result<()> {
        self.closed.attach(socket)?;
        self.is_closed = true;
        Ok(())
    }

    /// Opens the gate: matching packets arrive whole (up to the snaplen) again.
    pub fn open(&mut self, socket: BorrowedFd<'_>) -> std::io::Result<()> {
        self.open.attach(socket)?;
        self.is_closed = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gated_program_keeps_one_byte_where_the_original_keeps_the_snaplen() {
        let dead = Capture::dead(Linktype::ETHERNET).unwrap();
        let compiled = dead.compile("udp and port 53", true).unwrap();
        let open = Program::from_pcap(&compiled).unwrap();
        let closed = open.gated().unwrap();
        assert_eq!(open.0.len(), closed.0.len());
        let rets: Vec<(u32, u32)> = open
            .0
            .iter()
            .zip(&closed.0)
            .filter(|(o, _)| o.code & BPF_CLASS_MASK == BPF_RET)
            .map(|(o, c)| (o.k, c.k))
            .collect();
        assert!(rets.contains(&(0, 0)), "rejections stay rejections");
        assert!(
            rets.iter().any(|&(o, c)| o > 0 && c == GATED_LEN),
            "{rets:?}"
        );
    }
}
