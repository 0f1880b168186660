//! The pcap writer, in two halves so that slow storage never stalls the capture.
//!
//! The capture thread formats pcap records into 1 MiB chunks and decides rotation: by size
//! (`rotate_size` bytes of pcap) and on a timer (`rotate_interval`, whether or not packets
//! arrive). A segment thread (`seal-<id>`) takes the chunks over a bounded channel and writes
//! them through the spool's encrypting segment writer; it seals segments (fsync, rename) and
//! announces each sealed segment on a bounded channel. While it waits on the disk, chunks
//! queue (at most [`CHUNKS`] chunks of [`CHUNK`] bytes) and the capture thread keeps draining
//! the kernel's ring.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use pcap_protocol::CaptureId;
use pcap_spool::{SealedSegment, SegmentWriter, Spool, SpoolError};
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::pcapfile::{FILE_HEADER_LEN, RECORD_HEADER_LEN, file_header, record_header};

/// Size of a chunk handed to the segment thread.
pub const CHUNK: usize = 1 << 20;
/// Chunks queued at most: with the one the capture fills and the one being written, the memory
/// bound of a capture's write queue (6 MiB). The kernel ring (`capture.buffer_size`, 64 MiB by
/// default) is the capture's buffer; this queue only rides out a seal's fsync.
pub const CHUNKS: usize = 4;

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
    pub capture_id: CaptureId,
    pub linktype: u32,
    pub snaplen: u32,
    pub nanos: bool,
    pub rotate_size: u64,
    pub rotate_interval: Duration,
}

/// Messages to the segment thread.
enum Msg {
    /// Bytes of the open segment (opened on the first bytes).
    Data(Vec<u8>),
    /// Seal the open segment, which holds `packets` packets.
    Seal { packets: u64 },
    /// Drop the open segment after a failure.
    Abandon,
}

/// State shared with the segment thread.
#[derive(Debug, Default)]
struct Shared {
    sealed: AtomicU64,
    failed: AtomicBool,
    error: Mutex<Option<SpoolError>>,
}

/// The capture thread's half: formats records, decides rotation, hands chunks over.
pub struct RotatingWriter {
    config: WriterConfig,
    header: [u8; FILE_HEADER_LEN],
    chunk: Vec<u8>,
    /// Whether a segment is open (its file header was written).
    open: bool,
    segment_bytes: u64,
    segment_packets: u64,
    next_rotation: Instant,
    tx: Option<SyncSender<Msg>>,
    /// Chunks the segment thread is done with, the most recent last: reused first, while
    /// they are still in cache.
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RotatingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatingWriter")
            .field("capture", &self.config.capture_id)
            .field("sealed", &self.sealed())
            .finish()
    }
}

impl RotatingWriter {
    /// Starts the segment thread and the first segment, so a capture always leaves at least
    /// one file.
    pub fn new(
        spool: Spool,
        config: WriterConfig,
        announce: mpsc::Sender<SegmentInfo>,
    ) -> Result<Self, SpoolError> {
        let (tx, rx) = sync_channel::<Msg>(CHUNKS);
        let free = Arc::new(Mutex::new(Vec::with_capacity(CHUNKS + 1)));
        let shared = Arc::new(Shared::default());
        let segments = SegmentThread {
            spool,
            capture_id: config.capture_id.clone(),
            announce,
            shared: shared.clone(),
            free: free.clone(),
            current: None,
            next_seq: 1,
        };
        let name = format!(
            "seal-{}",
            &config.capture_id.as_str()[config.capture_id.as_str().len().saturating_sub(7)..]
        );
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || segments.run(rx))
            .map_err(|e| SpoolError::io("start the segment thread for", "", e))?;
        let mut writer = RotatingWriter {
            header: file_header(config.linktype, config.snaplen, config.nanos),
            next_rotation: Instant::now() + config.rotate_interval,
            config,
            chunk: Vec::with_capacity(CHUNK),
            open: false,
            segment_bytes: 0,
            segment_packets: 0,
            tx: Some(tx),
            free,
            shared,
            thread: Some(thread),
        };
        writer.start_segment();
        writer.hand_over()?;
        Ok(writer)
    }

    fn start_segment(&mut self) {
        let header = self.header;
        self.chunk.extend_from_slice(&header);
        self.open = true;
        self.segment_bytes = FILE_HEADER_LEN as u64;
        self.segment_packets = 0;
    }

    /// The error of the segment thread, if it failed.
    fn check(&self) -> Result<(), SpoolError> {
        if !self.shared.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        let taken = self
            .shared
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        Err(taken.unwrap_or_else(|| {
            SpoolError::io(
                "write",
                "",
                std::io::Error::other("the segment thread failed"),
            )
        }))
    }

    fn send(&mut self, msg: Msg) -> Result<(), SpoolError> {
        let sent = self
            .tx
            .as_ref()
            .map(|tx| tx.send(msg).is_ok())
            .unwrap_or(false);
        if !sent {
            self.check()?;
            return Err(SpoolError::io(
                "write",
                "",
                std::io::Error::other("the segment thread has ended"),
            ));
        }
        self.check()
    }

    /// Hands the current chunk to the segment thread and takes a fresh one.
    fn hand_over(&mut self) -> Result<(), SpoolError> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let next = self
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.chunk, next);
        self.send(Msg::Data(full))
    }

    /// Appends one packet; seals the segment once it reaches the rotation size.
    pub fn write(
        &mut self,
        ts_sec: u32,
        ts_frac: u32,
        len: u32,
        data: &[u8],
    ) -> Result<(), SpoolError> {
        if !self.open {
            self.start_segment();
        }
        self.chunk
            .extend_from_slice(&record_header(ts_sec, ts_frac, data.len() as u32, len));
        self.chunk.extend_from_slice(data);
        self.segment_bytes += (RECORD_HEADER_LEN + data.len()) as u64;
        self.segment_packets += 1;
        if self.chunk.len() >= CHUNK {
            self.hand_over()?;
        }
        if self.segment_bytes >= self.config.rotate_size {
            self.seal()?;
        }
        Ok(())
    }

    fn seal(&mut self) -> Result<(), SpoolError> {
        self.hand_over()?;
        self.open = false;
        let packets = self.segment_packets;
        self.send(Msg::Seal { packets })
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
        if !self.open {
            self.start_segment();
        }
        self.seal()?;
        self.start_segment();
        self.hand_over()
    }

    /// Segments sealed so far.
    pub fn sealed(&self) -> u64 {
        self.shared.sealed.load(Ordering::Relaxed)
    }

    /// Seals what is open and waits for the segment thread; returns the number of segments.
    pub fn finish(mut self) -> Result<u64, SpoolError> {
        let result = if self.open { self.seal() } else { self.check() };
        self.close();
        result.and_then(|()| self.check()).map(|()| self.sealed())
    }

    /// Drops the open segment after a failure (its `.partial` is removed) and ends the
    /// segment thread; what was sealed stays.
    pub fn abandon(mut self) -> u64 {
        self.chunk.clear();
        self.open = false;
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Abandon);
        }
        self.close();
        self.sealed()
    }

    fn close(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RotatingWriter {
    fn drop(&mut self) {
        self.close();
    }
}

/// The segment thread's half: writes chunks, seals and announces segments.
struct SegmentThread {
    spool: Spool,
    capture_id: CaptureId,
    announce: mpsc::Sender<SegmentInfo>,
    shared: Arc<Shared>,
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    current: Option<SegmentWriter>,
    next_seq: u32,
}

impl SegmentThread {
    fn run(mut self, rx: Receiver<Msg>) {
        for msg in rx {
            if self.shared.failed.load(Ordering::Relaxed) {
                // After a failure nothing more is written; the capture stops on its next check.
                if let Msg::Data(buf) = msg {
                    self.recycle(buf);
                }
                continue;
            }
            let result = match msg {
                Msg::Data(buf) => {
                    let r = self.write(&buf);
                    self.recycle(buf);
                    r
                }
                Msg::Seal { packets } => self.seal(packets),
                Msg::Abandon => {
                    if let Some(s) = self.current.take() {
                        s.abandon();
                    }
                    Ok(())
                }
            };
            if let Err(e) = result {
                if let Some(s) = self.current.take() {
                    s.abandon();
                }
                warn!(capture = %self.capture_id, error = %e, "Segment write failed.");
                *self.shared.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                self.shared.failed.store(true, Ordering::Release);
            }
        }
        // The channel closed without a final seal (abandon or drop): nothing open survives.
        if let Some(s) = self.current.take() {
            s.abandon();
        }
    }

    fn recycle(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() <= CHUNKS {
            free.push(buf);
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), SpoolError> {
        if self.current.is_none() {
            self.current = Some(self.spool.create(&self.capture_id, self.next_seq)?);
            self.next_seq += 1;
        }
        match &mut self.current {
            Some(segment) => segment.write_all(data),
            None => Ok(()),
        }
    }

    fn seal(&mut self, packets: u64) -> Result<(), SpoolError> {
        let Some(segment) = self.current.take() else {
            return Ok(());
        };
        let sealed = segment.seal()?;
        self.shared.sealed.fetch_add(1, Ordering::Relaxed);
        info!(capture = %self.capture_id, seq = sealed.seq, bytes = sealed.size, packets, "Segment sealed.");
        if let Err(e) = self.announce.try_send(SegmentInfo { sealed, packets }) {
            // The segment is safe in the spool; the uploader also finds it there.
            warn!(capture = %self.capture_id, error = %e, "Could not announce a sealed segment.");
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
