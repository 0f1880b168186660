//! `analyze` reads a regular file in place (mapped) and anything else as a stream: both give
//! the same records, the same summary and the same error at the same offset, for pcap in both
//! byte orders and precisions and for pcapng, whole, cut anywhere, or with a corrupted length.

use std::time::Duration;

use pcap_capture::analyze::{ReadBuffer, analyze_bytes, analyze_with};
use pcap_capture::session::{RecordContext, SessionTable};
use pcap_config::Sharing;
use proptest::prelude::*;

/// An Ethernet/IPv4/UDP frame from `sport` to `dport` with `len` bytes of payload.
fn udp_frame(sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let mut f = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00];
    let total = (20 + 8 + len) as u16;
    f.extend_from_slice(&[
        0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&(8 + len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend((0..len).map(|i| i as u8));
    f
}

#[derive(Debug, Clone, Copy)]
enum Layout {
    Pcap { big_endian: bool, nanos: bool },
    Pcapng { big_endian: bool },
}

/// A capture file of `frames` (each with its timestamp in seconds) in `layout`.
fn file(layout: Layout, frames: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let (Layout::Pcap { big_endian, .. } | Layout::Pcapng { big_endian }) = layout;
    let u32b = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u16b = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    match layout {
        Layout::Pcap { nanos, .. } => {
            out.extend(u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
            out.extend(u16b(2));
            out.extend(u16b(4));
            out.extend(u32b(0));
            out.extend(u32b(0));
            out.extend(u32b(65535));
            out.extend(u32b(1));
            for (sec, f) in frames {
                out.extend(u32b(*sec));
                out.extend(u32b(7));
                out.extend(u32b(f.len() as u32));
                out.extend(u32b(f.len() as u32));
                out.extend(f);
            }
        }
        Layout::Pcapng { .. } => {
            // Section header: magic, version 1.0, unknown section length.
            out.extend(u32b(0x0A0D_0D0A));
            out.extend(u32b(28));
            out.extend(u32b(0x1A2B_3C4D));
            out.extend(u16b(1));
            out.extend(u16b(0));
            out.extend([0xff; 8]);
            out.extend(u32b(28));
            // Interface description: Ethernet, snap length 65535.
            out.extend(u32b(1));
            out.extend(u32b(20));
            out.extend(u16b(1));
            out.extend(u16b(0));
            out.extend(u32b(65535));
            out.extend(u32b(20));
            for (sec, f) in frames {
                let padded = f.len().div_ceil(4) * 4;
                let total = (32 + padded) as u32;
                let ts = u64::from(*sec) * 1_000_000 + 7;
                out.extend(u32b(6));
                out.extend(u32b(total));
                out.extend(u32b(0));
                out.extend(u32b((ts >> 32) as u32));
                out.extend(u32b(ts as u32));
                out.extend(u32b(f.len() as u32));
                out.extend(u32b(f.len() as u32));
                out.extend(f);
                out.extend(std::iter::repeat_n(0, padded - f.len()));
                out.extend(u32b(total));
            }
        }
    }
    out
}

/// The output, summary and error of one way of reading `bytes`.
fn run(bytes: &[u8], mapped: bool) -> (Vec<u8>, String) {
    let sharing = Sharing::default();
    let ctx = RecordContext {
        sharing: &sharing,
        virtual_system: None,
        virtual_systems: None,
        users: None,
        community_id_seed: 0,
    };
    let table = SessionTable::new(1000, Duration::from_secs(3600));
    let mut out = Vec::new();
    let result = if mapped {
        analyze_bytes(bytes, &ctx, table, &mut out)
    } else {
        // A small read buffer, so that blocks straddle refills and the buffer has to grow; not
        // smaller than a section header that a corrupted length makes up to 255 bytes long
        // (a stream recognizes a pcapng file only by a section header within its first read).
        let buffer = ReadBuffer {
            initial: 512,
            ..ReadBuffer::default()
        };
        analyze_with(bytes, &ctx, table, &mut out, buffer)
    };
    (out, format!("{result:?}"))
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        (any::<bool>(), any::<bool>())
            .prop_map(|(big_endian, nanos)| Layout::Pcap { big_endian, nanos }),
        any::<bool>().prop_map(|big_endian| Layout::Pcapng { big_endian }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn mapped_and_streamed_agree(
        layout in layout(),
        frames in prop::collection::vec((0u32..100, 1u16..2000, 1u16..2000, 0usize..300), 1..30),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        damage in 0u8..3,
    ) {
        let frames: Vec<(u32, Vec<u8>)> = frames
            .into_iter()
            .map(|(sec, s, d, len)| (1_700_000_000 + sec, udp_frame(s, d, len)))
            .collect();
        let mut bytes = file(layout, &frames);
        match damage {
            // Cut anywhere, inside the header too.
            1 => bytes.truncate(cut.index(bytes.len() + 1)),
            // One byte changed: a length, a magic, a payload byte.
            2 => {
                let i = flip.index(bytes.len());
                bytes[i] ^= 0xA5;
            }
            _ => {}
        }
        let mapped = run(&bytes, true);
        let streamed = run(&bytes, false);
        prop_assert_eq!(&mapped.1, &streamed.1);
        prop_assert_eq!(String::from_utf8_lossy(&mapped.0), String::from_utf8_lossy(&streamed.0));
        if damage == 0 {
            prop_assert!(mapped.1.starts_with("Ok("), "{}", mapped.1);
            prop_assert!(mapped.1.contains(&format!("packets: {}", frames.len())), "{}", mapped.1);
        }
    }
}
