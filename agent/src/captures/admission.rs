//! Admission: whether a capture request may start now, answered in the domain's words. Every
//! request passes the same checks, in this order, whether it came over the control socket or
//! from the store: authorized now; the request well formed, for this device and not expired;
//! the interface allowed and present; the filter compiling (alone, and with the agent's
//! exclusions); every limit within its ceiling; a free capture slot; room in the spool.
//!
//! The answer is a [`StartRefused`]; only the control socket turns it into an HTTP status, and
//! the request feed into a result document.

use jiff::Timestamp;
use pcap_capture::session::tunnel::Decap;
use pcap_capture::{InnerSpec, device, filter, limits};
use pcap_config::Config;
use pcap_protocol::{
    AuthState, CaptureRequest, EffectiveLimits, Refusal, RefusalCode, Serial, TunnelKind,
};
use pcap_spool::{Journal, SpoolGate};

use super::exclusions::exclusions;
use crate::authz::AuthStatus;

/// Why a capture did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartRefused {
    #[error(
        "this device is {state}{}; captures need a valid grant from the customer",
        reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
    )]
    NotAuthorized {
        state: AuthState,
        reason: Option<String>,
    },
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the request is for device {requested}, this is {this}")]
    WrongDevice { requested: Serial, this: Serial },
    #[error("the request was valid until {not_after}")]
    RequestExpired { not_after: Timestamp },
    #[error(
        "interface {interface} is not in capture.interfaces ({}); the operator allows interfaces in the config",
        allowed.join(", ")
    )]
    InterfaceNotAllowed {
        interface: String,
        allowed: Vec<String>,
    },
    #[error("there is no interface {interface} on this host")]
    InterfaceNotFound { interface: String },
    /// libpcap's own message.
    #[error("{message}")]
    FilterInvalid { message: String },
    /// Names the limit and its ceiling.
    #[error("{message}")]
    LimitExceedsCeiling { message: String },
    #[error(
        "{running} captures are running, the most capture.max_concurrent allows; stop one or wait"
    )]
    TooManyCaptures { running: usize },
    #[error(
        "the spool is full ({why}); captures can start again once uploads free it (see pcapctl spool)"
    )]
    SpoolFull { why: String },
    #[error("{message}")]
    CaptureFailed { message: String },
}

impl StartRefused {
    pub fn code(&self) -> RefusalCode {
        match self {
            StartRefused::NotAuthorized { .. } => RefusalCode::NotAuthorized,
            StartRefused::InvalidRequest(_) => RefusalCode::InvalidRequest,
            StartRefused::WrongDevice { .. } => RefusalCode::WrongDevice,
            StartRefused::RequestExpired { .. } => RefusalCode::RequestExpired,
            StartRefused::InterfaceNotAllowed { .. } => RefusalCode::InterfaceNotAllowed,
            StartRefused::InterfaceNotFound { .. } => RefusalCode::InterfaceNotFound,
            StartRefused::FilterInvalid { .. } => RefusalCode::FilterInvalid,
            StartRefused::LimitExceedsCeiling { .. } => RefusalCode::LimitExceedsCeiling,
            StartRefused::TooManyCaptures { .. } => RefusalCode::TooManyCaptures,
            StartRefused::SpoolFull { .. } => RefusalCode::SpoolFull,
            StartRefused::CaptureFailed { .. } => RefusalCode::CaptureFailed,
        }
    }

    /// The code with the message, as results and the control socket carry them.
    pub fn refusal(&self) -> Refusal {
        Refusal::new(self.code(), self.to_string())
    }
}

/// What admission settled: the filter to install and the limits to run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The request's filter with the agent's exclusions; for a request scoped to a tunnel,
    /// the tunnel's carrier packets with the exclusions.
    pub effective_filter: String,
    /// For a request scoped to a tunnel with a filter: that filter, applied by the agent to the
    /// frames inside.
    pub inner: Option<InnerSpec>,
    pub limits: EffectiveLimits,
}

/// The state admission checks against, besides the config and the request.
#[derive(Debug, Clone, Copy)]
pub struct Capacity<'a> {
    pub running: usize,
    pub gate: &'a SpoolGate,
    pub journal: &'a Journal,
}

/// Checks `request` against everything; see the module docs.
pub fn admit(
    config: &Config,
    auth: &AuthStatus,
    request: &CaptureRequest,
    now: Timestamp,
    capacity: Capacity<'_>,
) -> Result<Admitted, StartRefused> {
    authorized(auth)?;
    well_formed(config, request, now)?;
    interface(config, &request.interface)?;
    let (effective_filter, inner) = compile(config, request)?;
    let limits = limits::resolve(
        &request.limits,
        &config.capture.defaults,
        &config.capture.ceilings,
    )
    .map_err(|e| StartRefused::LimitExceedsCeiling { message: e.message })?;
    room(config, capacity)?;
    Ok(Admitted {
        effective_filter,
        inner,
        limits,
    })
}

fn authorized(auth: &AuthStatus) -> Result<(), StartRefused> {
    if auth.is_authorized() {
        return Ok(());
    }
    Err(StartRefused::NotAuthorized {
        state: auth.state,
        reason: auth.reason.clone(),
    })
}

fn well_formed(
    config: &Config,
    request: &CaptureRequest,
    now: Timestamp,
) -> Result<(), StartRefused> {
    request.check().map_err(StartRefused::InvalidRequest)?;
    if let Some(serial) = &request.serial
        && serial != &config.device.serial
    {
        return Err(StartRefused::WrongDevice {
            requested: serial.clone(),
            this: config.device.serial.clone(),
        });
    }
    match request.not_after {
        Some(not_after) if now > not_after => Err(StartRefused::RequestExpired { not_after }),
        _ => Ok(()),
    }
}

fn interface(config: &Config, interface: &str) -> Result<(), StartRefused> {
    if !config.capture.interfaces.iter().any(|i| i == interface) {
        return Err(StartRefused::InterfaceNotAllowed {
            interface: interface.to_owned(),
            allowed: config.capture.interfaces.clone(),
        });
    }
    if !device::exists(interface) {
        return Err(StartRefused::InterfaceNotFound {
            interface: interface.to_owned(),
        });
    }
    Ok(())
}

/// Compiles the requested filter alone (so that its own mistakes are reported as such), then
/// with the exclusions; returns the effective filter. A request scoped to a tunnel installs the
/// tunnel's carrier filter instead, and its own filter (compiled for the frames inside) becomes
/// the inner filter.
fn compile(
    config: &Config,
    request: &CaptureRequest,
) -> Result<(String, Option<InnerSpec>), StartRefused> {
    let invalid = |message: String| StartRefused::FilterInvalid { message };
    let linktype = device::linktype_of(&request.interface);
    let (kernel, inner) = match &request.tunnel {
        None => {
            filter::validate(&request.filter, linktype).map_err(|e| invalid(e.to_string()))?;
            (request.filter.clone(), None)
        }
        Some(scope) => {
            let tunnels = &config.sessions.tunnels;
            let ports = match scope.kind {
                TunnelKind::Vxlan => &tunnels.vxlan_ports,
                TunnelKind::Geneve => &tunnels.geneve_ports,
                TunnelKind::Gre => &[][..],
            };
            let carrier = filter::carrier(scope, ports, linktype).map_err(invalid)?;
            let inner = (!request.filter.trim().is_empty()).then(|| InnerSpec {
                scope: *scope,
                filter: request.filter.clone(),
                decap: Decap::from(tunnels),
            });
            if let Some(i) = &inner {
                filter::InnerFilter::new(i.scope, &i.filter, i.decap.clone()).map_err(|e| {
                    invalid(format!(
                        "the filter for the traffic inside {scope} does not compile: {e}"
                    ))
                })?;
            }
            (carrier, inner)
        }
    };
    let effective = filter::effective(&kernel, &exclusions(config));
    filter::compile(&effective, linktype).map_err(|e| {
        invalid(format!(
            "the filter with the agent's exclusions (capture.exclude, the store) does not compile: {e}"
        ))
    })?;
    Ok((effective, inner))
}

fn room(config: &Config, capacity: Capacity<'_>) -> Result<(), StartRefused> {
    if capacity.running >= config.capture.max_concurrent {
        return Err(StartRefused::TooManyCaptures {
            running: capacity.running,
        });
    }
    match capacity.gate.refusal(Some(capacity.journal)) {
        Some(why) => Err(StartRefused::SpoolFull { why }),
        None => Ok(()),
    }
}
