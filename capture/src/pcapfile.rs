//! The pcap file format, nanosecond variant: a 24-byte file header, then a 16-byte header per
//! record. Written in the host's byte order, as libpcap does; readers detect it by the magic.

/// Magic of a pcap file with nanosecond timestamps.
pub const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// Magic of a pcap file with microsecond timestamps.
pub const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Size of the file header.
pub const FILE_HEADER_LEN: usize = 24;
/// Size of a record header.
pub const RECORD_HEADER_LEN: usize = 16;

/// The file header for `linktype` and `snaplen`.
pub fn file_header(linktype: u32, snaplen: u32, nanos: bool) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[0..4].copy_from_slice(&(if nanos { MAGIC_NANOS } else { MAGIC_MICROS }).to_ne_bytes());
    h[4..6].copy_from_slice(&2u16.to_ne_bytes());
    h[6..8].copy_from_slice(&4u16.to_ne_bytes());
    // thiszone and sigfigs stay 0.
    h[16..20].copy_from_slice(&snaplen.to_ne_bytes());
    h[20..24].copy_from_slice(&linktype.to_ne_bytes());
    h
}

/// A record header: timestamp (seconds and fraction), captured and original length.
pub fn record_header(ts_sec: u32, ts_frac: u32, caplen: u32, len: u32) -> [u8; RECORD_HEADER_LEN] {
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[0..4].copy_from_slice(&ts_sec.to_ne_bytes());
    h[4..8].copy_from_slice(&ts_frac.to_ne_bytes());
    h[8..12].copy_from_slice(&caplen.to_ne_bytes());
    h[12..16].copy_from_slice(&len.to_ne_bytes());
    h
}
