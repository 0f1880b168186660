//! DNS and mDNS: the first question's name.

use super::clean;

/// Whether `data` is plausibly a DNS message: a 12-byte header with at most a few questions.
pub fn looks_like_dns(data: &[u8]) -> bool {
    if data.len() < 12 {
        return false;
    }
    let qdcount = u16::from_be_bytes([data[4], data[5]]);
    let opcode = (data[2] >> 3) & 0x0f;
    (1..=4).contains(&qdcount) && opcode <= 5 && question_name(data).is_some()
}

/// The name of the first question (`example.com`), following no compression pointers.
pub fn question_name(data: &[u8]) -> Option<String> {
    let mut i = 12;
    let mut labels: Vec<String> = Vec::new();
    for _ in 0..64 {
        let len = usize::from(*data.get(i)?);
        if len == 0 {
            return Some(if labels.is_empty() {
                ".".to_owned()
            } else {
                labels.join(".")
            });
        }
        if len > 63 {
            return None;
        }
        labels.push(clean(data.get(i + 1..i + 1 + len)?));
        i += 1 + len;
    }
    None
}

/// DNS over TCP carries a two-byte length before each message.
pub fn question_name_tcp(data: &[u8]) -> Option<String> {
    let len = usize::from(u16::from_be_bytes([*data.first()?, *data.get(1)?]));
    let msg = data.get(2..2 + len.min(data.len().saturating_sub(2)))?;
    looks_like_dns(msg).then(|| question_name(msg)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_question_name_is_read_and_bad_input_is_refused() {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        assert!(looks_like_dns(&q));
        assert_eq!(question_name(&q).as_deref(), Some("www.example.com"));
        assert_eq!(question_name(&q[..16]), None);
        let mut bad = q.clone();
        bad[12] = 0xc0;
        assert_eq!(question_name(&bad), None);
    }
}
