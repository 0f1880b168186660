//! The research team's pages (the research role only): the store's captures with filters by
//! device and date, one capture with its files, a capture request (the CLI's `request`) and
//! its result, and the download of a capture decrypted on the server: each file streamed from
//! the store through age to the browser, verified against the manifest (see
//! [`crate::captures::decrypt_verified`]), never held whole in memory.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use futures::TryStreamExt;
use maud::html;
use pcap_protocol::request::cli::CaptureFlags;
use pcap_protocol::store::{Manifest, RequestResult, keys};
use pcap_protocol::units::{parse_duration, parse_size};
use pcap_protocol::{CaptureId, FileName, Reason, RequestId, Serial};
use serde::Deserialize;

use super::Console;
use super::auth::{Posted, Research};
use super::session::Session;
use super::view::{bad_request, error_page, forbidden, layout, or_error_page, urlencode, when};
use crate::captures::{Capture, Source, decrypt_verified, plain_name};

/// Captures on one page of the list.
const PAGE_ROWS: usize = 100;
/// The pcap file header each segment starts with; a joined download keeps only the first.
const PCAP_HEADER: usize = 24;
/// Plain chunks in flight between the decrypting thread and the connection.
const IN_FLIGHT: usize = 8;
/// The reasons a request may give.
const REASONS: [Reason; 3] = [
    Reason::UnknownDevice,
    Reason::UnknownApplication,
    Reason::Other,
];

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/captures", get(list))
        .route("/captures/request", get(request_form).post(request))
        .route("/captures/request/{serial}/{id}", get(result))
        .route("/captures/{serial}/{id}", get(capture))
        .route("/captures/{serial}/{id}/{file}", get(download))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    serial: String,
    /// First day, `YYYY-MM-DD` (UTC).
    #[serde(default)]
    from: String,
    /// Last day, `YYYY-MM-DD` (UTC).
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: usize,
}

/// The start of day `text` (UTC), `None` if empty.
fn day(text: &str, next: bool) -> Result<Option<jiff::Timestamp>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let date: jiff::civil::Date = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a date: write it as YYYY-MM-DD"))?;
    let date = if next {
        date.tomorrow().map_err(|e| e.to_string())?
    } else {
        date
    };
    date.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| Some(z.timestamp()))
        .map_err(|e| e.to_string())
}

async fn list(
    State(console): State<Arc<Console>>,
    Research(session): Research,
    Query(q): Query<ListQuery>,
) -> Response {
    let serial = match q.serial.trim() {
        "" => None,
        s => match Serial::parse(s) {
            Ok(s) => Some(s),
            Err(e) => return bad_request(&session, &e.to_string()),
        },
    };
    let (from, to) = match (day(&q.from, false), day(&q.to, true)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return bad_request(&session, &e),
    };
    let read = crate::captures::stream(&console.store, serial.as_ref(), true, &console.documents)
        .try_collect::<Vec<Capture>>()
        .await;
    let mut captures = match or_error_page(&session, read) {
        Ok(c) => c,
        Err(page) => return *page,
    };
    captures.retain(|c| {
        let t = c.started_at.unwrap_or(c.uploaded_at);
        from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e)
    });
    captures.sort_by(|a, b| {
        b.started_at
            .unwrap_or(b.uploaded_at)
            .cmp(&a.started_at.unwrap_or(a.uploaded_at))
    });
    let pages = captures.len().div_ceil(PAGE_ROWS).max(1);
    let page = q.page.min(pages - 1);
    let link = |page: usize| {
        format!(
            "/captures?serial={}&from={}&to={}&page={page}",
            urlencode(&q.serial),
            urlencode(&q.from),
            urlencode(&q.to)
        )
    };
    layout(
        "Captures",
        Some(&session),
        html! {
            form method="get" action="/captures" {
                input name="serial" value=(q.serial) placeholder="serial";
                " from " input name="from" type="date" value=(q.from);
                " to " input name="to" type="date" value=(q.to);
                " " button type="submit" { "Filter" }
            }
            @if console.request_key.is_some() {
                p { a href="/captures/request" { "Request a capture" } }
            }
            p { (captures.len()) " capture(s), page " (page + 1) " of " (pages) }
            table #captures {
                thead { tr {
                    th { "Started" } th { "Device" } th { "Reason" } th { "Packets" }
                    th { "Bytes" } th { "Complete" } th {}
                } }
                tbody {
                    @for c in captures.iter().skip(page * PAGE_ROWS).take(PAGE_ROWS) {
                        tr {
                            td { (when(c.started_at)) }
                            td { a href=(format!("/devices/{}", urlencode(c.serial.as_str()))) { (c.serial) } }
                            td { (c.reason.map_or("-", Reason::as_str)) }
                            td { (c.packets.map_or("-".to_owned(), |p| p.to_string())) }
                            td { (c.bytes) }
                            td { (if c.complete { "yes" } else { "no" }) }
                            td { a href=(format!("/captures/{}/{}", urlencode(c.serial.as_str()), c.id)) { "Open" } }
                        }
                    }
                }
            }
            p {
                @if page > 0 { a href=(link(page - 1)) { "Previous" } " " }
                @if page + 1 < pages { a href=(link(page + 1)) { "Next" } }
            }
        },
    )
    .into_response()
}

/// The serial and capture id of a path, or the answer to give.
fn ids(session: &Session, serial: &str, id: &str) -> Result<(Serial, CaptureId), Box<Response>> {
    match (Serial::parse(serial), CaptureId::parse(id)) {
        (Ok(s), Ok(i)) => Ok((s, i)),
        (Err(e), _) => Err(Box::new(bad_request(session, &e.to_string()))),
        (_, Err(e)) => Err(Box::new(bad_request(session, &e.to_string()))),
    }
}

/// The manifest of a complete capture; `None` while it is incomplete.
async fn manifest(
    console: &Console,
    serial: &Serial,
    id: &CaptureId,
) -> anyhow::Result<Option<Manifest>> {
    let rel = keys::capture_file(serial, id, &FileName::manifest());
    let m = console.store.document::<Manifest>(&rel).await?;
    if let Some(m) = &m {
        crate::captures::check_manifest(serial, id, m)?;
    }
    Ok(m)
}

async fn capture(
    State(console): State<Arc<Console>>,
    Research(session): Research,
    Path((serial, id)): Path<(String, String)>,
) -> Response {
    let (serial, id) = match ids(&session, &serial, &id) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let m = match manifest(&console, &serial, &id).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            return not_found(
                &session,
                &format!(
                    "Capture {id} of {serial} is not complete (no manifest in the store): its upload may still be under way."
                ),
            );
        }
        Err(e) => return error_page(&session, &format!("{e:#}")),
    };
    let base = format!("/captures/{}/{id}", urlencode(serial.as_str()));
    let segments = m.uploaded().filter(|f| f.name.is_segment()).count();
    let identity = console.identity.is_some();
    layout(
        &format!("Capture {id}"),
        Some(&session),
        html! {
            p {
                "Device " a href=(format!("/devices/{}", urlencode(serial.as_str()))) { (serial) }
                ", " (m.request.reason.as_str())
                @if let Some(s) = &m.request.subject { ": " (s) }
            }
            p { "Interface " (m.interface) ", filter " code { (m.effective_filter) } }
            @if let Some(inner) = &m.inner_filter {
                p { "Inside " (m.request.tunnel.map(|t| t.to_string()).unwrap_or_default())
                    ", filter " code { (inner) } }
            }
            p {
                "From " (when(Some(m.started_at))) " to " (when(m.ended_at)) ", "
                (m.stats.written) " packets written, "
                (m.stats.dropped_rate_limit) " over the rate limit, "
                (m.stats.dropped_kernel) " dropped by the kernel; stopped: "
                (m.stop_reason.map_or("-", |r| r.as_str()))
            }
            @if !identity {
                p.error { "This console was not given the research identity (PCAP_RESEARCH_IDENTITY): it cannot decrypt." }
            }
            table #files {
                thead { tr { th { "File" } th { "Encrypted bytes" } th { "State" } } }
                tbody {
                    @for f in &m.files {
                        tr {
                            td {
                                @if identity && f.state == pcap_protocol::store::FileState::Uploaded {
                                    a href=(format!("{base}/{}", plain_name(&f.name))) download { (plain_name(&f.name)) }
                                } @else { (plain_name(&f.name)) }
                            }
                            td { (f.size) }
                            td {
                                (format!("{:?}", f.state).to_lowercase())
                                @if f.state != pcap_protocol::store::FileState::Uploaded {
                                    @if let Some(r) = &f.reason { ": " (r) }
                                }
                            }
                        }
                    }
                }
            }
            @if identity && segments > 1 {
                p { a #whole href=(format!("{base}/capture.pcap")) download { "All " (segments) " segments as one capture.pcap" } }
            }
        },
    )
    .into_response()
}

/// `file` of a capture, decrypted: one of its files by plain name (`000001.pcap`,
/// `sessions.json`), or `capture.pcap`, every segment joined.
async fn download(
    State(console): State<Arc<Console>>,
    Research(session): Research,
    Path((serial, id, file)): Path<(String, String, String)>,
) -> Response {
    let (serial, id) = match ids(&session, &serial, &id) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let Some(identity) = console.identity.clone() else {
        return forbidden(
            "This console was not given the research identity (PCAP_RESEARCH_IDENTITY): it cannot decrypt.",
        );
    };
    let m = match manifest(&console, &serial, &id).await {
        Ok(Some(m)) => m,
        Ok(None) => return not_found(&session, &format!("Capture {id} is not complete.")),
        Err(e) => return error_page(&session, &format!("{e:#}")),
    };
    let joined = file == "capture.pcap";
    let files: Vec<_> = m
        .uploaded()
        .filter(|f| {
            if joined {
                f.name.is_segment()
            } else {
                plain_name(&f.name) == file
            }
        })
        .cloned()
        .collect();
    if files.is_empty() {
        return not_found(
            &session,
            &format!("Capture {id} has no file {file} in the store."),
        );
    }
    let length: Option<u64> = m
        .segments
        .iter()
        .filter(|s| files.iter().any(|f| f.name == s.name))
        .map(|s| s.plaintext_bytes)
        .sum::<u64>()
        .checked_sub(if joined {
            (PCAP_HEADER * (files.len() - 1)) as u64
        } else {
            0
        })
        .filter(|_| files.iter().all(|f| f.name.is_segment()));
    let attachment = format!("attachment; filename=\"{id}-{file}\"");
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(IN_FLIGHT);
    tokio::spawn(async move {
        let sent = tx.clone();
        let outcome = async {
            // The last chunk is held back until the file it ends is verified: a client never
            // holds every byte of a download that did not match the manifest.
            let mut held: Option<Bytes> = None;
            for (i, f) in files.into_iter().enumerate() {
                let rel = keys::capture_file(&serial, &id, &f.name);
                let source = Source::open(&console.store, &rel).await?;
                let skip = if joined && i > 0 { PCAP_HEADER } else { 0 };
                let (tx, identity) = (tx.clone(), identity.clone());
                held = tokio::task::spawn_blocking(move || {
                    decrypt_to(source, &f, &identity, skip, held, &tx)
                })
                .await
                .map_err(|e| anyhow::anyhow!("the decryption stopped: {e}"))??;
            }
            if let Some(last) = held {
                tx.send(Ok(last))
                    .await
                    .map_err(|_| anyhow::anyhow!("the browser went away"))?;
            }
            anyhow::Ok(())
        };
        if let Err(e) = outcome.await {
            // The connection ends without its last chunk: the browser reports the download
            // as failed rather than keep a file that is not the capture.
            eprintln!(
                "pcap-portal: download of capture {id} stopped: {}",
                crate::text::clean(&format!("{e:#}"))
            );
            let _ = sent
                .send(Err(std::io::Error::other(format!("{e:#}"))))
                .await;
        }
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let kind = if file.ends_with(".json") {
        "application/json"
    } else {
        "application/vnd.tcpdump.pcap"
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (header::CONTENT_DISPOSITION, attachment),
        ],
        body,
    )
        .into_response();
    if let Some(n) = length
        && let Ok(v) = n.to_string().parse()
    {
        response.headers_mut().insert(header::CONTENT_LENGTH, v);
    }
    response
}

/// Decrypts one file of a download (on a blocking thread), leaving out its first `skip` plain
/// bytes, and sends its chunks to `tx`, each one only when the next is ready: the last one
/// (`held`, carried from file to file) goes out only once everything before it is verified.
fn decrypt_to(
    source: Source,
    file: &pcap_protocol::store::ManifestFile,
    identity: &std::path::Path,
    mut skip: usize,
    mut held: Option<Bytes>,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> anyhow::Result<Option<Bytes>> {
    let identities = crate::captures::identities(identity)?;
    decrypt_verified(source, file, &identities, &mut |b| {
        let from = skip.min(b.len());
        skip -= from;
        if from == b.len() {
            return Ok(());
        }
        match held.replace(Bytes::copy_from_slice(&b[from..])) {
            Some(previous) => tx
                .blocking_send(Ok(previous))
                .map_err(|_| std::io::Error::other("the browser went away")),
            None => Ok(()),
        }
    })?;
    Ok(held)
}

fn not_found(session: &Session, message: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        layout("Not found", Some(session), html! { p.error { (message) } }),
    )
        .into_response()
}

#[derive(Deserialize, Default)]
struct RequestQuery {
    #[serde(default)]
    serial: String,
}

async fn request_form(
    State(console): State<Arc<Console>>,
    Research(session): Research,
    Query(q): Query<RequestQuery>,
) -> Response {
    if console.request_key.is_none() {
        return forbidden(
            "This console was not given the request key (PCAP_REQUEST_KEY), so it cannot sign requests.",
        );
    }
    layout(
        "Request a capture",
        Some(&session),
        html! {
            form #request method="post" action="/captures/request" {
                p { label { "Device (serial) " input name="serial" value=(q.serial) required; } }
                p { label { "Interface " input name="interface" required; } }
                p { label { "Filter (BPF) " input name="filter" size="60" placeholder="host 10.1.2.3 and tcp"; } }
                p { label { "Inside tunnel " input name="tunnel" size="16" placeholder="vxlan:5001"; }
                    " (optional: vxlan:VNI, geneve:VNI or gre:KEY; the filter then applies inside it)" }
                p { label { "Reason " select name="reason" {
                    @for r in REASONS { option value=(r.as_str()) { (r.as_str().replace('_', " ")) } }
                } } }
                p { label { "Subject " input name="subject" size="60" placeholder="what is being looked at"; } }
                p {
                    label { "Stop after " input name="duration" value="10m" size="6"; } " "
                    label { "or packets " input name="packets" size="10"; } " "
                    label { "or bytes " input name="bytes" size="8" placeholder="100MiB"; }
                }
                p {
                    label { "Snaplen " input name="snaplen" size="6"; } " "
                    label { "Max packets/s " input name="max_pps" size="8"; } " "
                    label { "Max bytes/s " input name="max_bps" size="8" placeholder="10MiB"; }
                }
                p { label { "Valid for (may start within) " input name="valid_for" value="1h" size="6"; } }
                input type="hidden" name="csrf" value=(session.csrf);
                button type="submit" { "Request" }
            }
        },
    )
    .into_response()
}

/// The form's fields as the CLI's flags.
#[derive(Deserialize)]
struct RequestForm {
    serial: String,
    interface: String,
    #[serde(default)]
    filter: String,
    #[serde(default)]
    tunnel: String,
    reason: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    packets: String,
    #[serde(default)]
    bytes: String,
    #[serde(default)]
    snaplen: String,
    #[serde(default)]
    max_pps: String,
    #[serde(default)]
    max_bps: String,
    #[serde(default)]
    valid_for: String,
}

/// `text` parsed by `parse`, `None` if empty; the error names the field.
fn optional<T>(
    field: &str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match text.trim() {
        "" => Ok(None),
        t => parse(t).map(Some).map_err(|e| format!("{field}: {e}")),
    }
}

fn number(t: &str) -> Result<u64, String> {
    t.parse()
        .map_err(|_| format!("{t:?} is not a whole number"))
}

impl RequestForm {
    fn flags(&self) -> Result<(Serial, CaptureFlags, Duration), String> {
        let serial = Serial::parse(self.serial.trim()).map_err(|e| e.to_string())?;
        let reason = REASONS
            .into_iter()
            .find(|r| r.as_str() == self.reason)
            .ok_or_else(|| format!("unknown reason {:?}", self.reason))?;
        let flags = CaptureFlags {
            interface: self.interface.trim().to_owned(),
            filter: self.filter.trim().to_owned(),
            tunnel: optional("inside tunnel", &self.tunnel, str::parse)?,
            reason,
            subject: Some(self.subject.trim().to_owned()).filter(|s| !s.is_empty()),
            duration: optional("stop after", &self.duration, parse_duration)?,
            packets: optional("packets", &self.packets, number)?,
            bytes: optional("bytes", &self.bytes, parse_size)?,
            snaplen: optional("snaplen", &self.snaplen, |t| {
                number(t).and_then(|n| u32::try_from(n).map_err(|e| e.to_string()))
            })?,
            max_pps: optional("max packets/s", &self.max_pps, number)?,
            max_bps: optional("max bytes/s", &self.max_bps, parse_size)?,
        };
        let valid_for = optional("valid for", &self.valid_for, parse_duration)?
            .unwrap_or(Duration::from_secs(3600));
        Ok((serial, flags, valid_for))
    }
}

async fn request(
    State(console): State<Arc<Console>>,
    Research(session): Research,
    Posted(fields): Posted,
) -> Response {
    let form: RequestForm = match parse_form(&fields.body) {
        Ok(f) => f,
        Err(e) => return bad_request(&session, &e),
    };
    if console.request_key.is_none() {
        return forbidden(
            "This console was not given the request key (PCAP_REQUEST_KEY), so it cannot sign requests.",
        );
    }
    let (serial, flags, valid_for) = match form.flags() {
        Ok(x) => x,
        Err(e) => return bad_request(&session, &e),
    };
    let Some(key) = &console.request_key else {
        return forbidden("This console was not given the request key (PCAP_REQUEST_KEY).");
    };
    let submitted = crate::requests::submit(
        &console.store,
        key,
        &serial,
        flags.request(),
        valid_for,
        &session.user,
        jiff::Timestamp::now(),
    )
    .await;
    match submitted {
        Ok(s) => Redirect::to(&format!(
            "/captures/request/{}/{}{}",
            urlencode(serial.as_str()),
            s.id,
            s.warning
                .map(|w| format!("?warning={}", urlencode(&w)))
                .unwrap_or_default()
        ))
        .into_response(),
        Err(e) => bad_request(&session, &format!("{e:#}")),
    }
}

/// A form body as `T`; the error says which field is missing or wrong.
fn parse_form<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, String> {
    serde_urlencoded::from_bytes(body).map_err(|e| format!("the form is incomplete: {e}"))
}

#[derive(Deserialize, Default)]
struct ResultQuery {
    /// Why the device may not pick the request up, as found when it was written.
    #[serde(default)]
    warning: String,
}

async fn result(
    State(console): State<Arc<Console>>,
    Research(session): Research,
    Path((serial, id)): Path<(String, String)>,
    Query(q): Query<ResultQuery>,
) -> Response {
    let (serial, id) = match (Serial::parse(&serial), RequestId::parse(&id)) {
        (Ok(s), Ok(i)) => (s, i),
        (Err(e), _) => return bad_request(&session, &e.to_string()),
        (_, Err(e)) => return bad_request(&session, &e.to_string()),
    };
    let read = console
        .store
        .document::<RequestResult>(&keys::result(&serial, &id))
        .await;
    let result = match or_error_page(&session, read) {
        Ok(r) => r,
        Err(page) => return *page,
    };
    let serial_link = urlencode(serial.as_str());
    layout(
        "Capture request",
        Some(&session),
        html! {
            p { "Request " code { (id) } " for " (serial) "." }
            @if !q.warning.is_empty() { p.error { "Warning: " (q.warning) } }
            @match &result {
                None => p #state { "Waiting for the device to read it (reload to follow)." },
                Some(r) => {
                    p #state { strong { (format!("{:?}", r.state).to_lowercase()) }
                        @if let Some(reason) = &r.reason { ": " (reason) }
                        @if let Some(e) = &r.error { ": " (e) }
                    }
                    @if let Some(f) = &r.effective_filter { p { "Effective filter " code { (f) } } }
                    @if let Some(f) = &r.inner_filter { p { "Inner filter " code { (f) } } }
                    @if let Some(stats) = &r.stats { p { (stats.written) " packets written" } }
                    @if let Some(c) = &r.capture_id {
                        p { a #capture href=(format!("/captures/{serial_link}/{c}")) { "Capture " (c) } }
                    }
                }
            }
            p { a href="/captures" { "All captures" } }
        },
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(tunnel: &str) -> RequestForm {
        RequestForm {
            serial: "PA-0001".to_owned(),
            interface: "eth1".to_owned(),
            filter: "host 10.1.2.3".to_owned(),
            tunnel: tunnel.to_owned(),
            reason: "unknown_device".to_owned(),
            subject: String::new(),
            duration: "10m".to_owned(),
            packets: String::new(),
            bytes: String::new(),
            snaplen: String::new(),
            max_pps: String::new(),
            max_bps: String::new(),
            valid_for: String::new(),
        }
    }

    #[test]
    fn the_form_takes_an_optional_tunnel_and_names_the_field_when_it_is_wrong() {
        let (_, flags, _) = form(" vxlan:5001 ").flags().unwrap();
        let request = flags.request();
        assert_eq!(
            request.tunnel.map(|t| t.to_string()).as_deref(),
            Some("vxlan:5001")
        );
        assert_eq!(request.filter, "host 10.1.2.3");
        assert!(form("").flags().unwrap().1.request().tunnel.is_none());
        let err = form("vxlan:99999999").flags().err().unwrap();
        assert!(
            err.starts_with("inside tunnel:") && err.contains("24 bits"),
            "{err}"
        );
    }
}
