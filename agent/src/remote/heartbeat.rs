//! The heartbeat (`devices/<serial>/status.json`): agent and libpcap versions, serial, name,
//! the authorization as the device sees it (with the highest sequence it accepted), captures,
//! spool usage, uploads, the newest incident, and the time.

use pcap_protocol::Document;
use pcap_protocol::store::{CaptureCounts, Heartbeat, HeartbeatAuthorization};

use crate::control::Api;

/// The version of the libpcap the agent runs with (`pcap_lib_version()`).
#[allow(unsafe_code)]
pub fn libpcap_version() -> String {
    unsafe extern "C" {
        fn pcap_lib_version() -> *const std::ffi::c_char;
    }
    // SAFETY: pcap_lib_version takes no argument and returns a pointer to a static,
    // NUL-terminated string owned by libpcap, valid for the life of the process.
    let text = unsafe { std::ffi::CStr::from_ptr(pcap_lib_version()) };
    text.to_string_lossy().into_owned()
}

/// The heartbeat as of now.
pub fn heartbeat(api: &Api) -> Heartbeat {
    let config = api.config.borrow().clone();
    let auth = api.auth.borrow().clone();
    let captures = *api.captures.borrow();
    Heartbeat {
        schema: Heartbeat::SCHEMA,
        serial: config.device.serial.clone(),
        name: config.device.name.clone(),
        agent_version: crate::VERSION.to_owned(),
        libpcap_version: libpcap_version(),
        authorization: HeartbeatAuthorization {
            state: auth.state,
            expires_at: auth.grant.as_ref().and_then(|g| g.expires_at),
            period: auth.grant.as_ref().map(|g| g.period),
            sequence: auth.highest_sequence,
            reason: auth.reason,
        },
        captures: CaptureCounts {
            running: captures.running as u64,
            total: captures.total as u64,
        },
        spool: api.spool.summary(&config.paths.spool_dir),
        uploads: api.spool.uploads.status(),
        last_error: api.incidents.latest(),
        time: api.clock.now(),
        channel: Some(super::channel::channel(&config, &api.doorbell)),
    }
}
