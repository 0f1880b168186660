//! Binary and datagram protocols recognized by their first bytes: SSH, MQTT (with the CONNECT
//! user name), CoAP, DHCP, NTP, SSDP, Modbus/TCP and BACnet/IP.

use super::clean;

pub fn is_ssh(data: &[u8]) -> bool {
    data.starts_with(b"SSH-")
}

/// An MQTT CONNECT packet: `Some(user name if present)`, `None` if it is not one.
pub fn mqtt_connect(data: &[u8]) -> Option<Option<String>> {
    if data.first()? & 0xf0 != 0x10 {
        return None;
    }
    // Remaining length: up to four 7-bit groups.
    let mut i = 1;
    let mut len = 0usize;
    for shift in 0..4 {
        let b = *data.get(i)?;
        len |= usize::from(b & 0x7f) << (7 * shift);
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
    }
    let name_len = usize::from(u16::from_be_bytes([*data.get(i)?, *data.get(i + 1)?]));
    let name = data.get(i + 2..i + 2 + name_len)?;
    if name != b"MQTT" && name != b"MQIsdp" {
        return None;
    }
    if len < name_len + 4 {
        return None;
    }
    let mut p = i + 2 + name_len;
    let level = *data.get(p)?;
    let flags = *data.get(p + 1)?;
    p += 4; // level, flags, keep-alive
    if level == 5 {
        let (props, n) = varint(data.get(p..)?)?;
        p += n + props;
    }
    let field = |p: &mut usize| -> Option<&[u8]> {
        let l = usize::from(u16::from_be_bytes([*data.get(*p)?, *data.get(*p + 1)?]));
        let v = data.get(*p + 2..*p + 2 + l)?;
        *p += 2 + l;
        Some(v)
    };
    let user = (|| {
        field(&mut p)?; // client id
        if flags & 0x04 != 0 {
            if level == 5 {
                let (props, n) = varint(data.get(p..)?)?;
                p += n + props;
            }
            field(&mut p)?; // will topic
            field(&mut p)?; // will message
        }
        if flags & 0x80 != 0 {
            field(&mut p).map(clean)
        } else {
            None
        }
    })();
    Some(user)
}

fn varint(data: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, b) in data.iter().take(4).enumerate() {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// A CoAP message: version 1, token length at most 8, a request or response code class.
pub fn is_coap(data: &[u8]) -> bool {
    data.len() >= 4
        && data[0] >> 6 == 1
        && data[0] & 0x0f <= 8
        && (data[1] == 0 || matches!(data[1] >> 5, 0 | 2 | 4 | 5))
}

/// A BOOTP/DHCP message with the DHCP magic cookie.
pub fn is_dhcp(data: &[u8]) -> bool {
    data.len() >= 240 && matches!(data[0], 1 | 2) && data[236..240] == [99, 130, 83, 99]
}

/// An NTP message: 48 bytes or more, version 1 to 4, mode 1 to 5.
pub fn is_ntp(data: &[u8]) -> bool {
    data.len() >= 48
        && (1..=4).contains(&((data[0] >> 3) & 0x07))
        && (1..=5).contains(&(data[0] & 0x07))
}

pub fn is_ssdp(data: &[u8]) -> bool {
    data.starts_with(b"M-SEARCH * HTTP/1.1") || data.starts_with(b"NOTIFY * HTTP/1.1")
}

/// A Modbus/TCP ADU: protocol id 0 and a length that matches what follows.
pub fn is_modbus(data: &[u8]) -> bool {
    data.len() >= 8
        && data[2..4] == [0, 0]
        && usize::from(u16::from_be_bytes([data[4], data[5]])) == data.len() - 6
        && (1..=127).contains(&(data[7] & 0x7f))
}

/// A BACnet/IP BVLC header whose length matches the datagram.
pub fn is_bacnet(data: &[u8]) -> bool {
    data.len() >= 4
        && data[0] == 0x81
        && data[1] <= 0x0c
        && usize::from(u16::from_be_bytes([data[2], data[3]])) == data.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_connect_gives_the_user_name() {
        // MQTT 3.1.1 CONNECT, flags: user name + password, client id "c1", user "dev", pass "pw"
        let pkt = b"\x10\x17\x00\x04MQTT\x04\xc2\x00\x3c\x00\x02c1\x00\x03dev\x00\x02pw";
        assert_eq!(mqtt_connect(pkt), Some(Some("dev".to_owned())));
        assert_eq!(mqtt_connect(b"\x10\x02\x00"), None);
        assert_eq!(mqtt_connect(b"GET / HTTP/1.1"), None);
    }

    #[test]
    fn datagram_signatures_hold_on_real_shapes() {
        let mut dhcp = vec![0u8; 300];
        dhcp[0] = 1;
        dhcp[236..240].copy_from_slice(&[99, 130, 83, 99]);
        assert!(is_dhcp(&dhcp));
        let mut ntp = vec![0u8; 48];
        ntp[0] = 0x23; // v4, client
        assert!(is_ntp(&ntp));
        assert!(is_bacnet(&[0x81, 0x0b, 0x00, 0x06, 0x01, 0x20]));
        assert!(is_modbus(&[0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1]));
        assert!(is_coap(&[0x40, 0x01, 0x12, 0x34]));
        assert!(!is_coap(&[0x00, 0x01, 0x12, 0x34]), "version 0");
        assert!(!is_coap(&[0x4f, 0x01, 0x12, 0x34]), "token length 15");
    }
}
