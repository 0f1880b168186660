//! Verification of a remote request document, before anything else looks at it.

use jiff::{SignedDuration, Timestamp};
use pcap_protocol::{
    CaptureRequest, Envelope, Refusal, RefusalCode, RequestId, Serial, VerifyKeys,
};

/// Longest a request may stay valid: bounds how long its id must be remembered.
pub const MAX_REQUEST_LIFETIME: SignedDuration = SignedDuration::from_hours(30 * 24);

/// Verifies a request document found at `requests/<key_id>.json`: signature under a request
/// key, the id, the serial and the validity window. The replay check is the caller's.
pub fn verify_request(
    bytes: &[u8],
    key_id: &RequestId,
    keys: &VerifyKeys,
    serial: &Serial,
    now: Timestamp,
) -> Result<(CaptureRequest, Timestamp), Refusal> {
    let request: CaptureRequest =
        Envelope::parse(bytes)
            .and_then(|e| e.open(keys))
            .map_err(|e| {
                Refusal::new(
                    RefusalCode::BadSignature,
                    format!("the request does not verify under the request key(s): {e}"),
                )
            })?;
    let invalid = |message: String| Refusal::new(RefusalCode::InvalidRequest, message);
    if request.request_id.as_ref() != Some(key_id) {
        return Err(invalid(format!(
            "the request's id {:?} is not the id of its key ({key_id})",
            request.request_id.as_ref().map(RequestId::as_str)
        )));
    }
    if request.serial.as_ref() != Some(serial) {
        return Err(Refusal::new(
            RefusalCode::WrongDevice,
            format!(
                "the request is for device {}, this is {serial}",
                request
                    .serial
                    .as_ref()
                    .map_or("(none)".to_owned(), ToString::to_string)
            ),
        ));
    }
    let Some(not_after) = request.not_after else {
        return Err(invalid("a remote request must carry not_after".to_owned()));
    };
    if not_after <= now {
        return Err(Refusal::new(
            RefusalCode::RequestExpired,
            format!("the request was valid until {not_after}"),
        ));
    }
    if not_after > now + MAX_REQUEST_LIFETIME {
        return Err(invalid(format!(
            "not_after {not_after} is more than 30 days ahead"
        )));
    }
    request.check().map_err(invalid)?;
    Ok((request, not_after))
}
