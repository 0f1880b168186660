//! The broker's address, credentials and TLS settings, turned into a client's options. TLS is
//! rustls with the ring provider (as everywhere in the project); the roots are the CA bundle
//! when one is given, else the system's.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pcap_config::BrokerUrl;
use rumqttc::{MqttOptions, TlsConfiguration, Transport};

use crate::error::DoorbellError;

/// How long the broker may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// MQTT keep-alive: a dead connection is noticed within about one and a half of these.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// A broker and how to log in to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub url: BrokerUrl,
    /// A 0600 TOML file with `username` and `password`.
    pub credentials_file: Option<PathBuf>,
    /// PEM certificates to trust (else the system's roots).
    pub ca_bundle: Option<PathBuf>,
}

impl Broker {
    /// The broker of an agent's `[doorbell]`.
    pub fn from_config(d: &pcap_config::Doorbell) -> Self {
        Broker {
            url: d.broker.clone(),
            credentials_file: d.credentials_file.clone(),
            ca_bundle: d.ca_bundle.clone(),
        }
    }

    /// The client's options, with `client_id`; reads the credentials and CA files.
    pub fn options(
        &self,
        client_id: &str,
        max_packet: usize,
    ) -> Result<MqttOptions, DoorbellError> {
        let mut options = MqttOptions::new(client_id, &self.url.host, self.url.port);
        options
            .set_keep_alive(KEEP_ALIVE)
            .set_clean_session(true)
            .set_max_packet_size(max_packet, max_packet);
        if let Some(path) = &self.credentials_file {
            let c = read_credentials(path)?;
            options.set_credentials(c.username, c.password);
        }
        if self.url.tls {
            let config = tls_config(self.ca_bundle.as_deref())?;
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::new(config),
            )));
        }
        Ok(options)
    }

    /// The network options: a bounded connection time.
    pub fn network() -> rumqttc::NetworkOptions {
        let mut network = rumqttc::NetworkOptions::new();
        network.set_connection_timeout(CONNECT_TIMEOUT.as_secs());
        network
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

fn read_credentials(path: &Path) -> Result<Credentials, DoorbellError> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |message: String| DoorbellError::Credentials {
        path: path.to_owned(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(DoorbellError::CredentialsMode {
            path: path.to_owned(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    toml::from_str(&text).map_err(|e| {
        fail(format!(
            "{} (write username = \"...\" and password = \"...\")",
            e.message()
        ))
    })
}

fn tls_config(ca_bundle: Option<&Path>) -> Result<rustls::ClientConfig, DoorbellError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_bundle {
        Some(path) => {
            let fail = |message: String| DoorbellError::CaBundle {
                path: path.to_owned(),
                message,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| fail(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| fail(e.to_string()))?;
            if certs.is_empty() {
                return Err(fail("it holds no PEM certificate".to_owned()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| fail(e.to_string()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(DoorbellError::Roots(
                    "the system has no CA certificates; install ca-certificates or set a CA bundle"
                        .to_owned(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| DoorbellError::Roots(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(dir: &Path, creds: Option<(&str, u32)>) -> Broker {
        let credentials_file = creds.map(|(text, mode)| {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.join("doorbell.toml");
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        });
        Broker {
            url: "mqtt://127.0.0.1:1883".parse().unwrap(),
            credentials_file,
            ca_bundle: None,
        }
    }

    #[test]
    fn credentials_readable_by_others_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(
            dir.path(),
            Some(("username = \"a\"\npassword = \"b\"\n", 0o644)),
        );
        let e = b.options("x", 4096).unwrap_err().to_string();
        assert!(
            e.contains("readable by others") && e.contains("chmod 600"),
            "{e}"
        );
    }

    #[test]
    fn a_credentials_file_without_a_password_says_what_to_write() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(dir.path(), Some(("username = \"a\"\n", 0o600)));
        let e = b.options("x", 4096).unwrap_err().to_string();
        assert!(e.contains("password"), "{e}");
    }

    #[test]
    fn a_ca_bundle_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate\n").unwrap();
        let b = Broker {
            url: "mqtts://broker.example.net".parse().unwrap(),
            credentials_file: None,
            ca_bundle: Some(ca),
        };
        let e = b.options("x", 4096).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
    }
}
