//! `pcap-portal serve`: the web console. Server-rendered HTML (maud) on axum; every page works
//! without JavaScript, and the Content-Security-Policy allows no script at all.
//!
//! - [`session`]: accounts from the users file, sessions in an HttpOnly SameSite=Strict cookie
//!   that expire, and logins that slow down after failures, per account and per address.
//! - [`pages`]: the pages, each a short handler that calls the same functions as the CLI.
//! - [`actions`]: authorize, reauthorize and unauthorize, each confirmed on a page of its own,
//!   with a CSRF token and a role that allows it (else 403, and an audit entry).
//!
//! - [`record`]: one device's page and the audit trail, the customer's record.
//! - [`research`]: the research team's captures, requests and decrypted downloads.
//! - [`fleet`]: the devices listed in the background, so a page never waits for the store.
//!
//! It listens on loopback unless given a certificate (`--tls-cert`, `--tls-key`, served with
//! rustls): a password must not cross a network in clear.

mod actions;
mod fleet;
mod pages;
mod record;
mod research;
mod session;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
    /// The request signing key: without it, the console cannot request captures.
    #[arg(long = "request-key", env = "PCAP_REQUEST_KEY")]
    request_key: Option<PathBuf>,
    /// The research team's age identity: without it, the console cannot decrypt captures.
    #[arg(long = "identity", env = "PCAP_RESEARCH_IDENTITY")]
    identity: Option<PathBuf>,
    /// The server's certificate chain (PEM); with --tls-key, the console serves HTTPS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// How often the devices are listed again in the background.
    #[arg(long, value_parser = pcap_protocol::units::parse_duration, default_value = "30s")]
    refresh: std::time::Duration,
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
    /// The research team's request signing key, if the server was given it.
    request_key: Option<pcap_protocol::SigningKey>,
    /// The research team's age identity file, if the server was given it.
    identity: Option<PathBuf>,
    /// The devices page's rows.
    fleet: fleet::Fleet,
    /// Documents that never change once written (manifests, audit entries), kept while the
    /// console runs.
    documents: std::sync::Mutex<crate::cache::Cache>,
    /// Whether the console serves HTTPS (its cookie is then Secure).
    tls: bool,
}

pub fn serve(
    store: Store,
    args: &ServeArgs,
    state_dir: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
        _ => None,
    };
    if tls.is_none() && !args.listen.ip().is_loopback() {
        bail!(
            "{} is not a loopback address: the console would take passwords in clear over the network; give it --tls-cert and --tls-key, or listen on 127.0.0.1",
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
    let load_key = |path: &Option<PathBuf>, what: &str| -> anyhow::Result<_> {
        path.as_ref()
            .map(|p| {
                pcap_protocol::SigningKey::load(p)
                    .with_context(|| format!("cannot load the {what} key {}", p.display()))
            })
            .transpose()
    };
    if let Some(identity) = &args.identity {
        age::IdentityFile::from_file(identity.to_string_lossy().into_owned())
            .and_then(|f| f.into_identities().map_err(std::io::Error::other))
            .map_err(|e| {
                anyhow::anyhow!("cannot read the age identity {}: {e}", identity.display())
            })?;
    }
    let issued = crate::issued::Issued::open(state_dir.as_deref(), store.url().to_string())?;
    let console = Arc::new(Console {
        verify_keys: crate::devices::verify_keys(args.verify_key.as_deref())?,
        key: load_key(&args.key, "authorization")?,
        request_key: load_key(&args.request_key, "request")?,
        identity: args.identity.clone(),
        issued: std::sync::Mutex::new(issued),
        store,
        users,
        sessions: session::Sessions::default(),
        state_dir,
        fleet: fleet::Fleet::default(),
        documents: std::sync::Mutex::default(),
        tls: tls.is_some(),
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
        let scheme = if tls.is_some() { "https" } else { "http" };
        eprintln!("console on {scheme}://{}/", listener.local_addr()?);
        tokio::spawn(fleet::keep_listing(console.clone(), args.refresh));
        let app = router(console);
        match tls {
            None => axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .context("the console stopped"),
            Some(config) => serve_tls(listener, app, config).await,
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The rustls server configuration of a PEM certificate chain and key.
fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| anyhow::anyhow!("cannot read the certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        bail!("{} holds no PEM certificate", cert.display());
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("cannot read the private key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("no TLS version in common with rustls")?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .with_context(|| {
            format!(
                "the key {} does not go with the certificate {}",
                key.display(),
                cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `app` over TLS: each connection's handshake, then HTTP/1.1 with the peer's address
/// for the login throttle.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    config: Arc<rustls::ServerConfig>,
) -> anyhow::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, most likely: wait rather than spin.
                eprintln!("pcap-portal: cannot accept a connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
            let stream = match handshake.await {
                Ok(Ok(s)) => s,
                // A client that does not finish its handshake is no one's concern.
                _ => return,
            };
            let service = hyper::service::service_fn(move |mut request: Request<_>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                tower::ServiceExt::oneshot(app.clone(), request)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn router(console: Arc<Console>) -> Router {
    pages::routes()
        .merge(actions::routes())
        .merge(record::routes())
        .merge(research::routes())
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
