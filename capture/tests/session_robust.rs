//! The session extractor on hostile input: random and mutated frames of every link type, and
//! more sessions than the table may hold. No panic, and memory stays bounded.

use std::time::Duration;

use pcap_capture::session::packet::linktype;
use pcap_capture::session::{RecordContext, SessionTable, record};
use pcap_config::Sharing;
use proptest::prelude::*;

const LINKTYPES: [u32; 6] = [
    linktype::ETHERNET,
    linktype::RAW,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::IPV4,
    linktype::IPV6,
];

/// A plausible Ethernet/IPv4/TCP frame carrying `payload` from port 40000 to `dport`.
fn tcp_frame(dport: u16, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00];
    let total = (20 + 20 + payload.len()) as u16;
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        6,
        0,
        0,
        10,
        0,
        0,
        1,
        10,
        0,
        0,
        2,
    ]);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

fn records_of(table: SessionTable) -> usize {
    let sharing = Sharing::default();
    let ctx = RecordContext {
        sharing: &sharing,
        virtual_system: None,
        virtual_systems: None,
        users: None,
        community_id_seed: 0,
    };
    let sessions = table.finish();
    for s in &sessions {
        let r = record(s, &ctx);
        assert!(serde_json::to_string(&r).is_ok());
    }
    sessions.len()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_frames_never_panic(lt in prop::sample::select(&LINKTYPES[..]), frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..20)) {
        let mut table = SessionTable::new(64, Duration::from_secs(60));
        for (i, f) in frames.iter().enumerate() {
            table.packet(lt, i as u64 * 1_000_000, f, f.len() as u32);
        }
        prop_assert!(table.len() <= 64);
        records_of(table);
    }

    #[test]
    fn mutated_tcp_frames_never_panic(
        payload in prop::sample::select(vec![
            b"GET /a HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YTpi\r\n\r\n".to_vec(),
            b"\x16\x03\x01\x00\x40\x01\x00\x00\x3c\x03\x03".to_vec(),
            b"220 mx ESMTP\r\n".to_vec(),
            b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: =?UTF-8?B?w4k=?=\r\n\r\nx\r\n.\r\n".to_vec(),
            b"\x10\x17\x00\x04MQTT\x04\xc2\x00\x3c\x00\x02c1\x00\x03dev\x00\x02pw".to_vec(),
            b"SSH-2.0-x\r\n".to_vec(),
        ]),
        dport in prop::sample::select(vec![21u16, 25, 80, 443, 502, 1883, 8081]),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut frame = tcp_frame(dport, 0x18, 1000, &payload);
        for (i, b) in &flips {
            let at = i.index(frame.len());
            frame[at] = *b;
        }
        let cut = cut.index(frame.len() + 1);
        let mut table = SessionTable::new(16, Duration::from_secs(60));
        table.packet(linktype::ETHERNET, 0, &tcp_frame(dport, 0x02, 999, b""), 54);
        table.packet(linktype::ETHERNET, 1, &frame[..cut], frame.len() as u32);
        table.packet(linktype::ETHERNET, 2, &frame, frame.len() as u32);
        records_of(table);
    }
}

#[test]
fn the_table_stays_bounded_and_records_every_session() {
    let mut table = SessionTable::new(1000, Duration::from_secs(3600));
    for port in 0..5000u16 {
        let f = tcp_frame(port, 0x02, 1, b"");
        table.packet(linktype::ETHERNET, u64::from(port), &f, f.len() as u32);
        assert!(table.len() <= 1000);
    }
    assert_eq!(table.stats.sessions, 5000);
    assert!(table.stats.evicted_full >= 4000);
    assert_eq!(
        records_of(table),
        5000,
        "evicted sessions are recorded, not lost"
    );
}

#[test]
fn idle_sessions_leave_the_table() {
    let mut table = SessionTable::new(1000, Duration::from_secs(10));
    table.packet(linktype::ETHERNET, 0, &tcp_frame(80, 0x02, 1, b""), 54);
    table.packet(
        linktype::ETHERNET,
        30_000_000_000,
        &tcp_frame(81, 0x02, 1, b""),
        54,
    );
    assert_eq!(table.stats.evicted_idle, 1);
    assert_eq!(table.take_finished().len(), 1);
    assert_eq!(table.len(), 1);
}
