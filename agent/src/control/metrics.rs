//! `GET /metrics`: Prometheus text format, on the control socket and, when
//! `control.metrics_listen` is set, on a TCP address of its own that serves nothing else.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::Api;
use super::accept::next_connection;
use super::response::{ApiError, Reply, text_reply};
use crate::captures::SchedulerCommand;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub async fn get(api: &Api) -> Reply {
    api.metrics.observe_authorization(&api.auth.borrow());
    api.metrics.observe_spool(&api.spool);
    let (reply, answer) = oneshot::channel();
    if api
        .scheduler
        .send(SchedulerCommand::List { reply })
        .await
        .is_ok()
        && let Ok(captures) = answer.await
    {
        api.metrics.observe_captures(&captures);
    }
    text_reply(StatusCode::OK, CONTENT_TYPE, api.metrics.encode())
}

/// Binds the metrics address; the error says what to change.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "cannot listen for metrics on {addr} ({e}); choose a free address and port in control.metrics_listen, or remove it"
            ),
        )
    })
}

/// Serves `GET /metrics` on `listener` until `cancel`; every other request gets 404.
pub async fn serve(listener: TcpListener, api: Arc<Api>, cancel: CancellationToken) {
    while let Some(stream) = next_connection(&cancel, "metrics", || async {
        listener.accept().await.map(|(stream, _)| stream)
    })
    .await
    {
        let api = api.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let api = api.clone();
            async move {
                let reply = if req.uri().path() != "/metrics" {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        "this address serves GET /metrics only",
                    )
                    .reply()
                } else if req.method() != Method::GET && req.method() != Method::HEAD {
                    ApiError::new(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "method_not_allowed",
                        "use GET /metrics",
                    )
                    .reply()
                } else {
                    get(&api).await
                };
                Ok::<_, Infallible>(reply)
            }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .serve_connection(TokioIo::new(stream), service);
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                result = conn => if let Err(e) = result {
                    debug!(error = %e, "Metrics connection ended with an error.");
                }
            }
        });
    }
}
