//! What can go wrong with the doorbell, in words an operator can act on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DoorbellError {
    #[error("cannot read the broker credentials file {path}: {message}")]
    Credentials { path: PathBuf, message: String },
    #[error(
        "the broker credentials file {path} is readable by others (mode {mode:o}); chmod 600 it"
    )]
    CredentialsMode { path: PathBuf, mode: u32 },
    #[error("cannot read the broker CA bundle {path}: {message}")]
    CaBundle { path: PathBuf, message: String },
    #[error("no trusted root certificate for the broker: {0}")]
    Roots(String),
    #[error("{0}")]
    Connection(String),
    #[error("the broker did not acknowledge the doorbell within {0:?}")]
    Timeout(std::time::Duration),
}

/// A connection error as an operator reads it: refused credentials and untrusted
/// certificates say what to change.
pub fn describe(broker: &str, e: &rumqttc::ConnectionError) -> String {
    use rumqttc::{ConnectReturnCode, ConnectionError};
    match e {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => format!(
            "the broker {broker} refused the user name or password: check the doorbell credentials file and the broker's password file"
        ),
        ConnectionError::ConnectionRefused(code) => {
            format!("the broker {broker} refused the connection ({code:?})")
        }
        other => {
            let text = other.to_string();
            if text.contains("certificate") || text.contains("UnknownIssuer") {
                format!(
                    "the broker {broker} presented a certificate that is not trusted ({text}): set the CA that signed it as the doorbell CA bundle"
                )
            } else {
                format!("cannot reach the broker {broker}: {text}")
            }
        }
    }
}
