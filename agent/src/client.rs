//! A client for the control socket, used by `pcapctl` and the tests. It turns the ways a socket
//! can fail into messages that say what to do.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use crate::control::api::{ErrorBody, ErrorDetail};

/// Default path of the control socket.
pub const DEFAULT_SOCKET: &str = "/run/pcap-agent/control.sock";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "pcap-agent is not running: there is no control socket at {} (start it with `systemctl start pcap-agent`, or pass --socket)",
        path.display()
    )]
    NotRunning { path: PathBuf },
    #[error(
        "pcap-agent is not answering on {}: the socket exists but nothing listens (see `journalctl -u pcap-agent`)",
        path.display()
    )]
    NotListening { path: PathBuf },
    #[error(
        "permission denied on {}: add your user to the socket's group (pcap-agent) or run as root",
        path.display()
    )]
    PermissionDenied { path: PathBuf },
    #[error("cannot talk to pcap-agent on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("pcap-agent sent an answer that cannot be read: {0}")]
    Protocol(String),
}

/// A response from the agent.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Answer {
    /// The body as the type the endpoint answers with (see [`crate::control::api`]).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ClientError::Protocol(format!(
                "not the answer expected ({e}); is pcapctl the same version as the agent?"
            ))
        })
    }

    /// The code, message and details of an error answer.
    pub fn error(&self) -> Option<ErrorDetail> {
        self.parse::<ErrorBody>().ok().map(|b| b.error)
    }
}

/// Talks to the agent on one socket path; each request uses a fresh connection.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Client {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub async fn get(&self, path: &str) -> Result<Answer, ClientError> {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Option<Vec<u8>>) -> Result<Answer, ClientError> {
        self.send(Method::POST, path, body).await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ClientError> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| self.connect_error(e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        tokio::spawn(conn);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost");
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?
            .to_bytes();
        Ok(Answer { status, body })
    }

    fn connect_error(&self, e: std::io::Error) -> ClientError {
        let path = self.socket.clone();
        match e.kind() {
            ErrorKind::NotFound => ClientError::NotRunning { path },
            ErrorKind::ConnectionRefused => ClientError::NotListening { path },
            ErrorKind::PermissionDenied => ClientError::PermissionDenied { path },
            _ => ClientError::Io { path, source: e },
        }
    }
}
