//! Opening an interface with libpcap: snaplen, kernel buffer, immediate mode if asked, nanosecond
//! timestamps where the kernel gives them, promiscuous mode only if allowed, the effective
//! filter installed, and non-blocking reads for the worker's own poll loop.

use pcap::{Active, Capture, Linktype, Precision};

use crate::error::CaptureError;
use crate::filter::{FilterError, message};

/// How long the kernel may hold packets in a capture block before handing it over (outside
/// immediate mode).
const READ_TIMEOUT_MS: i32 = 100;

/// The link type libpcap will report for `interface`, without opening it: `any` is Linux
/// cooked capture; otherwise the ARPHRD type in sysfs decides.
pub fn linktype_of(interface: &str) -> Linktype {
    if interface == "any" {
        return Linktype::LINUX_SLL;
    }
    let arphrd = std::fs::read_to_string(format!("/sys/class/net/{interface}/type"))
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok());
    match arphrd {
        // ARPHRD_NONE (tun), ARPHRD_IPGRE, ARPHRD_SIT...: raw IP.
        Some(65534 | 778 | 776) => Linktype::RAW,
        _ => Linktype::ETHERNET,
    }
}

/// Whether `interface` exists on this host.
pub fn exists(interface: &str) -> bool {
    interface == "any" || std::path::Path::new(&format!("/sys/class/net/{interface}")).exists()
}

/// An open, filtered, non-blocking live capture.
pub struct Opened {
    pub capture: Capture<Active>,
    pub linktype: Linktype,
    /// Whether timestamps are in nanoseconds (else microseconds).
    pub nanos: bool,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("linktype", &self.linktype)
            .field("nanos", &self.nanos)
            .finish()
    }
}

/// What to open.
#[derive(Debug, Clone)]
pub struct DeviceOptions<'a> {
    pub interface: &'a str,
    pub snaplen: u32,
    pub buffer_size: u64,
    pub promiscuous: bool,
    pub immediate: bool,
    pub filter: &'a str,
}

/// Opens the interface and installs the filter.
pub fn open(opts: &DeviceOptions<'_>) -> Result<Opened, CaptureError> {
    let fail = |e: pcap::Error| {
        let mut text = message(e);
        if text.contains("permitted") || text.contains("permission") {
            text.push_str(" (capturing needs root or CAP_NET_RAW)");
        }
        CaptureError::OpenDevice {
            device: opts.interface.to_owned(),
            message: text,
        }
    };
    let (capture, nanos) = match activate(opts, Precision::Nano) {
        Ok(c) => (c, true),
        // Some kernels and libpcap builds cannot give nanoseconds; microseconds then.
        Err(_) => (activate(opts, Precision::Micro).map_err(fail)?, false),
    };
    let mut capture = capture.setnonblock().map_err(fail)?;
    capture.filter(opts.filter, true).map_err(|e| {
        CaptureError::Filter(FilterError::Invalid {
            filter: opts.filter.chars().take(200).collect(),
            message: message(e),
        })
    })?;
    let linktype = capture.get_datalink();
    Ok(Opened {
        capture,
        linktype,
        nanos,
    })
}

fn activate(
    opts: &DeviceOptions<'_>,
    precision: Precision,
) -> Result<Capture<Active>, pcap::Error> {
    Capture::from_device(opts.interface)?
        .snaplen(opts.snaplen as i32)
        .buffer_size(opts.buffer_size.min(i32::MAX as u64) as i32)
        .immediate_mode(opts.immediate)
        .promisc(opts.promiscuous)
        .precision(precision)
        .timeout(READ_TIMEOUT_MS)
        .open()
}
