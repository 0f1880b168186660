//! The customer's record: one device's page (its heartbeat, its authorization history, every
//! capture that ran on it and why, never packet content) and the audit trail. Every role may
//! read them.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::TryStreamExt;
use maud::{Markup, html};
use pcap_protocol::capture::Origin;
use pcap_protocol::store::{AuditAction, AuditEntry, Heartbeat};
use pcap_protocol::{RequestId, Serial};
use serde::Deserialize;

use super::Console;
use super::auth::Viewer;
use super::view::{layout, or_error_page, urlencode, when};
use crate::captures::Capture;

/// Audit entries read for one device's page (its history and who asked for its captures).
const DEVICE_HISTORY: usize = 1000;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/devices/{serial}", get(device))
        .route("/audit", get(audit))
}

/// What one device's page shows, read off the async workers.
struct DeviceRecord {
    /// The heartbeat, or why it cannot be read or trusted.
    heartbeat: Result<Option<Heartbeat>, String>,
    history: Vec<AuditEntry>,
    captures: Vec<Capture>,
}

async fn read_device(console: &Console, serial: &Serial) -> anyhow::Result<DeviceRecord> {
    let (heartbeat, history, captures) = futures::join!(
        crate::grants::heartbeat(&console.store, serial),
        crate::audit::entries(
            &console.store,
            Some(serial),
            DEVICE_HISTORY,
            &console.documents,
        ),
        crate::captures::stream(&console.store, Some(serial), true, &console.documents)
            .try_collect::<Vec<Capture>>()
    );
    let heartbeat = heartbeat.map_err(|e| format!("{e:#}"));
    let (history, mut captures) = (history?, captures?);
    captures.sort_by_key(|c| std::cmp::Reverse(c.started_at));
    Ok(DeviceRecord {
        heartbeat,
        history,
        captures,
    })
}

async fn device(
    State(console): State<Arc<Console>>,
    Viewer(session): Viewer,
    Path(serial): Path<String>,
) -> Response {
    let serial = match Serial::parse(&serial) {
        Ok(s) => s,
        Err(e) => return super::view::bad_request(&session, &format!("{e}")),
    };
    let record = match or_error_page(&session, read_device(&console, &serial).await) {
        Ok(r) => r,
        Err(page) => return *page,
    };
    let snapshot = console.fleet.snapshot().await;
    let row = snapshot.rows.iter().find(|r| r.serial == serial.as_str());
    let asked_by = |id: Option<&RequestId>| {
        record
            .history
            .iter()
            .find(|e| e.action == AuditAction::Request && e.request_id.as_ref() == id)
            .map(|e| e.actor.clone())
    };
    let title = match row.and_then(|r| r.name.as_deref()) {
        Some(name) => format!("Device {serial} ({name})"),
        None => format!("Device {serial}"),
    };
    layout(
        &title,
        Some(&session),
        html! {
            h2 { "Authorization" }
            @match row {
                Some(r) => p #grant {
                    "State " strong { (crate::devices::state_text(r)) }
                    @if let Some(p) = r.period { ", period " (p.as_str()) }
                    ", from " (when(r.not_before)) ", expires " (when(r.expires_at))
                    @if let Some(seq) = r.sequence { ", sequence " (seq) }
                },
                None => p { "The store has no grant for this device." },
            }
            h2 { "As the device reports it" }
            @match &record.heartbeat {
                Ok(h) => (heartbeat(h.as_ref())),
                Err(e) => p.error { (e) },
            }
            h2 { "Authorization history" }
            (history(&record.history))
            h2 { "Captures" }
            p { "What ran on this device and why; never packet content." }
            @if record.captures.is_empty() { p { "No capture in the store." } } @else {
                table #captures {
                    thead { tr {
                        th { "Started" } th { "Ended" } th { "Asked by" } th { "Reason" }
                        th { "Interface" } th { "Effective filter" } th { "Limits" }
                        th { "Packets" } th { "Stop reason" }
                    } }
                    tbody {
                        @for c in &record.captures {
                            @match &c.manifest {
                                Some(m) => tr {
                                    td { (when(Some(m.started_at))) }
                                    td { (when(m.ended_at)) }
                                    td { (match m.origin {
                                        Origin::Local => "the device's operator (local)".to_owned(),
                                        Origin::Remote => asked_by(m.request.request_id.as_ref())
                                            .unwrap_or_else(|| "the research team (remote)".to_owned()),
                                    }) }
                                    td { (m.request.reason.as_str())
                                        @if let Some(s) = &m.request.subject { ": " (s) } }
                                    td { (m.interface) }
                                    td { code { (m.effective_filter) } }
                                    td { (limits(&m.limits)) }
                                    td { (m.stats.written) }
                                    td { (m.stop_reason.map_or("-", |r| r.as_str())) }
                                },
                                None => tr {
                                    td colspan="9" {
                                        "Capture " (c.id) ": "
                                        (c.problem.as_deref().unwrap_or("not complete yet (no manifest in the store)"))
                                    }
                                },
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

fn limits(l: &pcap_protocol::capture::EffectiveLimits) -> String {
    let mut parts = vec![format!(
        "{} max",
        pcap_protocol::units::format_duration(l.max_duration)
    )];
    parts.extend(l.max_packets.map(|p| format!("{p} packets")));
    parts.extend(l.max_bytes.map(|b| format!("{b} bytes")));
    parts.push(format!("snaplen {}", l.snaplen));
    parts.extend(l.max_pps.map(|p| format!("{p} pps")));
    parts.extend(l.max_bps.map(|b| format!("{b} B/s")));
    parts.join(", ")
}

fn heartbeat(h: Option<&Heartbeat>) -> Markup {
    let Some(h) = h else {
        return html! { p { "The device has never reported to the store." } };
    };
    html! {
        table #heartbeat {
            tr { th { "Reported" } td { (when(Some(h.time))) } }
            tr { th { "Agent" } td { (h.agent_version) } }
            tr { th { "libpcap" } td { (h.libpcap_version) } }
            tr { th { "Authorization" } td {
                (h.authorization.state.as_str())
                @if let Some(r) = &h.authorization.reason { ": " (r) }
            } }
            tr { th { "Captures" } td { (h.captures.running) " running, " (h.captures.total) " in all" } }
            tr { th { "Spool" } td {
                (h.spool.capture_bytes) " bytes of captures, " (h.spool.unuploaded_bytes) " not uploaded"
                @if h.spool.refusing_new_segments { strong.error { ", full: refusing new segments" } }
            } }
            tr { th { "Uploads" } td {
                (h.uploads.uploaded_files) " files, " (h.uploads.uploaded_bytes) " bytes, "
                (h.uploads.failed_attempts) " failed attempts"
                @if let Some(e) = &h.uploads.permanent_error { span.error { "; " (e) } }
            } }
            tr { th { "Last error" } td {
                @match &h.last_error {
                    Some(e) => { (when(Some(e.time))) " " (e.source) ": " (e.message) },
                    None => "-",
                }
            } }
            @if let Some(c) = &h.channel {
                tr { th { "Requests" } td {
                    @if c.requests { "taken, read every " (c.poll_interval_seconds) " s" } @else { "not taken" }
                    @if let Some(d) = &c.doorbell { "; doorbell " (d.state.as_str()) }
                } }
            }
        }
    }
}

/// Audit entries as a table, newest first.
fn history(entries: &[AuditEntry]) -> Markup {
    html! {
        @if entries.is_empty() { p { "No entry." } } @else {
            table.audit {
                thead { tr { th { "Time" } th { "Who" } th { "Action" } th { "Device" } th { "Sequence" } th { "Detail" } } }
                tbody {
                    @for e in entries {
                        tr {
                            td { (when(Some(e.time))) }
                            td { (e.actor) }
                            td { (e.action.as_str()) }
                            td { @if let Some(s) = &e.serial { a href=(format!("/devices/{}", urlencode(s.as_str()))) { (s) } } @else { "-" } }
                            td { (e.sequence.map_or("-".to_owned(), |s| s.to_string())) }
                            td { (crate::audit::detail(e)) }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    serial: String,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

async fn audit(
    State(console): State<Arc<Console>>,
    Viewer(session): Viewer,
    Query(q): Query<AuditQuery>,
) -> Response {
    let serial = match q.serial.trim() {
        "" => None,
        s => match Serial::parse(s) {
            Ok(s) => Some(s),
            Err(e) => return super::view::bad_request(&session, &format!("{e}")),
        },
    };
    let limit = q.limit.clamp(1, 10_000);
    let read =
        crate::audit::entries(&console.store, serial.as_ref(), limit, &console.documents).await;
    let entries = match or_error_page(&session, read) {
        Ok(e) => e,
        Err(page) => return *page,
    };
    layout(
        "Audit",
        Some(&session),
        html! {
            form method="get" action="/audit" {
                input name="serial" value=(q.serial) placeholder="serial";
                button type="submit" { "Filter" }
            }
            p { "Every change made through the console or the CLI, newest first." }
            (history(&entries))
            @if entries.len() == limit {
                p { a href=(format!("/audit?serial={}&limit={}", urlencode(&q.serial), limit * 2)) { "More" } }
            }
        },
    )
    .into_response()
}
