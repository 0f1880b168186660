//! RADIUS (RFC 2865 and 2866, UDP 1812/1813 and the old 1645/1646): the `User-Name` of every
//! packet that carries one (access and accounting requests, and the answers that echo it), as
//! tshark's `radius.User_Name`. Packets are decoded by `radius-parser` (the rusticata parser
//! Suricata uses). Passwords (`User-Password`, `CHAP-Password`) are never read.

use pcap_protocol::session::App;
use radius_parser::{RadiusAttribute, parse_radius_data};

use super::{Dir, Found, Inspect, List, Probe, Protocol, Transports, Wants, clean};

pub static RADIUS: Protocol = Protocol {
    app: App::Radius,
    transports: Transports::Udp,
    ports: &[1812, 1813, 1645, 1646],
    probe: Some(probe),
    parser: Some(|_| Box::<Parser>::default()),
};

/// Packets read from a session at most.
const MAX_PACKETS: u32 = 64;

/// A packet of a known code whose length is the datagram's and whose attributes all decode.
fn probe(p: &Probe<'_>) -> bool {
    let d = p.data;
    d.len() >= 20
        && matches!(d[0], 1..=5 | 11..=13)
        && usize::from(u16::from_be_bytes([d[2], d[3]])) == d.len()
        && parse_radius_data(d).is_ok_and(|(rest, _)| rest.is_empty())
}

/// The `User-Name` of a packet.
pub fn user_name(packet: &[u8]) -> Option<String> {
    let (_, data) = parse_radius_data(packet).ok()?;
    data.attributes?.into_iter().find_map(|a| match a {
        RadiusAttribute::UserName(name) if !name.is_empty() => Some(clean(name)),
        _ => None,
    })
}

/// Every packet of a session, both ways.
#[derive(Debug, Default)]
struct Parser {
    packets: u32,
}

impl Inspect for Parser {
    fn feed(&mut self, _dir: Dir, data: &[u8], found: &mut Found) -> Wants {
        self.packets += 1;
        if let Some(user) = user_name(data) {
            found.add(List::Users, user);
        }
        if self.packets >= MAX_PACKETS {
            Wants::Done
        } else {
            Wants::More
        }
    }

    /// Datagrams stand alone: a lost one costs nothing.
    fn gap(&mut self, _dir: Dir, _len: u64) -> Wants {
        Wants::More
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An Access-Request for `user` with a (hidden) password.
    pub(crate) fn access_request(user: &str) -> Vec<u8> {
        let mut p = vec![1, 7, 0, 0];
        p.extend_from_slice(&[0x11; 16]);
        p.extend_from_slice(&[1, (user.len() + 2) as u8]);
        p.extend_from_slice(user.as_bytes());
        p.extend_from_slice(&[2, 18]);
        p.extend_from_slice(&[0x22; 16]);
        p.extend_from_slice(&[4, 6, 127, 0, 0, 1]);
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p
    }

    #[test]
    fn the_user_name_is_read_and_nothing_else() {
        let p = access_request("bob@corp");
        let mut found = Found::default();
        let mut parser = Parser::default();
        parser.feed(Dir::ToServer, &p, &mut found);
        assert_eq!(found.users, ["bob@corp"]);
        let probe_of = |data: &[u8]| {
            probe(&Probe {
                data,
                dir: Dir::ToServer,
                transport: crate::session::packet::UDP,
                ports: (40000, 18120),
            })
        };
        assert!(probe_of(&p));
        for cut in 0..p.len() {
            assert!(!probe_of(&p[..cut]));
            let _ = user_name(&p[..cut]);
        }
        let mut zero_attr = p.clone();
        zero_attr[21] = 0;
        assert!(!probe_of(&zero_attr));
        assert_eq!(user_name(&zero_attr), None);
    }
}
