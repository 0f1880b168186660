//! Prometheus metrics for `GET /metrics`. Counters are updated where things happen; gauges that
//! mirror a state (authorization) are set from that state when scraped.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use pcap_spool::State;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use pcap_protocol::StopReason;

use crate::authz::{AuthState, AuthStatus};
use crate::captures::{CaptureRecord, CaptureState};
use crate::spool::SpoolApi;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: &'static str,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    pub version: &'static str,
}

/// Every metric the agent exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub authorization_state: Family<StateLabel, Gauge>,
    pub authorization_expires: Gauge,
    pub control_requests: Family<RequestLabels, Counter>,
    pub control_refused_peers: Counter,
    pub config_reloads: Family<ResultLabel, Counter>,
    pub captures_started: Counter,
    pub captures_stopped: Family<ReasonLabel, Counter>,
    captures_running: Gauge,
    capture_packets: Family<OutcomeLabel, Counter>,
    spool: SpoolMetrics,
}

/// Upload and reaper metrics, mirrored from their tasks' counters when scraped.
#[derive(Debug, Clone, Default)]
struct SpoolMetrics {
    uploaded_files: Counter,
    uploaded_bytes: Counter,
    upload_failures: Counter,
    manifests: Counter,
    upload_permanent_error: Gauge,
    reaped: Family<ReasonLabel, Counter>,
    refusing: Gauge,
    spool_bytes: Gauge,
    spool_files: Family<StateLabel, Gauge>,
}

impl SpoolMetrics {
    fn register(&self, registry: &mut Registry) {
        let counters: [(&str, &str, &Counter); 4] = [
            (
                "uploaded_files",
                "Files uploaded to the store (segments, session records, manifests)",
                &self.uploaded_files,
            ),
            (
                "uploaded_bytes",
                "Bytes uploaded to the store",
                &self.uploaded_bytes,
            ),
            (
                "upload_failures",
                "Upload attempts that failed (each is retried or held back)",
                &self.upload_failures,
            ),
            (
                "captures_completed",
                "Captures whose manifest reached the store",
                &self.manifests,
            ),
        ];
        for (name, help, metric) in counters {
            registry.register(name, help, metric.clone());
        }
        registry.register(
            "upload_permanent_error",
            "1 while uploads fail in a way only an operator can fix (credentials, bucket)",
            self.upload_permanent_error.clone(),
        );
        registry.register(
            "reaped_files",
            "Spool files deleted by the reaper, by reason (uploaded, expired, purged, quota)",
            self.reaped.clone(),
        );
        registry.register(
            "spool_refusing",
            "1 while new segments are refused because the spool is full",
            self.refusing.clone(),
        );
        registry.register(
            "spool_bytes",
            "Bytes in the spool",
            self.spool_bytes.clone(),
        );
        registry.register(
            "spool_files",
            "Files the spool journal knows, by state",
            self.spool_files.clone(),
        );
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pcap_agent");
        let build_info = Family::<VersionLabel, Gauge>::default();
        build_info
            .get_or_create(&VersionLabel {
                version: crate::VERSION,
            })
            .set(1);
        registry.register(
            "build_info",
            "Build information of the running agent",
            build_info,
        );
        let authorization_state = Family::<StateLabel, Gauge>::default();
        registry.register(
            "authorization_state",
            "1 for the current authorization state, 0 for the others",
            authorization_state.clone(),
        );
        let authorization_expires = Gauge::default();
        registry.register(
            "authorization_expires_timestamp_seconds",
            "Unix time at which the current grant expires (0: no grant or no expiry)",
            authorization_expires.clone(),
        );
        let control_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "control_requests",
            "Control socket requests by endpoint and HTTP status",
            control_requests.clone(),
        );
        let control_refused_peers = Counter::default();
        registry.register(
            "control_refused_peers",
            "Control socket connections refused because the peer is not allowed",
            control_refused_peers.clone(),
        );
        let config_reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "config_reloads",
            "Config reloads by result",
            config_reloads.clone(),
        );
        let captures_started = Counter::default();
        registry.register(
            "captures_started",
            "Captures started",
            captures_started.clone(),
        );
        let captures_stopped = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "captures_stopped",
            "Captures stopped, by stop reason",
            captures_stopped.clone(),
        );
        // Every label value a counter can take is there from the start at 0, so that a rule's
        // increase() sees the first event as one (a series that appears at 1 shows none).
        for result in ["applied", "rejected"] {
            let _ = config_reloads.get_or_create(&ResultLabel { result });
        }
        for reason in StopReason::ALL {
            let _ = captures_stopped.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            });
        }
        let captures_running = Gauge::default();
        registry.register(
            "captures_running",
            "Captures running now",
            captures_running.clone(),
        );
        let capture_packets = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "capture_packets",
            "Packets of every capture the agent has a record of, by outcome (written, \
             dropped_rate_limit, dropped_kernel: the capture buffer was full, dropped_interface)",
            capture_packets.clone(),
        );
        let spool = SpoolMetrics::default();
        spool.register(&mut registry);
        Metrics {
            spool,
            registry: Arc::new(registry),
            authorization_state,
            authorization_expires,
            control_requests,
            control_refused_peers,
            config_reloads,
            captures_started,
            captures_stopped,
            captures_running,
            capture_packets,
        }
    }

    /// Sets the gauges that mirror the authorization status.
    pub fn observe_authorization(&self, status: &AuthStatus) {
        for state in AuthState::ALL {
            self.authorization_state
                .get_or_create(&StateLabel {
                    state: state.as_str(),
                })
                .set(i64::from(state == status.state));
        }
        let expires = status
            .grant
            .as_ref()
            .and_then(|g| g.expires_at)
            .map_or(0, |t| t.as_second());
        self.authorization_expires.set(expires);
    }

    /// Mirrors the uploader's and the reaper's counters and the spool's state.
    /// The capture gauges and packet totals, from the capture records (running ones live).
    pub fn observe_captures(&self, captures: &[CaptureRecord]) {
        let running = captures
            .iter()
            .filter(|c| c.state == CaptureState::Running)
            .count();
        self.captures_running
            .set(i64::try_from(running).unwrap_or(i64::MAX));
        let sum = |f: fn(&CaptureRecord) -> u64| captures.iter().map(f).sum::<u64>();
        for (outcome, n) in [
            ("written", sum(|c| c.stats.written)),
            ("dropped_rate_limit", sum(|c| c.stats.dropped_rate_limit)),
            ("dropped_kernel", sum(|c| c.stats.dropped_kernel)),
            ("dropped_interface", sum(|c| c.stats.dropped_interface)),
        ] {
            self.capture_packets
                .get_or_create(&OutcomeLabel { outcome })
                .inner()
                .store(n, Ordering::Relaxed);
        }
    }

    pub fn observe_spool(&self, spool: &SpoolApi) {
        let m = &self.spool;
        let uploads = spool.uploads.status();
        let reaped = spool.reap_totals.borrow().clone();
        let set = |c: &Counter, v: u64| c.inner().store(v, Ordering::Relaxed);
        set(&m.uploaded_files, uploads.uploaded_files);
        set(&m.uploaded_bytes, uploads.uploaded_bytes);
        set(&m.upload_failures, uploads.failed_attempts);
        set(&m.manifests, uploads.manifests);
        m.upload_permanent_error
            .set(i64::from(uploads.permanent_error.is_some()));
        for (reason, n) in [
            ("uploaded", reaped.deleted_uploaded),
            ("expired", reaped.expired),
            ("purged", reaped.purged),
            ("quota", reaped.dropped_for_quota),
        ] {
            set(&m.reaped.get_or_create(&ReasonLabel { reason }), n);
        }
        m.refusing.set(i64::from(spool.gate.is_refusing()));
        m.spool_bytes
            .set(i64::try_from(reaped.spool_bytes).unwrap_or(i64::MAX));
        let entries = spool.journal.entries();
        for state in State::ALL {
            let n = entries.iter().filter(|e| e.state == state).count();
            m.spool_files
                .get_or_create(&StateLabel {
                    state: state.as_str(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
