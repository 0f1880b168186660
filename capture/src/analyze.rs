//! `pcap-agent analyze`: the session extraction of live captures, run over a pcap or pcapng
//! file; one JSON line per session. Unreadable input is an error naming the byte offset, after
//! the sessions read up to that point have been reported.

// Sessions are large; boxed, they move as pointers when the table grows, sorts and hands
// them over.
#![allow(clippy::vec_box)]

use std::io::{Read, Write};

use pcap_parser::pcapng::Block;
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
    mut table: SessionTable,
    out: &mut impl Write,
    buffer: ReadBuffer,
) -> Result<Summary, AnalyzeError> {
    let mut reader = create_reader(buffer.initial, input).map_err(|e| match e {
        PcapError::HeaderNotRecognized => {
            fail(0, "not a pcap or pcapng file: the header is not recognized")
        }
        other => fail(0, format!("cannot read the file header: {other:?}")),
    })?;
    let mut summary = Summary::default();
    let read = read_all(reader.as_mut(), &mut table, &mut summary, ctx, out, buffer);
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
