//! Capture errors, each naming the device, filter or limit at fault.

use pcap_spool::SpoolError;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot open interface {device}: {message}")]
    OpenDevice { device: String, message: String },
    #[error(transparent)]
    Filter(#[from] crate::filter::FilterError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("cannot start the capture thread: {0}")]
    Thread(std::io::Error),
}
