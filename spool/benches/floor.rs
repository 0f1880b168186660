//! What one pass over a captured byte must cost on this CPU, against what the spool's segment
//! writer costs: memcpy, ChaCha20-Poly1305 as age does it (64 KiB chunks, encrypt then MAC),
//! the whole age stream, SHA-256 (ring), CRC32C and CRC64-NVME (crc-fast, the checksums S3
//! verifies), CRC32 (crc32fast), and `SegmentWriter` itself (age, its checksum and direct I/O to a
//! file in `FLOOR_DIR`, default /var/tmp).
//!
//!     cargo bench -p pcap-spool --bench floor            # FLOOR_MIB=256 FLOOR_RUNS=5
//!
//! Each figure is the best of FLOOR_RUNS passes over FLOOR_MIB MiB read from a 64 MiB buffer
//! in 1 MiB pieces (the capture thread hands the seal thread 1 MiB chunks). Cycles are the
//! time at the clock /proc/cpuinfo reports.

use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};

const CHUNK: usize = 1 << 20;
const SOURCE: usize = 64 << 20;
const AGE_CHUNK: usize = 64 << 10;

/// The clock the kernel reports for CPU 0, in GHz (`cpu MHz` of /proc/cpuinfo).
fn ghz() -> f64 {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("cpu MHz"))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |mhz| mhz / 1000.0)
}

struct Figure {
    name: &'static str,
    /// Wall-clock seconds (a direct write waits for the device).
    secs: f64,
    /// CPU seconds of the measuring thread: what the figures per packet are made of.
    cpu: f64,
    bytes: u64,
}

/// CPU time of the calling thread, in seconds.
fn thread_cpu() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(f64::NAN, |t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
}

fn measure(name: &'static str, total: usize, runs: usize, mut pass: impl FnMut(&[u8])) -> Figure {
    let source: Vec<u8> = (0..SOURCE).map(|i| (i * 131 % 251) as u8).collect();
    let (mut best, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..runs {
        let (t0, c0) = (Instant::now(), thread_cpu());
        let mut done = 0;
        while done < total {
            let at = done % SOURCE;
            pass(&source[at..at + CHUNK]);
            done += CHUNK;
        }
        best = best.min(t0.elapsed().as_secs_f64());
        best_cpu = best_cpu.min(thread_cpu() - c0);
    }
    Figure {
        name,
        secs: best,
        cpu: best_cpu,
        bytes: total as u64,
    }
}

fn main() {
    let mib: usize = std::env::var("FLOOR_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let runs: usize = std::env::var("FLOOR_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = std::env::var("FLOOR_DIR").unwrap_or_else(|_| "/var/tmp".to_owned());
    let total = mib << 20;
    let mut figures = Vec::new();

    let mut buf = vec![0u8; CHUNK];
    figures.push(measure("memcpy", total, runs, |piece| {
        buf.copy_from_slice(piece);
        black_box(&buf);
    }));

    let cipher = chacha20poly1305::ChaCha20Poly1305::new(&[7u8; 32].into());
    let mut nonce = 0u64;
    figures.push(measure(
        "ChaCha20-Poly1305 (RustCrypto, as age), 64 KiB chunks",
        total,
        runs,
        |piece| {
            buf.copy_from_slice(piece);
            for chunk in buf.chunks_mut(AGE_CHUNK) {
                nonce += 1;
                let mut n = [0u8; 12];
                n[..8].copy_from_slice(&nonce.to_be_bytes());
                let tag = cipher
                    .encrypt_in_place_detached(&n.into(), b"", chunk)
                    .expect("encrypt");
                black_box(tag);
            }
        },
    ));

    let key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &[7u8; 32]).expect("key"),
    );
    let mut counter = 0u64;
    figures.push(measure(
        "ChaCha20-Poly1305 (ring), 64 KiB chunks in place",
        total,
        runs,
        |piece| {
            buf.copy_from_slice(piece);
            for chunk in buf.chunks_mut(AGE_CHUNK) {
                counter += 1;
                let mut n = [0u8; 12];
                n[..8].copy_from_slice(&counter.to_be_bytes());
                let tag = key
                    .seal_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key(n),
                        ring::aead::Aad::empty(),
                        chunk,
                    )
                    .expect("seal");
                let _ = black_box(tag);
            }
        },
    ));

    let recipient = age::x25519::Identity::generate().to_public();
    figures.push(measure(
        "age stream (copy + ChaCha20-Poly1305)",
        total,
        runs,
        |piece| {
            thread_local! {
                static STREAM: std::cell::RefCell<Option<age::stream::StreamWriter<std::io::Sink>>> =
                    const { std::cell::RefCell::new(None) };
            }
            STREAM.with(|s| {
                let mut s = s.borrow_mut();
                let stream = s.get_or_insert_with(|| {
                    age::Encryptor::with_recipients(std::iter::once(&recipient as _))
                        .expect("encryptor")
                        .wrap_output(std::io::sink())
                        .expect("stream")
                });
                stream.write_all(piece).expect("write");
            });
        },
    ));

    figures.push(measure("SHA-256 (ring)", total, runs, |piece| {
        black_box(ring::digest::digest(&ring::digest::SHA256, piece));
    }));
    figures.push(measure("CRC32C (crc-fast)", total, runs, |piece| {
        black_box(crc_fast::checksum(
            crc_fast::CrcAlgorithm::Crc32Iscsi,
            piece,
        ));
    }));
    figures.push(measure("CRC64-NVME (crc-fast)", total, runs, |piece| {
        black_box(crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, piece));
    }));
    figures.push(measure("CRC32 (crc32fast)", total, runs, |piece| {
        black_box(crc32fast::hash(piece));
    }));

    // The spool's own writer: what sealing a segment costs per byte, I/O included.
    let spool_dir = tempfile::tempdir_in(&dir).expect("a directory in FLOOR_DIR");
    let spool = pcap_spool::Spool::new(spool_dir.path(), vec![recipient.clone()]).expect("spool");
    let id = pcap_protocol::CaptureId::generate();
    let mut seq = 0;
    let mut writer = None;
    figures.push(measure(
        "SegmentWriter (age + CRC-64/NVME + direct I/O)",
        total,
        runs,
        |piece| {
            let w = writer.get_or_insert_with(|| {
                seq += 1;
                spool.create(&id, seq).expect("segment")
            });
            w.write_all(piece).expect("write");
            if w.plaintext_bytes() >= 64 << 20
                && let Some(w) = writer.take()
            {
                let sealed = w.seal().expect("seal");
                let _ = std::fs::remove_file(sealed.path);
            }
        },
    ));

    let ghz = ghz();
    println!("CPU clock {ghz:.2} GHz (cycles = ns x GHz)\n");
    println!(
        "| operation | GB/s (wall) | CPU cycles/byte | CPU ns per 64 B | per 512 B | per 1514 B |"
    );
    println!("|---|---|---|---|---|---|");
    for f in &figures {
        let per_byte_ns = f.cpu * 1e9 / f.bytes as f64;
        println!(
            "| {} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} |",
            f.name,
            f.bytes as f64 / f.secs / 1e9,
            per_byte_ns * ghz,
            per_byte_ns * 64.0,
            per_byte_ns * 512.0,
            per_byte_ns * 1514.0,
        );
    }
}
