//! MQTT (3.1, 3.1.1 and 5): recognised by its CONNECT packet, whose user name it records.

use pcap_protocol::session::App;

use super::values::Head;
use super::{Dir, Found, Inspect, List, Probe, Protocol, Transports, Wants, clean};

pub static MQTT: Protocol = Protocol {
    app: App::Mqtt,
    transports: Transports::Tcp,
    ports: &[1883, 8883],
    probe: Some(probe),
    parser: Some(|_| Box::<Parser>::default()),
};

fn probe(p: &Probe<'_>) -> bool {
    p.dir == Dir::ToServer && mqtt_connect(p.data).is_some()
}

/// The client's CONNECT, read once it is whole (at most [`CONNECT_LIMIT`] bytes).
#[derive(Debug, Default)]
struct Parser {
    head: Head,
}

/// Bytes of the client's first packet kept at most.
const CONNECT_LIMIT: usize = 4096;

impl Inspect for Parser {
    fn feed(&mut self, dir: Dir, data: &[u8], found: &mut Found) -> Wants {
        if dir == Dir::ToClient {
            return Wants::More;
        }
        let head = self.head.extend(data, CONNECT_LIMIT);
        match mqtt_connect(head) {
            Some(user) => {
                if let Some(user) = user {
                    found.add(List::Users, user);
                }
                Wants::Done
            }
            None if self.head.full(CONNECT_LIMIT) => Wants::Done,
            None => Wants::More,
        }
    }

    fn wants(&self, dir: Dir) -> bool {
        dir == Dir::ToServer
    }

    fn buffered(&self) -> usize {
        self.head.heap_bytes()
    }
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
        // Fed in two pieces, the user is found once the packet is whole.
        let mut found = Found::default();
        let mut parser = Parser::default();
        assert_eq!(
            parser.feed(Dir::ToServer, &pkt[..9], &mut found),
            Wants::More
        );
        assert_eq!(
            parser.feed(Dir::ToServer, &pkt[9..], &mut found),
            Wants::Done
        );
        assert_eq!(found.users, ["dev"]);
    }
}
