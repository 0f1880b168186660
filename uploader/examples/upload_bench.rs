//! Benchmark driver for `bench/upload.sh`: seals a file into a spool (age encryption, as a
//! capture's segment) and uploads a spool with the uploader, timing each phase and sampling
//! the process's resident memory while it uploads.
//!
//!   upload_bench seal SPOOL_DIR RECIPIENT INPUT
//!   upload_bench upload SPOOL_DIR STORE_URL ENDPOINT CREDENTIALS_FILE
//!
//! Each prints one JSON line.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pcap_config::{S3, StoreUrl};
use pcap_protocol::{CaptureId, Serial};
use pcap_spool::{Journal, Spool, State};
use pcap_uploader::bandwidth::Bandwidth;
use pcap_uploader::store::Store;
use pcap_uploader::upload::{UploadSettings, Uploader};
use tokio_util::sync::CancellationToken;

const CAPTURE: &str = "0193a0b1-0000-7000-8000-00000000beef";

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn seal(spool_dir: PathBuf, recipient: String, input: PathBuf) {
    let (journal, _) = Journal::open(&spool_dir).expect("journal");
    let recipient = recipient.parse().expect("an age recipient (age1...)");
    let spool = Spool::new(&spool_dir, vec![recipient])
        .expect("spool")
        .with_journal(Arc::new(journal));
    let started = Instant::now();
    let mut file = std::fs::File::open(&input).expect("input");
    let capture = CaptureId::parse(CAPTURE).expect("capture id");
    let mut w = spool.create(&capture, 1).expect("segment");
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n]).expect("write");
    }
    let sealed = w.seal().expect("seal");
    println!(
        "{{\"phase\":\"seal\",\"seconds\":{:.3},\"plaintext_bytes\":{},\"bytes\":{}}}",
        started.elapsed().as_secs_f64(),
        sealed.plaintext_bytes,
        sealed.size
    );
}

fn upload(spool_dir: PathBuf, url: String, endpoint: String, creds: PathBuf) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let (journal, _) = Journal::open(&spool_dir).expect("journal");
        let journal = Arc::new(journal);
        let url: StoreUrl = url.parse().expect("a store URL");
        let store = Store::open(
            &url,
            &S3 {
                endpoint: Some(endpoint),
                path_style: true,
                credentials_file: Some(creds),
                ..S3::default()
            },
        )
        .expect("store");
        let (uploader, handle) = Uploader::new(
            store,
            journal.clone(),
            UploadSettings {
                serial: Serial::parse("BENCH").expect("serial"),
                spool_dir,
                part_size: std::env::var("PART_MIB").ok().and_then(|v| v.parse::<usize>().ok()).unwrap_or(8) << 20,
                concurrency: 2,
            },
            Bandwidth::new(None),
        );
        let before = rss_kib();
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    samples.push(rss_kib());
                    std::thread::sleep(Duration::from_millis(20));
                }
                samples
            })
        };
        let started = Instant::now();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(uploader.run(cancel.clone()));
        let uploaded = || {
            journal
                .entries()
                .iter()
                .all(|e| e.state == State::Uploaded)
        };
        while !uploaded() && started.elapsed() < Duration::from_secs(600) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        cancel.cancel();
        let _ = task.await;
        done.store(true, Ordering::Relaxed);
        let samples = sampler.join().unwrap_or_default();
        let status = handle.status();
        assert!(uploaded(), "not uploaded: {status:?}");
        // Flat memory: the peak of the first half of the upload against that of the second.
        let half = samples.len() / 2;
        let peak = |s: &[u64]| s.iter().copied().max().unwrap_or(0);
        println!(
            "{{\"phase\":\"upload\",\"seconds\":{seconds:.3},\"bytes\":{},\"rss_before_kib\":{before},\"rss_peak_first_half_kib\":{},\"rss_peak_second_half_kib\":{}}}",
            status.uploaded_bytes,
            peak(&samples[..half]),
            peak(&samples[half..])
        );
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["seal", spool, recipient, input] => {
            seal(spool.into(), (*recipient).to_owned(), input.into())
        }
        ["upload", spool, url, endpoint, creds] => upload(
            spool.into(),
            (*url).to_owned(),
            (*endpoint).to_owned(),
            creds.into(),
        ),
        _ => {
            eprintln!(
                "usage: upload_bench seal SPOOL_DIR RECIPIENT INPUT\n       upload_bench upload SPOOL_DIR STORE_URL ENDPOINT CREDENTIALS_FILE"
            );
            std::process::exit(2);
        }
    }
}
