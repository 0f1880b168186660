//! The pcap writer: records go through the spool's encrypting segment writer; a segment is
//! sealed and a new one started at `rotate_size` bytes or every `rotate_interval` (on a timer,
//! whether or not packets arrive). Each sealed segment is announced on a bounded channel.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use pcap_uploader::{SealedSegment, SegmentWriter, Spool, SpoolError};
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::pcapfile::{FILE_HEADER_LEN, file_header, record_header};

/// A sealed segment with what the capture knows about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentInfo {
    #[serde(flatten)]
    pub sealed: SealedSegment,
    pub packets: u64,
}

/// What the writer needs to know about the capture.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub capture_id: String,
    pub linktype: u32,
    pub snaplen: u32,
    pub nanos: bool,
    pub rotate_size: u64,
    pub rotate_interval: Duration,
}

struct Open {
    writer: SegmentWriter,
    packets: u64,
}

/// Writes one capture's packets into rotating, encrypted segments.
pub struct RotatingWriter {
    spool: Spool,
    config: WriterConfig,
    header: [u8; FILE_HEADER_LEN],
    current: Option<Open>,
    next_seq: u32,
    next_rotation: Instant,
    announce: mpsc::Sender<SegmentInfo>,
    sealed: u64,
}

impl std::fmt::Debug for RotatingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatingWriter")
            .field("capture", &self.config.capture_id)
            .field("next_seq", &self.next_seq)
            .field("sealed", &self.sealed)
            .finish()
    }
}

impl RotatingWriter {
    /// Starts the first segment at once, so a capture always leaves at least one file.
    pub fn new(
        spool: Spool,
        config: WriterConfig,
        announce: mpsc::Sender<SegmentInfo>,
    ) -> Result<Self, SpoolError> {
        let mut writer = RotatingWriter {
            header: file_header(config.linktype, config.snaplen, config.nanos),
            next_rotation: Instant::now() + config.rotate_interval,
            spool,
            config,
            current: None,
            next_seq: 1,
            announce,
            sealed: 0,
        };
        writer.open()?;
        Ok(writer)
    }

    fn open(&mut self) -> Result<&mut Open, SpoolError> {
        let current = match self.current.take() {
            Some(c) => c,
            None => {
                let mut writer = self.spool.create(&self.config.capture_id, self.next_seq)?;
                self.next_seq += 1;
                if let Err(e) = writer.write_all(&self.header) {
                    writer.abandon();
                    return Err(e);
                }
                Open { writer, packets: 0 }
            }
        };
        Ok(self.current.insert(current))
    }

    /// Appends one packet; seals the segment once it reaches the rotation size.
    pub fn write(
        &mut self,
        ts_sec: u32,
        ts_frac: u32,
        len: u32,
        data: &[u8],
    ) -> Result<(), SpoolError> {
        let rotate_size = self.config.rotate_size;
        let record = record_header(ts_sec, ts_frac, data.len() as u32, len);
        let open = self.open()?;
        let written = open
            .writer
            .write_all(&record)
            .and_then(|()| open.writer.write_all(data));
        if let Err(e) = written {
            self.abandon();
            return Err(e);
        }
        open.packets += 1;
        if open.writer.plaintext_bytes() >= rotate_size {
            self.seal()?;
        }
        Ok(())
    }

    /// When the next time rotation is due.
    pub fn next_rotation(&self) -> Instant {
        self.next_rotation
    }

    /// Seals the current segment (even if it holds no packet) and starts the next: the time
    /// rotation.
    pub fn rotate(&mut self) -> Result<(), SpoolError> {
        while self.next_rotation <= Instant::now() {
            self.next_rotation += self.config.rotate_interval;
        }
        self.open()?;
        self.seal()?;
        self.open().map(drop)
    }

    /// Seals what is open; the writer is done.
    pub fn finish(mut self) -> Result<u64, SpoolError> {
        if self.current.is_some() {
            self.seal()?;
        }
        Ok(self.sealed)
    }

    /// Segments sealed so far.
    pub fn sealed(&self) -> u64 {
        self.sealed
    }

    /// Drops the open segment after a failure (its `.partial` is removed).
    pub fn abandon(&mut self) {
        if let Some(open) = self.current.take() {
            open.writer.abandon();
        }
    }

    fn seal(&mut self) -> Result<(), SpoolError> {
        let Some(open) = self.current.take() else {
            return Ok(());
        };
        let sealed = open.writer.seal()?;
        self.sealed += 1;
        info!(
            capture = %self.config.capture_id,
            seq = sealed.seq,
            bytes = sealed.size,
            packets = open.packets,
            "Segment sealed."
        );
        let info = SegmentInfo {
            sealed,
            packets: open.packets,
        };
        if let Err(e) = self.announce.try_send(info) {
            // The segment is safe in the spool; the uploader also finds it there.
            warn!(capture = %self.config.capture_id, error = %e, "Could not announce a sealed segment.");
        }
        Ok(())
    }
}

/// A packet timestamp as a point in time (for records and logs).
pub fn timestamp(ts_sec: u32, ts_frac: u32, nanos: bool) -> Option<Timestamp> {
    let ns = if nanos {
        ts_frac
    } else {
        ts_frac.saturating_mul(1000)
    };
    Timestamp::new(i64::from(ts_sec), ns as i32).ok()
}
