//! Tracing setup: text or JSON to stderr, or the systemd journal; the level can change on
//! config reload.

use std::io::IsTerminal;

use pcap_config::{LogFormat, LogLevel, LogOutput, Logging};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// Changes the log level of the running subscriber.
#[derive(Debug, Clone)]
pub struct LogHandle(reload::Handle<EnvFilter, Registry>);

impl LogHandle {
    /// Applies `level` unless `RUST_LOG` overrides it.
    pub fn set_level(&self, level: LogLevel) {
        if std::env::var_os("RUST_LOG").is_none() {
            let _ = self.0.modify(|f| *f = EnvFilter::new(level.as_str()));
        }
    }
}

/// Installs the global subscriber. `format` overrides the config's format (`--log-format`).
pub fn init(config: &Logging, format: Option<LogFormat>) -> LogHandle {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(config.level.as_str()));
    let (filter, handle) = reload::Layer::new(filter);
    let output: Box<dyn Layer<Registry> + Send + Sync> =
        match (config.output, format.unwrap_or(config.format)) {
            (LogOutput::Journald, _) => match tracing_journald::layer() {
                Ok(layer) => layer.boxed(),
                Err(e) => {
                    eprintln!("cannot reach the systemd journal ({e}); logging to stderr");
                    text_layer()
                }
            },
            (LogOutput::Stderr, LogFormat::Json) => tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
                .boxed(),
            (LogOutput::Stderr, LogFormat::Text) => text_layer(),
        };
    // The filter sits above the output layer so that both see the same level.
    let _ = tracing_subscriber::registry()
        .with(output.with_filter(filter))
        .try_init();
    LogHandle(handle)
}

fn text_layer() -> Box<dyn Layer<Registry> + Send + Sync> {
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .boxed()
}
