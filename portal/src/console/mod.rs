//! `pcap-portal serve`: the web console. Server-rendered HTML (maud) on axum; every page works
//! without JavaScript, and the Content-Security-Policy allows no script at all.
//!
//! - [`session`]: sessions in an HttpOnly SameSite=Strict cookie that expire, and end when
//!   their account is removed or its password changes (the users file is read again when it
//!   changes).
//! - [`login`]: logins counted before the hash, per account and address; few hashers with
//!   their memory kept; the login form's own token.
//! - [`auth`]: who is asking, as an extractor per role, and forms with their CSRF token.
//! - [`listen`]: the connections, plain or TLS, with timeouts and caps.
//! - [`pages`]: the pages, each a short handler that calls the same functions as the CLI;
//!   [`view`]: the layout and the error pages they are drawn with.
//! - [`actions`]: authorize, reauthorize and unauthorize, each confirmed on a page of its own,
//!   with a CSRF token and a role that allows it (else 403, and an audit entry).
//! - [`record`]: one device's page and the audit trail, the customer's record.
//! - [`research`]: the research team's captures, requests and decrypted downloads.
//! - [`fleet`]: the devices listed in the background, so a page never waits for the store.
//!
//! It listens on loopback unless given a certificate (`--tls-cert`, `--tls-key`, served with
//! rustls): a password must not cross a network in clear.

mod actions;
mod auth;
mod fleet;
mod listen;
mod login;
mod pages;
mod record;
mod research;
mod session;
mod view;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::store::Store;
use crate::users::WatchedUsers;

/// How long one request may take, its body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The console's accounts (`pcap-portal users add`); read again when it changes.
    #[arg(long = "users", env = "PCAP_PORTAL_USERS")]
    users: PathBuf,
    /// Verify the grants shown with this public key (default: derived from the authorization
    /// key). Without either, every grant is shown as unverified.
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
    /// Memory for the store documents the console keeps (manifests and audit entries; the
    /// devices' grants and heartbeats have a cache of the same size): past it, the least
    /// recently used are read again from the store.
    #[arg(long, value_parser = pcap_protocol::units::parse_size, default_value = "64MiB")]
    cache_budget: u64,
}

/// What every handler shares.
pub struct Console {
    store: Store,
    users: WatchedUsers,
    sessions: session::Sessions,
    /// Failed logins, counted before their passwords are checked.
    throttle: login::Throttle,
    /// The password hashers, few and with their memory kept.
    hashers: login::Hashers,
    /// The login form's tokens.
    form_tokens: login::FormTokens,
    /// What grants are verified with; `None`: every grant is shown unverified.
    verify_keys: Option<pcap_protocol::VerifyKeys>,
    state_dir: Option<PathBuf>,
    /// The customer's signing key, if the server was given it.
    key: Option<pcap_protocol::SigningKey>,
    /// Held while a document is issued, so that two actions never take the same sequence.
    issued: tokio::sync::Mutex<crate::issued::Issued>,
    /// The research team's request signing key, if the server was given it.
    request_key: Option<pcap_protocol::SigningKey>,
    /// The research team's age identity file, if the server was given it.
    identity: Option<PathBuf>,
    /// The devices page's rows.
    fleet: fleet::Fleet,
    /// Documents that never change once written (manifests, audit entries), within
    /// `--cache-budget`.
    documents: std::sync::Mutex<crate::cache::Cache>,
    cache_budget: u64,
    /// Whether the console serves HTTPS (its cookies are then Secure, and HSTS is sent).
    tls: bool,
}

impl Console {
    /// The live session `id`, if its account still stands as it was at login: a session of
    /// an account removed from the users file, or whose password or role changed, ends here.
    pub fn session(&self, id: &str) -> Option<session::Session> {
        let session = self.sessions.get(id)?;
        let users = self.users.current();
        match users.get(&session.user) {
            Some(user) if user.stamp() == session.stamp => Some(session),
            _ => {
                self.sessions.end(id);
                None
            }
        }
    }
}

pub async fn serve(
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
    let users = WatchedUsers::load(&args.users)?;
    if users.current().list().is_empty() {
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
        crate::captures::identities(identity)?;
    }
    let key = load_key(&args.key, "authorization")?;
    let verify_keys = match (&args.verify_key, &key) {
        (Some(path), _) => crate::devices::verify_keys(Some(path))?,
        (None, Some(key)) => Some(pcap_protocol::VerifyKeys::new(vec![key.verify_key()])),
        (None, None) => None,
    };
    if verify_keys.is_none() {
        eprintln!(
            "pcap-portal: no authorization key or --verify-key given: grants are shown as unverified"
        );
    }
    let issued = crate::issued::Issued::open(state_dir.as_deref(), store.url().to_string())?;
    let console = Arc::new(Console {
        verify_keys,
        key,
        request_key: load_key(&args.request_key, "request")?,
        identity: args.identity.clone(),
        issued: tokio::sync::Mutex::new(issued),
        store,
        users,
        sessions: session::Sessions::default(),
        throttle: login::Throttle::default(),
        hashers: login::Hashers::default(),
        form_tokens: login::FormTokens::default(),
        state_dir,
        fleet: fleet::Fleet::default(),
        documents: std::sync::Mutex::new(crate::cache::Cache::in_memory(args.cache_budget)),
        cache_budget: args.cache_budget,
        tls: tls.is_some(),
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("console on {scheme}://{}/", listener.local_addr()?);
    tokio::spawn(fleet::keep_listing(console.clone(), args.refresh));
    listen::serve(listener, router(console), tls).await?;
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

fn router(console: Arc<Console>) -> Router {
    pages::routes()
        .merge(actions::routes())
        .merge(record::routes())
        .merge(research::routes())
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(deadline))
        .layer(axum::middleware::from_fn_with_state(
            console.clone(),
            security_headers,
        ))
        .with_state(console)
}

/// Ends a request that takes longer than [`REQUEST_TIMEOUT`] (a body sent slowly, most
/// likely) with 408.
async fn deadline(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            "The request took too long to arrive or to answer.",
        )
            .into_response(),
    }
}

/// Headers on every answer: no script, no framing, no referrer, no sniffing, no caching; and
/// under TLS, HSTS (a browser that saw the console over HTTPS never tries it in clear).
async fn security_headers(
    State(console): State<Arc<Console>>,
    request: Request,
    next: Next,
) -> Response {
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
    if console.tls {
        headers.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}
