//! `pcap-agent analyze`: the session extraction of live captures, run over a pcap or pcapng
//! file; one JSON line per session. Unreadable input is an error naming the byte offset, after
//! the sessions read up to that point have been reported.

// Sessions are large; boxed, they move as pointers when the table grows, sorts and hands
// them over.
#![allow(clippy::vec_box)]

use std::io::{Read, Write};

use pcap_parser::nom;
use pcap_parser::pcap::{
    LegacyPcapBlock, PcapHeader, parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified,
    parse_pcap_header,
};
use pcap_parser::pcapng::{Block, parse_block_be, parse_block_le, parse_sectionheaderblock};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError, create_reader};

use crate::session::{RecordContext, SessionTable, record};

/// The read buffer: its size at first, and the largest block it grows to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadBuffer {
    pub initial: usize,
    pub max_block: usize,
}

impl Default for ReadBuffer {
    /// 256 KiB to start (refilled while it is still in the CPU cache), blocks up to 64 MiB.
    fn default() -> Self {
        ReadBuffer {
            initial: 256 << 10,
            max_block: 64 << 20,
        }
    }
}
/// Packets between hand-overs of finished sessions.
const FLUSH_EVERY: u64 = 65_536;

/// Why a file could not be read to the end.
#[derive(Debug, thiserror::Error)]
#[error("{message} (at byte offset {offset})")]
pub struct AnalyzeError {
    pub offset: u64,
    pub message: String,
}

fn fail(offset: u64, message: impl Into<String>) -> AnalyzeError {
    AnalyzeError {
        offset,
        message: message.into(),
    }
}

/// What an analysis saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub packets: u64,
    pub sessions: u64,
    /// Packets of a link type the decoder does not read.
    pub unknown_link: u64,
    /// IP fragments of datagrams that never came whole (timed out, overlapping, too big).
    pub fragments_given_up: u64,
    /// Sessions whose inspection stopped early because the flow table reached its memory
    /// budget.
    pub inspection_stopped: u64,
}

/// Reads the packets of the file `file` into `table`, writes one JSON record per session to
/// `out`. A regular file is mapped into memory and parsed in place (no copy of its bytes into a
/// read buffer); anything else (a pipe, a device) is read as a stream.
pub fn analyze_file(
    file: std::fs::File,
    ctx: &RecordContext<'_>,
    table: SessionTable,
    out: &mut impl Write,
) -> Result<Summary, AnalyzeError> {
    let Some(mapped) = map(&file) else {
        return analyze(file, ctx, table, out);
    };
    let _guard = shrink::Guard::install(&mapped);
    let buffer = ReadBuffer::default();
    let mut reader = SliceReader::new(&mapped, buffer.max_block).map_err(header_error)?;
    if std::env::var_os("NOPF").is_none() {
        reader.release = Some(&mapped);
    }
    run(&mut reader, ctx, table, out, buffer)
}

/// The file's bytes mapped read-only, if it is a regular file that is not empty and mapping
/// works.
#[allow(unsafe_code)]
fn map(file: &std::fs::File) -> Option<memmap2::Mmap> {
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() == 0 {
        return None;
    }
    // SAFETY: the mapping is private and read-only, and only read as bytes: no value in it is
    // trusted to be valid for a type. Another process that writes the file while it is read
    // changes what is parsed, which the parser takes like any other input; one that truncates it
    // makes reading past the new end fault (SIGBUS), which `shrink::Guard` turns into an error
    // exit.
    let mapped = unsafe { memmap2::MmapOptions::new().map(file) }.ok()?;
    let _ = mapped.advise(memmap2::Advice::Sequential);
    Some(mapped)
}

/// A file that shrinks while it is mapped (another process truncated it) faults on the next
/// read past its new end, with SIGBUS. While a mapped file is read, that signal ends the
/// process with a message and EX_DATAERR (65), as other unreadable input does, instead of a
/// crash; a SIGBUS anywhere else takes its default course.
#[allow(unsafe_code)]
mod shrink {
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The mapping being read (start and length), 0 when none.
    static START: AtomicUsize = AtomicUsize::new(0);
    static LEN: AtomicUsize = AtomicUsize::new(0);

    const MESSAGE: &[u8] = b"pcap-agent analyze: the file shrank while it was read (another \
        process truncated it): the sessions not yet written are not reported\n";

    pub struct Guard {
        previous: libc::sigaction,
    }

    impl Guard {
        pub fn install(mapped: &[u8]) -> Option<Guard> {
            START.store(mapped.as_ptr() as usize, Ordering::SeqCst);
            LEN.store(mapped.len(), Ordering::SeqCst);
            // SAFETY: a zeroed sigaction is a valid value (no handler, no flags, empty mask);
            // the handler below only makes async-signal-safe calls (write, _exit, signal).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_sigbus as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO;
                libc::sigemptyset(&mut action.sa_mask);
                let mut previous: libc::sigaction = std::mem::zeroed();
                (libc::sigaction(libc::SIGBUS, &action, &mut previous) == 0)
                    .then_some(Guard { previous })
            }
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            // SAFETY: puts back the handler that was there before `install`.
            unsafe { libc::sigaction(libc::SIGBUS, &self.previous, std::ptr::null_mut()) };
            LEN.store(0, Ordering::SeqCst);
        }
    }

    extern "C" fn on_sigbus(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        // SAFETY: the kernel hands a valid siginfo to an SA_SIGINFO handler; write(2), _exit(2)
        // and signal(2) are async-signal-safe.
        unsafe {
            let addr = (*info).si_addr() as usize;
            let start = START.load(Ordering::SeqCst);
            if addr >= start && addr - start < LEN.load(Ordering::SeqCst) {
                libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
                libc::_exit(65);
            }
            // Not the file's pages: the default action, when the faulting access is retried.
            libc::signal(libc::SIGBUS, libc::SIG_DFL);
        }
    }
}

/// Asks the CPU to load the start of the next block (its header and the packet's headers)
/// while this one is read: the file's pages are not in the cache, and one miss a packet is a
/// good part of the time a packet takes.
#[allow(unsafe_code)]
#[inline]
fn prefetch(next: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in [0, 64, 128] {
        if let Some(byte) = next.get(line) {
            // SAFETY: SSE, which the prefetch needs, is part of x86_64; a prefetch reads
            // nothing into the program and never faults, and the address is inside the slice.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    (byte as *const u8).cast(),
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = next;
}

/// How much of a mapped file is mapped in ahead of what is read, and read past before it is
/// given back.
const MAP_STEP: usize = 1 << 20;

/// Gives back the pages of `mapped` between `from` and `to` (rounded to pages by the mapping).
#[allow(unsafe_code)]
fn release(mapped: &memmap2::Mmap, from: usize, to: usize) {
    // SAFETY: the mapping is private, read-only and never written, so a page given back is the
    // file's page again when it is read: nothing the slice shows changes (the same caveat of a
    // file changed by another process aside, `map`). Pages still to be read stay mapped:
    // `to` stays a whole step behind what was read.
    let _ = unsafe {
        mapped.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from)
    };
}

/// [`analyze`] over a whole file held in memory.
pub fn analyze_bytes(
    data: &[u8],
    ctx: &RecordContext<'_>,
    table: SessionTable,
    out: &mut impl Write,
) -> Result<Summary, AnalyzeError> {
    let buffer = ReadBuffer::default();
    let mut reader = SliceReader::new(data, buffer.max_block).map_err(header_error)?;
    run(&mut reader, ctx, table, out, buffer)
}

/// Reads packets from `input` into `table`, writes one JSON record per session to `out`.
pub fn analyze(
    input: impl Read,
    ctx: &RecordContext<'_>,
    table: SessionTable,
    out: &mut impl Write,
) -> Result<Summary, AnalyzeError> {
    analyze_with(input, ctx, table, out, ReadBuffer::default())
}

/// [`analyze`] with a given read buffer.
pub fn analyze_with(
    input: impl Read,
    ctx: &RecordContext<'_>,
    table: SessionTable,
    out: &mut impl Write,
    buffer: ReadBuffer,
) -> Result<Summary, AnalyzeError> {
    let mut reader = create_reader(buffer.initial, input).map_err(header_error)?;
    run(reader.as_mut(), ctx, table, out, buffer)
}

/// Why a file's header could not be read.
fn header_error<I>(e: PcapError<I>) -> AnalyzeError {
    match e {
        PcapError::HeaderNotRecognized => {
            fail(0, "not a pcap or pcapng file: the header is not recognized")
        }
        PcapError::Eof | PcapError::Incomplete(_) | PcapError::UnexpectedEof => fail(
            0,
            "the file is empty or ends inside its header: not a whole pcap or pcapng file",
        ),
        PcapError::ReadError => fail(0, "cannot read the file"),
        _ => fail(0, "not a pcap or pcapng file: its header is malformed"),
    }
}

fn run(
    reader: &mut dyn PcapReaderIterator,
    ctx: &RecordContext<'_>,
    mut table: SessionTable,
    out: &mut impl Write,
    buffer: ReadBuffer,
) -> Result<Summary, AnalyzeError> {
    let mut summary = Summary::default();
    let read = read_all(reader, &mut table, &mut summary, ctx, out, buffer);
    // What was read before an error is still reported.
    summary.unknown_link = table.stats.unknown_link;
    table.end_fragments();
    summary.fragments_given_up = table.stats.reassembly.fragments_given_up;
    summary.inspection_stopped = table.stats.inspection_stopped;
    let written = emit(table.take_finished(), ctx, out).and_then(|n| {
        summary.sessions += n;
        emit(table.finish(), ctx, out)
    });
    summary.sessions += written.as_ref().copied().unwrap_or(0);
    read.and(written).map(|_| summary)
}

fn read_all(
    reader: &mut dyn PcapReaderIterator,
    table: &mut SessionTable,
    summary: &mut Summary,
    ctx: &RecordContext<'_>,
    out: &mut impl Write,
    buffer: ReadBuffer,
) -> Result<(), AnalyzeError> {
    let mut offset: u64 = 0;
    // Per interface of the current section (pcapng): link type, timestamp units per second and
    // offset; or the one link type and precision of a pcap file.
    let mut interfaces: Vec<(u32, u64, i64)> = Vec::new();
    let mut legacy: Option<(u32, bool)> = None;
    let mut capacity = buffer.initial;
    loop {
        match reader.next() {
            Ok((consumed, block)) => {
                let packet = match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy = Some((h.network.0 as u32, h.is_nanosecond_precision()));
                        None
                    }
                    PcapBlockOwned::Legacy(b) => legacy.map(|(lt, nanos)| {
                        let frac = if nanos {
                            u64::from(b.ts_usec)
                        } else {
                            u64::from(b.ts_usec) * 1000
                        };
                        (
                            lt,
                            u64::from(b.ts_sec) * 1_000_000_000 + frac,
                            b.data,
                            b.origlen,
                        )
                    }),
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                        interfaces.clear();
                        None
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        interfaces.push((
                            idb.linktype.0 as u32,
                            idb.ts_resolution().unwrap_or(1_000_000),
                            idb.ts_offset(),
                        ));
                        None
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        interfaces.get(epb.if_id as usize).map(|&(lt, res, off)| {
                            let res = res.max(1);
                            let (sec, frac) = epb.decode_ts(off.max(0) as u64, res);
                            let ns = u64::from(sec) * 1_000_000_000
                                + u64::from(frac) * 1_000_000_000 / res;
                            let data = &epb.data[..(epb.caplen as usize).min(epb.data.len())];
                            (lt, ns, data, epb.origlen)
                        })
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => interfaces
                        .first()
                        .map(|&(lt, _, _)| (lt, 0, spb.data, spb.origlen)),
                    PcapBlockOwned::NG(_) => None,
                };
                if let Some((linktype, ts_ns, data, origlen)) = packet {
                    table.packet(linktype, ts_ns, data, origlen);
                    summary.packets += 1;
                    if summary.packets.is_multiple_of(FLUSH_EVERY) {
                        summary.sessions += emit(table.take_finished(), ctx, out)?;
                    }
                }
                offset += consumed as u64;
                // The buffer is compacted only on refill, when little is left to move.
                reader.consume_noshift(consumed);
            }
            Err(PcapError::Eof) => return Ok(()),
            Err(PcapError::Incomplete(_)) => {
                if reader.reader_exhausted() {
                    return Err(fail(offset, "the file ends inside a block: truncated"));
                }
                reader
                    .refill()
                    .map_err(|e| fail(offset, format!("cannot read the file: {e:?}")))?;
            }
            Err(PcapError::BufferTooSmall) => {
                if capacity >= buffer.max_block || !reader.grow(capacity * 2) {
                    return Err(fail(
                        offset,
                        match buffer.max_block >> 20 {
                            0 => format!("a block is larger than {} KiB", buffer.max_block >> 10),
                            mib => format!("a block is larger than {mib} MiB"),
                        },
                    ));
                }
                capacity *= 2;
            }
            Err(PcapError::UnexpectedEof) => {
                return Err(fail(offset, "the file ends inside a block: truncated"));
            }
            Err(PcapError::NomError(_, kind)) | Err(PcapError::OwnedNomError(_, kind)) => {
                return Err(fail(offset, format!("malformed block ({kind:?})")));
            }
            Err(e) => return Err(fail(offset, format!("cannot read the file: {e:?}"))),
        }
    }
}

/// The blocks of a file held in memory, given out as [`create_reader`]'s readers give them (the
/// same blocks, the same errors), each borrowed from the file's bytes.
struct SliceReader<'a> {
    data: &'a [u8],
    consumed: usize,
    /// The largest block.
    max_block: usize,
    /// The mapping `data` is, whose pages are given back once read past (so that the
    /// process's resident memory does not grow with the file), and how far it was.
    release: Option<&'a memmap2::Mmap>,
    released: usize,
    /// How far the mapping's pages are mapped ahead.
    populated: usize,
    /// Where reading next looks at the mapping's pages (every 64 KiB).
    next_step: usize,
    format: Format,
}

type LegacyParse = fn(&[u8]) -> nom::IResult<&[u8], LegacyPcapBlock<'_>, PcapError<&[u8]>>;

enum Format {
    /// A pcap file: its header, until it is given out, and how its records are parsed.
    Legacy {
        header: Option<PcapHeader>,
        parse: LegacyParse,
    },
    /// A pcapng file, and the byte order of its current section.
    Ng { big_endian: bool },
}

impl<'a> SliceReader<'a> {
    fn new(data: &'a [u8], max_block: usize) -> Result<Self, PcapError<&'a [u8]>> {
        let format = if parse_sectionheaderblock(data).is_ok() {
            Format::Ng { big_endian: false }
        } else {
            let header = match parse_pcap_header(data) {
                Ok((_, header)) => header,
                Err(nom::Err::Incomplete(_)) => return Err(PcapError::Eof),
                Err(_) => return Err(PcapError::HeaderNotRecognized),
            };
            let parse = if header.is_modified_format() {
                parse_pcap_frame_modified
            } else if header.is_bigendian() {
                parse_pcap_frame_be
            } else {
                parse_pcap_frame
            };
            Format::Legacy {
                header: Some(header),
                parse,
            }
        };
        Ok(SliceReader {
            data,
            consumed: 0,
            max_block,
            release: None,
            released: 0,
            populated: 0,
            next_step: 0,
            format,
        })
    }
}

impl PcapReaderIterator for SliceReader<'_> {
    fn next(&mut self) -> Result<(usize, PcapBlockOwned<'_>), PcapError<&'_ [u8]>> {
        let data = &self.data[self.consumed..];
        let parsed = match &mut self.format {
            Format::Legacy { header, parse } => {
                if let Some(header) = header.take() {
                    return Ok((header.size(), PcapBlockOwned::from(header)));
                }
                if data.is_empty() {
                    return Err(PcapError::Eof);
                }
                parse(data).map(|(rest, b)| (rest, PcapBlockOwned::from(b)))
            }
            Format::Ng { big_endian } => {
                if data.is_empty() {
                    return Err(PcapError::Eof);
                }
                let parse = if *big_endian {
                    parse_block_be
                } else {
                    parse_block_le
                };
                parse(data).map(|(rest, b)| {
                    if let Block::SectionHeader(shb) = &b {
                        *big_endian = shb.big_endian();
                    }
                    (rest, PcapBlockOwned::from(b))
                })
            }
        };
        match parsed {
            Ok((rest, block)) => {
                if self.release.is_some() {
                    prefetch(rest);
                }
                Ok((data.len() - rest.len(), block))
            }
            Err(nom::Err::Error(e)) | Err(nom::Err::Failure(e)) => Err(e),
            // A block that says it is larger than blocks may be, as a stream reports it.
            Err(nom::Err::Incomplete(nom::Needed::Size(n)))
                if data.len().saturating_add(n.get()) >= self.max_block =>
            {
                Err(PcapError::BufferTooSmall)
            }
            // All of the file is here: a block cut short is the end of the file.
            Err(nom::Err::Incomplete(_)) => Err(PcapError::UnexpectedEof),
        }
    }

    fn consume(&mut self, offset: usize) {
        self.consume_noshift(offset);
    }

    fn consume_noshift(&mut self, offset: usize) {
        self.consumed = (self.consumed + offset).min(self.data.len());
        if self.consumed < self.next_step {
            return;
        }
        self.next_step = self.consumed + MAP_STEP / 16;
        if let Some(mapped) = self.release {
            if self.consumed + MAP_STEP > self.populated
                && self.populated < self.data.len()
                && std::env::var_os("NOPOP").is_none()
            {
                // The pages ahead mapped in one call, not one fault every few pages. A kernel
                // without MADV_POPULATE_READ (before 5.14) faults them in as they are read.
                let len = MAP_STEP.min(self.data.len() - self.populated);
                let _ = mapped.advise_range(memmap2::Advice::PopulateRead, self.populated, len);
                self.populated += len;
            }
            if self.consumed - self.released >= MAP_STEP * 2 && std::env::var_os("NOREL").is_none()
            {
                let upto = self.consumed - MAP_STEP;
                release(mapped, self.released, upto);
                self.released = upto;
            }
        }
    }

    fn consumed(&self) -> usize {
        self.consumed
    }

    fn refill(&mut self) -> Result<(), PcapError<&[u8]>> {
        Ok(())
    }

    fn position(&self) -> usize {
        self.consumed
    }

    fn grow(&mut self, _new_size: usize) -> bool {
        false
    }

    fn data(&self) -> &[u8] {
        &self.data[self.consumed..]
    }

    fn reader_exhausted(&self) -> bool {
        true
    }
}

/// Writes the records of `sessions`; returns how many.
fn emit(
    sessions: Vec<Box<crate::session::Session>>,
    ctx: &RecordContext<'_>,
    out: &mut impl Write,
) -> Result<u64, AnalyzeError> {
    let failed = |e: &dyn std::fmt::Display| fail(0, format!("cannot write the output: {e}"));
    let mut line = Vec::with_capacity(512);
    for s in &sessions {
        line.clear();
        record(s, ctx).write_json(&mut line);
        line.push(b'\n');
        out.write_all(&line).map_err(|e| failed(&e))?;
    }
    Ok(sessions.len() as u64)
}
