//! One capture, on its own named OS thread (`capture-<id>`), because libpcap blocks.
//!
//! The thread polls the capture's descriptor together with a wake-up socket, with a timeout at
//! the next deadline (duration limit or time rotation): it stops at once when asked, even on a
//! silent interface, where libpcap's own read timeout would never fire; rotation and the
//! duration limit happen on time without traffic. Packets are read in batches
//! (`pcap_dispatch`), rate limited, written, and counted.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use pcap::{Active, Capture};
use pcap_protocol::{CaptureId, CaptureStats, EffectiveLimits, StopReason};
use pcap_spool::{SealedSegment, Spool, SpoolError};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::device::{self, DeviceOptions, Opened};
use crate::error::CaptureError;
use crate::filter::InnerFilter;
use crate::gate::Gate;
use crate::rate::RateLimiter;
use crate::recorder::{Recorder, SessionSpec, SessionsSummary};
use crate::writer::{RotatingWriter, SegmentInfo, WriterConfig};

/// How long a stopping capture waits for the kernel's last block of packets (the block timeout
/// of the capture, plus a margin).
const FINAL_DRAIN: Duration = Duration::from_millis(150);
/// How often libpcap's kernel counters are read while running.
const STATS_INTERVAL: Duration = Duration::from_millis(500);

/// Everything a capture needs.
#[derive(Debug, Clone)]
pub struct CaptureSpec {
    pub id: CaptureId,
    pub interface: String,
    /// The effective filter (exclusions already applied).
    pub filter: String,
    /// A request scoped to a tunnel: its filter, applied to the frames inside the carrier
    /// packets `filter` selects.
    pub inner: Option<InnerSpec>,
    pub limits: EffectiveLimits,
    pub promiscuous: bool,
    pub immediate: bool,
    pub buffer_size: u64,
    pub rotate_size: u64,
    pub rotate_interval: Duration,
    /// Session extraction, if on.
    pub sessions: Option<SessionSpec>,
}

/// The inner filter of a capture scoped to a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerSpec {
    pub scope: pcap_protocol::TunnelScope,
    pub filter: String,
    /// The UDP ports of VXLAN and GENEVE.
    pub decap: crate::session::tunnel::Decap,
}

/// Counters of one capture.
#[derive(Debug, Default)]
pub struct Stats {
    received: AtomicU64,
    written: AtomicU64,
    bytes_written: AtomicU64,
    dropped_rate_limit: AtomicU64,
    dropped_kernel: AtomicU64,
    dropped_interface: AtomicU64,
    segments: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> CaptureStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CaptureStats {
            received: get(&self.received),
            written: get(&self.written),
            bytes_written: get(&self.bytes_written),
            dropped_rate_limit: get(&self.dropped_rate_limit),
            dropped_kernel: get(&self.dropped_kernel),
            dropped_interface: get(&self.dropped_interface),
            segments: get(&self.segments),
        }
    }
}

/// How a capture ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub reason: StopReason,
    pub error: Option<String>,
    pub stats: CaptureStats,
    pub ended_at: Timestamp,
    /// The capture's sessions (counts only) and its sealed `sessions.json.age`.
    pub sessions: Option<SessionsSummary>,
    pub sessions_file: Option<SealedSegment>,
}

/// Asks a running capture to stop.
#[derive(Debug, Clone)]
pub struct StopHandle {
    requested: Arc<Mutex<Option<StopReason>>>,
    /// Set with `requested`; checked between packet batches without taking the lock.
    flag: Arc<AtomicBool>,
    wake: Arc<UnixStream>,
}

impl StopHandle {
    /// Stops the capture with `reason` (the first reason given wins).
    pub fn stop(&self, reason: StopReason) {
        let mut r = self.requested.lock().unwrap_or_else(|p| p.into_inner());
        r.get_or_insert(reason);
        drop(r);
        self.flag.store(true, Ordering::Release);
        let _ = (&*self.wake).write(&[1]);
    }

    fn is_requested(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    fn requested(&self) -> Option<StopReason> {
        *self.requested.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running capture.
#[derive(Debug)]
pub struct Worker {
    stop: StopHandle,
    stats: Arc<Stats>,
    thread: Option<JoinHandle<()>>,
    /// The link type libpcap reports for the interface.
    pub linktype: i32,
    pub linktype_name: String,
}

impl Worker {
    /// Opens the device (errors are returned here, before anything runs), then starts the
    /// capture thread. Sealed segments go to `announce`; the outcome to the returned receiver.
    pub fn start(
        spec: CaptureSpec,
        spool: Spool,
        announce: mpsc::Sender<SegmentInfo>,
    ) -> Result<(Worker, oneshot::Receiver<Outcome>), CaptureError> {
        let opened = device::open(&DeviceOptions {
            interface: &spec.interface,
            snaplen: spec.limits.snaplen,
            buffer_size: spec.buffer_size,
            promiscuous: spec.promiscuous,
            immediate: spec.immediate,
            filter: &spec.filter,
        })?;
        let inner = match &spec.inner {
            Some(i) => Some(InnerFilter::new(i.scope, &i.filter, i.decap.clone())?),
            None => None,
        };
        let (wake_tx, wake_rx) = UnixStream::pair().map_err(CaptureError::Thread)?;
        wake_rx
            .set_nonblocking(true)
            .map_err(CaptureError::Thread)?;
        let stop = StopHandle {
            requested: Arc::new(Mutex::new(None)),
            flag: Arc::new(AtomicBool::new(false)),
            wake: Arc::new(wake_tx),
        };
        let stats = Arc::new(Stats::default());
        let recorder = spec
            .sessions
            .clone()
            .map(|s| Recorder::new(s, spool.clone(), &spec.id));
        let writer = RotatingWriter::new(
            spool,
            WriterConfig {
                capture_id: spec.id.clone(),
                linktype: opened.linktype.0 as u32,
                snaplen: spec.limits.snaplen,
                nanos: opened.nanos,
                rotate_size: spec.rotate_size,
                rotate_interval: spec.rotate_interval,
            },
            announce,
        )?;
        let linktype = opened.linktype.0;
        let linktype_name = opened
            .linktype
            .get_name()
            .unwrap_or_else(|_| linktype.to_string());
        let (done_tx, done_rx) = oneshot::channel();
        let run = Run {
            spec,
            inner,
            recorder,
            stop: stop.clone(),
            stats: stats.clone(),
            wake: wake_rx,
        };
        let thread = std::thread::Builder::new()
            .name(format!("capture-{}", short(&run.spec.id)))
            .spawn(move || {
                let outcome = run.run(opened, writer);
                let _ = done_tx.send(outcome);
            })
            .map_err(CaptureError::Thread)?;
        Ok((
            Worker {
                stop,
                stats,
                thread: Some(thread),
                linktype,
                linktype_name,
            },
            done_rx,
        ))
    }

    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    pub fn stats(&self) -> CaptureStats {
        self.stats.snapshot()
    }

    /// Waits for the thread to end (after its outcome was sent).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Thread names are limited to 15 bytes; a UUID v7's tail is its random part.
fn short(id: &CaptureId) -> &str {
    let id = id.as_str();
    &id[id.len().saturating_sub(7)..]
}

struct Run {
    spec: CaptureSpec,
    inner: Option<InnerFilter>,
    recorder: Option<Recorder>,
    stop: StopHandle,
    stats: Arc<Stats>,
    wake: UnixStream,
}

/// What a capture's packets go through: the rate limit (and its kernel side), the session
/// recorder and the rotating writer.
struct Sink {
    writer: RotatingWriter,
    rate: RateLimiter,
    /// The kernel side of the rate limit, while the capture has one and the kernel takes it.
    gate: Option<Gate>,
    recorder: Option<Recorder>,
    /// The request's filter inside its tunnel: carrier packets it refuses are not received.
    inner: Option<InnerFilter>,
    linktype: u32,
    /// Whether timestamps come in nanoseconds (else microseconds).
    nanos: bool,
}

/// Per-batch state of the packet handler.
struct Batch<'a> {
    sink: &'a mut Sink,
    stats: &'a Stats,
    limits: &'a EffectiveLimits,
    /// A packet was refused for the rate limit: the gate should close.
    over_limit: bool,
    stop: Option<StopReason>,
    error: Option<SpoolError>,
    /// Packets captured after this time (ns) are ignored: the capture had already stopped.
    cutoff_ns: Option<u64>,
    /// Counts not yet added to `stats`: one atomic add per counter and dispatch, not per
    /// packet.
    pending: Pending,
    /// `stats.written` and `stats.bytes_written` when the pending counts started.
    written_before: u64,
    bytes_before: u64,
}

#[derive(Debug, Default)]
struct Pending {
    received: u64,
    written: u64,
    bytes: u64,
    dropped_rate_limit: u64,
}

/// How a capture that cannot write stops.
fn stop_for(e: &SpoolError) -> StopReason {
    if e.is_disk_full() {
        StopReason::DiskFull
    } else {
        StopReason::Error
    }
}

impl<'a> Batch<'a> {
    fn new(sink: &'a mut Sink, run: &'a Run, cutoff_ns: Option<u64>) -> Self {
        Batch {
            sink,
            stats: &run.stats,
            limits: &run.spec.limits,
            over_limit: false,
            stop: None,
            error: None,
            cutoff_ns,
            pending: Pending::default(),
            written_before: run.stats.written.load(Ordering::Relaxed),
            bytes_before: run.stats.bytes_written.load(Ordering::Relaxed),
        }
    }

    /// Packets written so far, published or not.
    fn written(&self) -> u64 {
        self.written_before + self.pending.written
    }

    /// Adds the pending counts to the capture's stats.
    fn publish(&mut self) {
        let p = std::mem::take(&mut self.pending);
        let add = |a: &AtomicU64, n: u64| {
            if n > 0 {
                a.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(&self.stats.received, p.received);
        add(&self.stats.written, p.written);
        add(&self.stats.bytes_written, p.bytes);
        add(&self.stats.dropped_rate_limit, p.dropped_rate_limit);
        self.written_before += p.written;
        self.bytes_before += p.bytes;
        self.stats
            .segments
            .store(self.sink.writer.sealed(), Ordering::Relaxed);
    }

    fn packet(&mut self, header: &pcap::PacketHeader, data: &[u8]) {
        if self.stop.is_some() {
            return;
        }
        let ts_sec = header.ts.tv_sec as u64;
        let ts_frac = header.ts.tv_usec as u64;
        let ts_ns = ts_sec * 1_000_000_000
            + if self.sink.nanos {
                ts_frac
            } else {
                ts_frac * 1000
            };
        if self.cutoff_ns.is_some_and(|c| ts_ns > c) {
            return;
        }
        if let Some(inner) = &self.sink.inner
            && !inner.matches(self.sink.linktype, data)
        {
            return;
        }
        self.pending.received += 1;
        if self.sink.gate.is_some() && header.caplen < header.len.min(self.limits.snaplen) {
            // Arrived through the closed gate: over the limit, and never written.
            self.pending.dropped_rate_limit += 1;
            return;
        }
        if let Some(r) = self.sink.recorder.as_mut() {
            r.packet(self.sink.linktype, ts_ns, data, header.len);
        }
        if !self.sink.rate.allow(ts_ns, data.len() as u64) {
            self.pending.dropped_rate_limit += 1;
            self.over_limit = true;
            return;
        }
        if let Err(e) = self
            .sink
            .writer
            .write(ts_sec as u32, ts_frac as u32, header.len, data)
        {
            self.stop = Some(stop_for(&e));
            self.error = Some(e);
            return;
        }
        self.pending.written += 1;
        self.pending.bytes += data.len() as u64;
        let written = self.written();
        let bytes = self.bytes_before + self.pending.bytes;
        if self.limits.max_packets.is_some_and(|max| written >= max) {
            self.stop = Some(StopReason::Packets);
        } else if self.limits.max_bytes.is_some_and(|max| bytes >= max) {
            self.stop = Some(StopReason::Bytes);
        }
    }
}

impl Run {
    /// The capture's life: the loop until a stop condition, the last kernel block, the seal of
    /// the open segment, and the outcome.
    fn run(mut self, opened: Opened, writer: RotatingWriter) -> Outcome {
        let Opened {
            mut capture,
            nanos,
            linktype,
        } = opened;
        let limits = self.spec.limits;
        let rate = RateLimiter::new(limits.max_pps, limits.max_bps, limits.snaplen);
        // The gated program keeps one byte of a packet, too few for the inner filter to read.
        let gate = if rate.is_unlimited() || self.inner.is_some() {
            None
        } else {
            Gate::new(&capture, &self.spec.filter, linktype)
        };
        let mut sink = Sink {
            writer,
            rate,
            gate,
            recorder: self.recorder.take(),
            inner: self.inner.take(),
            linktype: linktype.0 as u32,
            nanos,
        };
        info!(capture = %self.spec.id, interface = %self.spec.interface, filter = %self.spec.filter, "Capture started.");
        let (reason, mut error) = self.capture_loop(&mut capture, &mut sink);
        let stopped_at = Timestamp::now();
        if matches!(
            reason,
            StopReason::Stopped
                | StopReason::Shutdown
                | StopReason::AuthorizationEnded
                | StopReason::Duration
        ) && let Some(e) = self.final_drain(&mut capture, &mut sink, stopped_at)
        {
            error.get_or_insert(e);
        }
        self.read_kernel_stats(&mut capture);
        let Sink {
            writer, recorder, ..
        } = sink;
        if let Err(e) = self.seal(writer, reason) {
            error.get_or_insert(e);
        }
        self.outcome(reason, error, stopped_at, recorder)
    }

    /// Reads packets until a stop is requested or a limit, the deadline or an error ends the
    /// capture; rotates on time, reads the kernel's counters, and opens and closes the
    /// rate-limit gate on the way.
    fn capture_loop(
        &self,
        capture: &mut Capture<Active>,
        sink: &mut Sink,
    ) -> (StopReason, Option<String>) {
        let deadline = Instant::now() + self.spec.limits.max_duration;
        // When the closed gate opens again.
        let mut reopen_at: Option<Instant> = None;
        let mut next_stats = Instant::now() + STATS_INTERVAL;
        loop {
            if let Some(r) = self.stop.requested() {
                return (r, None);
            }
            let now = Instant::now();
            if now >= deadline {
                return (StopReason::Duration, None);
            }
            if now >= sink.writer.next_rotation()
                && let Err(e) = sink.writer.rotate()
            {
                return (stop_for(&e), Some(e.to_string()));
            }
            if now >= next_stats {
                self.read_kernel_stats(capture);
                next_stats = now + STATS_INTERVAL;
            }
            if reopen_at.is_some_and(|t| now >= t) {
                reopen_at = None;
                self.set_gate(&mut sink.gate, capture, false);
            }
            let wake_at = deadline
                .min(sink.writer.next_rotation())
                .min(next_stats)
                .min(reopen_at.unwrap_or(deadline));
            if let Err(e) = self.wait(capture, wake_at) {
                return (StopReason::Error, Some(format!("poll failed: {e}")));
            }
            let mut batch = Batch::new(sink, self, None);
            if let Err(e) = drain(capture, &mut batch, wake_at, Some(&self.stop)) {
                return (
                    StopReason::Error,
                    Some(format!("reading packets failed: {e}")),
                );
            }
            if let Some(r) = batch.stop {
                return (r, batch.error.map(|e| e.to_string()));
            }
            let over_limit = batch.over_limit;
            if let Some(r) = sink.recorder.as_mut() {
                r.flush();
            }
            if over_limit && sink.gate.as_ref().is_some_and(|g| !g.is_closed()) {
                self.set_gate(&mut sink.gate, capture, true);
                // Open again when the bucket is half full, not full: packets already in the
                // ring arrive truncated for a while after the gate opens, and tokens that
                // overflow a full bucket meanwhile would be lost (the written rate fell up to
                // 15% short of the limit).
                reopen_at = Some(Instant::now() + sink.rate.until_full() / 2);
            }
        }
    }

    /// Packets that arrived before the stop may still sit in a kernel block that has not been
    /// handed over yet; collects them, and nothing that came later.
    fn final_drain(
        &self,
        capture: &mut Capture<Active>,
        sink: &mut Sink,
        stopped_at: Timestamp,
    ) -> Option<String> {
        let cutoff = u64::try_from(stopped_at.as_nanosecond()).unwrap_or(0);
        let until = Instant::now() + FINAL_DRAIN;
        while Instant::now() < until {
            if self.wait(capture, until).is_err() {
                return None;
            }
            let mut batch = Batch::new(sink, self, Some(cutoff));
            let drained = drain(capture, &mut batch, until, None);
            if drained.is_err() || batch.stop.is_some() {
                return batch.error.map(|e| e.to_string());
            }
        }
        None
    }

    /// Seals the open segment; after a write failure it is dropped instead (what was sealed
    /// before stays).
    fn seal(&self, writer: RotatingWriter, reason: StopReason) -> Result<(), String> {
        let finished = if matches!(reason, StopReason::DiskFull | StopReason::Error) {
            Ok(writer.abandon())
        } else {
            writer.finish()
        };
        match finished {
            Ok(sealed) => {
                self.stats.segments.store(sealed, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                warn!(capture = %self.spec.id, error = %e, "Cannot seal the last segment.");
                Err(e.to_string())
            }
        }
    }

    /// How the capture ended, with its session records sealed.
    fn outcome(
        &self,
        reason: StopReason,
        error: Option<String>,
        stopped_at: Timestamp,
        recorder: Option<Recorder>,
    ) -> Outcome {
        let (sessions, sessions_file) = match recorder.map(Recorder::finish) {
            Some((summary, file)) => (Some(summary), file),
            None => (None, None),
        };
        let stats = self.stats.snapshot();
        info!(capture = %self.spec.id, reason = ?reason, written = stats.written, segments = stats.segments, "Capture stopped.");
        Outcome {
            reason,
            error,
            stats,
            ended_at: stopped_at,
            sessions,
            sessions_file,
        }
    }

    /// Waits until the capture is readable, a stop is requested, or `until`.
    fn wait(&self, capture: &Capture<Active>, until: Instant) -> nix::Result<()> {
        let ms = until.saturating_duration_since(Instant::now()).as_millis();
        // Round up, so the loop does not spin just before a deadline.
        let timeout = PollTimeout::from(u16::try_from(ms + 1).unwrap_or(u16::MAX));
        let mut fds = [
            PollFd::new(capture.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.wake.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
        let mut sink = [0u8; 64];
        while (&self.wake).read(&mut sink).is_ok_and(|n| n > 0) {}
        Ok(())
    }

    /// Closes or opens the rate-limit gate; if the kernel refuses, the capture goes on with the
    /// user-space limit alone.
    fn set_gate(&self, gate: &mut Option<Gate>, capture: &Capture<Active>, close: bool) {
        let Some(g) = gate else {
            return;
        };
        let result = if close {
            g.close(capture.as_fd())
        } else {
            g.open(capture.as_fd())
        };
        if let Err(e) = result {
            warn!(capture = %self.spec.id, error = %e, "Cannot swap the BPF program; rate limiting in user space only.");
            if g.is_closed() {
                let _ = g.open(capture.as_fd());
            }
            *gate = None;
        }
    }

    fn read_kernel_stats(&self, capture: &mut Capture<Active>) {
        if let Ok(s) = capture.stats() {
            self.stats
                .dropped_kernel
                .store(u64::from(s.dropped), Ordering::Relaxed);
            self.stats
                .dropped_interface
                .store(u64::from(s.if_dropped), Ordering::Relaxed);
        }
    }
}

/// Reads every packet available now, in batches, until none is left, a limit is hit, a stop
/// is requested, or `until` (the next deadline, rotation or stats read) comes.
fn drain(
    capture: &mut Capture<Active>,
    batch: &mut Batch<'_>,
    until: Instant,
    stop: Option<&StopHandle>,
) -> Result<(), pcap::Error> {
    loop {
        // Never read more packets than the packet limit still allows.
        let room = batch
            .limits
            .max_packets
            .map(|max| max.saturating_sub(batch.written()).max(1) as usize);
        let count = room.map(|r| r.min(i32::MAX as usize));
        let dispatched = capture.dispatch(count, |packet| batch.packet(packet.header, packet.data));
        batch.publish();
        let n = dispatched?;
        if n == 0
            || batch.stop.is_some()
            || stop.is_some_and(StopHandle::is_requested)
            || Instant::now() >= until
        {
            return Ok(());
        }
    }
}
