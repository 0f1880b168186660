//! Prometheus metrics for `GET /metrics`. Counters are updated where things happen; gauges that
//! mirror a state (authorization) are set from that state when scraped.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::authz::{AuthState, AuthStatus};

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
        Metrics {
            registry: Arc::new(registry),
            authorization_state,
            authorization_expires,
            control_requests,
            control_refused_peers,
            config_reloads,
            captures_started,
            captures_stopped,
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

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
