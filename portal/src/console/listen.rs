//! The console's connections: plain HTTP on loopback or HTTPS (rustls), under the same limits
//! either way, so that slow or many clients cannot take the console from its users.
//!
//! - at most [`MAX_CONNECTIONS`] connections at once (past it, new ones wait in the kernel's
//!   queue), and at most [`MAX_PER_ADDRESS`] from one address (past it, closed at once);
//! - [`HANDSHAKE_TIMEOUT`] for a TLS handshake, [`HEADER_TIMEOUT`] for a request's headers
//!   (which also closes a keep-alive connection idle that long), [`WRITE_TIMEOUT`] for a
//!   client that stops reading what it is sent; a request's handling, its body included, is
//!   bounded by the router's deadline ([`super::REQUEST_TIMEOUT`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 512;
/// Connections served at once for one address.
pub const MAX_PER_ADDRESS: usize = 64;
/// How long a client may take for its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers, and how long a kept-alive
/// connection may stay idle.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write to a client may stay stuck (a client that stopped reading).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// The connections open per address.
#[derive(Debug, Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection counted against its address until dropped.
struct AddressSlot {
    table: Arc<PerAddress>,
    address: IpAddr,
}

impl PerAddress {
    fn take(table: &Arc<PerAddress>, address: IpAddr) -> Option<AddressSlot> {
        let mut open = table.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(address).or_default();
        if *n >= MAX_PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: table.clone(),
            address,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// Serves `app` on `listener`, over TLS with `tls` if given, for as long as the console runs.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> anyhow::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let per_address = Arc::new(PerAddress::default());
    loop {
        let slot = slots.clone().acquire_owned().await?;
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, most likely: wait rather than spin.
                eprintln!("pcap-portal: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(counted) = PerAddress::take(&per_address, peer.ip()) else {
            drop(tcp);
            continue;
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let _held = (slot, counted);
            let mut io = tokio_io_timeout::TimeoutStream::new(tcp);
            io.set_write_timeout(Some(WRITE_TIMEOUT));
            let io = Box::pin(io);
            match acceptor {
                None => connection(io, peer, app).await,
                Some(acceptor) => {
                    // A client that does not finish its handshake is no one's concern.
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await
                    {
                        connection(stream, peer, app).await;
                    }
                }
            }
        });
    }
}

/// Serves HTTP/1.1 on one connection, each request carrying the peer's address (for the
/// login throttle).
async fn connection<S>(stream: S, peer: SocketAddr, app: Router)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: Request<_>| {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        tower::ServiceExt::oneshot(app.clone(), request)
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
