//! `pcap-agent analyze`: the session extraction of live captures, run over a pcap or pcapng
//! file; one JSON line per session. Unreadable input is an error naming the byte offset.

use std::io::{Read, Write};

use pcap_parser::pcapng::Block;
use pcap_parser::{PcapBlockOwned, PcapError, create_reader};

use crate::session::{RecordContext, SessionTable, record};

/// Read buffer size; grows for a larger block up to [`MAX_BLOCK`].
const BUFFER: usize = 1 << 20;
/// Largest block accepted in a file.
const MAX_BLOCK: usize = 64 << 20;
/// Packets between hand-overs of finished sessions.
const FLUSH_EVERY: u64 = 65_536;

/// Why a file could not be read to the end.
#[derive(Debug, thiserror::Error)]
#[error("{message} (at byte offset {offset})")]
pub struct AnalyzeError {
    pub offset: u64,
    pub message: String,
}

/// What an analysis saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub packets: u64,
    pub sessions: u64,
}

/// Reads packets from `input`, writes one JSON record per session to `out`.
pub fn analyze(
    input: impl Read,
    ctx: &RecordContext<'_>,
    max_sessions: usize,
    idle: std::time::Duration,
    out: &mut impl Write,
) -> Result<Summary, AnalyzeError> {
    let fail = |offset: u64, message: String| AnalyzeError { offset, message };
    let mut reader = create_reader(BUFFER, input).map_err(|e| match e {
        PcapError::HeaderNotRecognized => fail(
            0,
            "not a pcap or pcapng file: the header is not recognized".into(),
        ),
        other => fail(0, format!("cannot read the file header: {other:?}")),
    })?;
    let mut table = SessionTable::new(max_sessions, idle);
    let mut summary = Summary::default();
    let mut offset: u64 = 0;
    // Per interface of the current section (pcapng), or the one link type (pcap): link type,
    // and timestamp resolution (units per second) and offset.
    let mut interfaces: Vec<(u32, u64, i64)> = Vec::new();
    let mut legacy: Option<(u32, bool)> = None;
    let mut capacity = BUFFER;
    // Writes the sessions that left the table; returns how many.
    let emit = |table: &mut SessionTable, out: &mut dyn Write| -> Result<u64, AnalyzeError> {
        let finished = table.take_finished();
        for s in &finished {
            write_record(out, &record(s, ctx))
                .map_err(|e| fail(0, format!("cannot write the output: {e}")))?;
        }
        Ok(finished.len() as u64)
    };
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
                            let (sec, frac) = epb.decode_ts(off.max(0) as u64, res.max(1));
                            let ns = u64::from(sec) * 1_000_000_000
                                + u64::from(frac) * 1_000_000_000 / res.max(1);
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
                    if summary.packets % FLUSH_EVERY == 0 {
                        summary.sessions += emit(&mut table, out)?;
                    }
                }
                offset += consumed as u64;
                reader.consume(consumed);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if reader.reader_exhausted() {
                    return Err(fail(
                        offset,
                        "the file ends inside a block: truncated".into(),
                    ));
                }
                reader
                    .refill()
                    .map_err(|e| fail(offset, format!("cannot read the file: {e:?}")))?;
            }
            Err(PcapError::BufferTooSmall) => {
                if capacity >= MAX_BLOCK || !reader.grow(capacity * 2) {
                    return Err(fail(
                        offset,
                        format!("a block is larger than {} MiB", MAX_BLOCK >> 20),
                    ));
                }
                capacity *= 2;
            }
            Err(PcapError::UnexpectedEof) => {
                return Err(fail(
                    offset,
                    "the file ends inside a block: truncated".into(),
                ));
            }
            Err(PcapError::NomError(_, kind)) | Err(PcapError::OwnedNomError(_, kind)) => {
                return Err(fail(offset, format!("malformed block ({kind:?})")));
            }
            Err(e) => return Err(fail(offset, format!("cannot read the file: {e:?}"))),
        }
    }
    summary.sessions += emit(&mut table, out)?;
    for s in table.finish() {
        write_record(out, &record(&s, ctx))
            .map_err(|e| fail(offset, format!("cannot write the output: {e}")))?;
        summary.sessions += 1;
    }
    Ok(summary)
}

fn write_record(
    out: &mut dyn Write,
    r: &serde_json::Map<String, serde_json::Value>,
) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, r)?;
    out.write_all(b"\n")
}
