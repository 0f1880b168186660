//! `pcap-portal serve`: the web console. Server-rendered HTML (maud) on axum; every page works
//! without JavaScript, and the Content-Security-Policy allows no script at all.
//!
//! - [`session`]: accounts from the users file, sessions in an HttpOnly SameSite=Strict cookie
//!   that expire, and logins that slow down after failures, per account and per address.
//! - [`pages`]: the pages, each a short handler that calls the same functions as the CLI.
//! - [`actions`]: authorize, reauthorize and unauthorize, each confirmed on a page of its own,
//!   with a CSRF token and a role that allows it (else 403, and an audit entry).
//!
//! It listens on loopback unless given a certificate: a password must not cross a network in
//! clear. (TLS itself is not served yet; a non-loopback address is refused.)

mod actions;
mod pages;
mod session;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::store::Store;
use crate::users::Users;

/// Options of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The console's accounts (`pcap-portal users add`).
    #[arg(long = "users", env = "PCAP_PORTAL_USERS")]
    users: PathBuf,
    /// Verify the grants shown with this public key (default: from PCAP_AUTHORIZATION_KEY).
    #[arg(long, env = "PCAP_AUTHORIZATION_PUB")]
    verify_key: Option<PathBuf>,
    /// The authorization private key: without it, the console offers no authorization action.
    #[arg(long = "key", env = "PCAP_AUTHORIZATION_KEY")]
    key: Option<PathBuf>,
}

/// What every handler shares.
pub struct Console {
    store: Store,
    users: Users,
    sessions: session::Sessions,
    verify_keys: Option<pcap_protocol::VerifyKeys>,
    state_dir: Option<PathBuf>,
    /// The customer's signing key, if the server was given it.
    key: Option<pcap_protocol::SigningKey>,
    /// The portal's record of the sequences it issued (shared with the CLI).
    issued: std::sync::Mutex<crate::issued::Issued>,
}

pub fn serve(
    store: Store,
    args: &ServeArgs,
    state_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    if !args.listen.ip().is_loopback() {
        bail!(
            "{} is not a loopback address: the console would take passwords in clear over the network; listen on 127.0.0.1 (behind a TLS proxy)",
            args.listen
        );
    }
    let users = Users::load(&args.users)?;
    if users.list().is_empty() {
        bail!(
            "the users file {} has no account; add one with `pcap-portal users add NAME --role admin --users {}`",
            args.users.display(),
            args.users.display()
        );
    }
    let key = match &args.key {
        Some(path) => Some(
            pcap_protocol::SigningKey::load(path)
                .with_context(|| format!("cannot load the authorization key {}", path.display()))?,
        ),
        None => None,
    };
    let issued = crate::issued::Issued::open(state_dir.as_deref(), store.url().to_string())?;
    let console = Arc::new(Console {
        verify_keys: crate::devices::verify_keys(args.verify_key.as_deref())?,
        key,
        issued: std::sync::Mutex::new(issued),
        store,
        users,
        sessions: session::Sessions::default(),
        state_dir,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the console's runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        eprintln!("console on http://{}/", listener.local_addr()?);
        axum::serve(
            listener,
            router(console).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .context("the console stopped")
    })?;
    Ok(ExitCode::SUCCESS)
}

fn router(console: Arc<Console>) -> Router {
    pages::routes()
        .merge(actions::routes())
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(console)
}

/// Headers on every answer: no script, no framing, no referrer, no sniffing, no caching.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
