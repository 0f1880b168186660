//! Accepting control connections and routing their requests.
//!
//! The peer is checked once per connection, right after accept: a refused peer gets 403 to
//! every request without its body being read, and never reaches a handler. Every connection
//! closes lingering ([`super::linger`]), so a client still sending reads its answer.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::accept::next_connection;
use super::linger::Lingering;
use super::response::{ApiError, Reply};
use super::{Api, MAX_BODY, Peer, authorization, captures, metrics, reload, spool, status};
use crate::metrics::RequestLabels;

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open requests may take to finish once shutdown starts.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves the control API on `listener` until `cancel`, then lets open requests finish.
pub async fn serve(listener: UnixListener, api: Arc<Api>, cancel: CancellationToken) {
    let graceful = GracefulShutdown::new();
    while let Some(stream) = next_connection(&cancel, "control", || async {
        listener.accept().await.map(|(stream, _)| stream)
    })
    .await
    {
        let peer = match Peer::of(&stream) {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "Cannot read the peer's credentials; closing the connection.");
                continue;
            }
        };
        let allowed = api.access().allows(&peer);
        if !allowed {
            api.metrics.control_refused_peers.inc();
            warn!(
                uid = peer.uid,
                gid = peer.gid,
                pid = peer.pid,
                "Control peer refused."
            );
        }
        let api = api.clone();
        let service = service_fn(move |req| {
            let api = api.clone();
            let peer = peer.clone();
            async move { Ok::<_, Infallible>(handle(&api, &peer, allowed, req).await) }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(Lingering::new(stream)), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(error = %e, "Control connection ended with an error.");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("Control connections still open after the drain period; closing them.");
    }
}

async fn handle(api: &Api, peer: &Peer, allowed: bool, req: Request<Incoming>) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let (endpoint, reply) = if allowed {
        route(api, req).await
    } else {
        let err = ApiError::new(
            StatusCode::FORBIDDEN,
            "peer_not_allowed",
            format!(
                "uid {} is not allowed to use the control socket; add the user to the socket's group or to control.allowed_uids",
                peer.uid
            ),
        );
        let mut reply = err.reply();
        reply
            .headers_mut()
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
        ("refused", reply)
    };
    api.metrics
        .control_requests
        .get_or_create(&RequestLabels {
            endpoint,
            status: reply.status().as_u16(),
        })
        .inc();
    debug!(%method, path, status = reply.status().as_u16(), uid = peer.uid, "Control request.");
    reply
}

async fn route(api: &Api, req: Request<Incoming>) -> (&'static str, Reply) {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let capture_id = path
        .strip_prefix("/v1/captures/")
        .filter(|id| !id.is_empty());
    let (endpoint, allowed_methods): (&'static str, &[Method]) = match (path.as_str(), capture_id) {
        ("/v1/status", _) => ("status", &[Method::GET]),
        ("/v1/authorization", _) => ("authorization", &[Method::GET]),
        ("/v1/reload", _) => ("reload", &[Method::POST]),
        ("/metrics", _) => ("metrics", &[Method::GET]),
        ("/v1/captures", _) => ("captures", &[Method::GET, Method::POST]),
        ("/v1/spool", _) => ("spool", &[Method::GET]),
        ("/v1/reap", _) => ("reap", &[Method::POST]),
        (_, Some(_)) => ("capture", &[Method::GET, Method::DELETE]),
        _ => {
            let err = ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("there is no endpoint {path}; see GET /v1/status"),
            );
            return ("unknown", err.reply());
        }
    };
    if !allowed_methods.contains(&method) {
        let names: Vec<&str> = allowed_methods.iter().map(Method::as_str).collect();
        let err = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{path} does not take {method}; use {}", names.join(" or ")),
        );
        return (endpoint, err.reply());
    }
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(e) => return (endpoint, e.reply()),
    };
    let id = capture_id.unwrap_or_default();
    let reply = match (endpoint, &method) {
        ("status", _) => status::get(api),
        ("authorization", _) => authorization::get(api),
        ("reload", _) => reload::post(api, &body).await,
        ("captures", &Method::POST) => captures::start(api, &body).await,
        ("captures", _) => captures::list(api).await,
        ("capture", &Method::DELETE) => captures::stop(api, id).await,
        ("capture", _) => captures::get(api, id).await,
        ("spool", _) => spool::get(api),
        ("reap", _) => spool::reap(api).await,
        _ => metrics::get(api).await,
    };
    (endpoint, reply)
}

/// Reads a request body of at most [`MAX_BODY`] bytes.
pub async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request bodies are limited to {MAX_BODY} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "body_unreadable",
            format!("cannot read the request body: {e}"),
        )),
    }
}
