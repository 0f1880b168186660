//! Every store key, built in one place from validated ids only, so nothing can climb out of
//! the prefix it belongs to. Keys are relative to the store's own prefix (`s3://bucket/prefix`).

use crate::ids::{CaptureId, FileName, RequestId, Serial};

/// Where every device's documents live.
pub const DEVICES: &str = "devices";
/// Where every capture's files live.
pub const CAPTURES: &str = "captures";
/// Where the portal's audit trail lives.
pub const AUDIT: &str = "audit";

/// `audit/<entry_id>.json`: one change made through the portal (ids are UUIDv7, so the keys
/// sort by time).
pub fn audit(entry_id: &uuid::Uuid) -> String {
    format!("{AUDIT}/{entry_id}.json")
}

/// `devices/<serial>`: one device's documents.
pub fn device(serial: &Serial) -> String {
    format!("{DEVICES}/{serial}")
}

/// `devices/<serial>/grant.json`: the signed grant or revocation in force.
pub fn grant(serial: &Serial) -> String {
    format!("{DEVICES}/{serial}/grant.json")
}

/// `devices/<serial>/status.json`: the agent's heartbeat.
pub fn status(serial: &Serial) -> String {
    format!("{DEVICES}/{serial}/status.json")
}

/// `devices/<serial>/requests`: the signed capture requests for the device.
pub fn requests(serial: &Serial) -> String {
    format!("{DEVICES}/{serial}/requests")
}

/// `devices/<serial>/requests/<id>.json`.
pub fn request(serial: &Serial, id: &RequestId) -> String {
    format!("{DEVICES}/{serial}/requests/{id}.json")
}

/// `devices/<serial>/results/<id>.json`: the agent's answer to request `id`.
pub fn result(serial: &Serial, id: &RequestId) -> String {
    format!("{DEVICES}/{serial}/results/{id}.json")
}

/// The id of a request from the file name of its document (`<id>.json`), if it is one.
pub fn request_id_of(file_name: &str) -> Option<RequestId> {
    RequestId::parse(file_name.strip_suffix(".json")?).ok()
}

/// `captures/<serial>`: every capture of one device.
pub fn captures_of(serial: &Serial) -> String {
    format!("{CAPTURES}/{serial}")
}

/// `captures/<serial>/<capture_id>`: one capture's files.
pub fn capture(serial: &Serial, id: &CaptureId) -> String {
    format!("{CAPTURES}/{serial}/{id}")
}

/// `captures/<serial>/<capture_id>/<name>`.
pub fn capture_file(serial: &Serial, id: &CaptureId, name: &FileName) -> String {
    format!("{CAPTURES}/{serial}/{id}/{name}")
}

/// The parts of `captures/<serial>/<capture_id>/<name>`, if `key` is such a key (anything
/// else under `captures/` is not a capture's file and is passed over).
pub fn parse_capture_file(key: &str) -> Option<(Serial, CaptureId, FileName)> {
    let rest = key.strip_prefix(CAPTURES)?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let (serial, id, name) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some((
        Serial::parse(serial).ok()?,
        CaptureId::parse(id).ok()?,
        FileName::parse(name).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_layout_and_parse_back() {
        let serial = Serial::parse("PA-0001").unwrap();
        let id = CaptureId::parse("0193a0b1-0000-7000-8000-0000000000bb").unwrap();
        let req = RequestId::parse("r-1").unwrap();
        assert_eq!(grant(&serial), "devices/PA-0001/grant.json");
        assert_eq!(status(&serial), "devices/PA-0001/status.json");
        assert_eq!(request(&serial, &req), "devices/PA-0001/requests/r-1.json");
        assert_eq!(result(&serial, &req), "devices/PA-0001/results/r-1.json");
        assert_eq!(request_id_of("r-1.json"), Some(req));
        assert_eq!(request_id_of("../x.json"), None);
        let key = capture_file(&serial, &id, &FileName::segment(1));
        assert_eq!(
            key,
            "captures/PA-0001/0193a0b1-0000-7000-8000-0000000000bb/000001.pcap.age"
        );
        assert_eq!(
            parse_capture_file(&key),
            Some((serial, id, FileName::segment(1)))
        );
        assert_eq!(parse_capture_file("captures/PA-0001/x/y/z"), None);
        assert_eq!(parse_capture_file("captures/PA-0001/../y"), None);
    }
}
