//! `pcap-agent analyze` on odd captures the test builds: every readable file gives correct
//! sessions, every unreadable one a clear error with its byte offset, and nothing panics.

use std::path::Path;
use std::process::{Command, Output};

use pcap_protocol::session::{App, Field, Transport};
use pcap_tests::pcapgen::{
    self, gre_raw, pcap, pcapng, sll2_udp, tcp4, udp4, udp4_fragments, udp4_qinq,
    udp6_with_extension, vxlan,
};
use pcap_tests::{Record, analyze_records, bin, parse_records, run};

/// Source address and port, destination address and port.
type Tuple = (&'static str, u16, &'static str, u16);

fn analyze(dir: &Path, name: &str, bytes: &[u8]) -> (Output, Vec<Record>) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let out = run(Command::new(bin("pcap-agent")).arg("analyze").arg(&path));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    let records = parse_records(&String::from_utf8_lossy(&out.stdout));
    (out, records)
}

fn tuple(r: &Record) -> (String, Option<u16>, String, Option<u16>) {
    let ((src, sport), (dst, dport)) = (r.source(), r.destination());
    (
        src.unwrap().to_string(),
        sport,
        dst.unwrap().to_string(),
        dport,
    )
}

#[test]
fn readable_odd_captures_give_their_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>, Tuple)> = vec![
        (
            "qinq.pcap",
            pcap(1, &[udp4_qinq([10, 5, 0, 1], [10, 5, 0, 2], 1111, 2222)]),
            ("10.5.0.1", 1111, "10.5.0.2", 2222),
        ),
        (
            "ipv6-ext.pcap",
            pcap(1, &[udp6_with_extension(3333, 4444)]),
            ("2001:db8::1", 3333, "2001:db8::2", 4444),
        ),
        (
            "fragments.pcap",
            pcap(1, &udp4_fragments()),
            ("10.1.0.1", 5000, "10.1.0.2", 6000),
        ),
        // The session inside the tunnel, not the tunnel's.
        (
            "vxlan.pcap",
            pcap(1, &[vxlan()]),
            ("192.168.8.1", 8000, "192.168.8.2", 8001),
        ),
        (
            "sll2.pcap",
            pcap(276, &[sll2_udp()]),
            ("10.4.0.1", 9100, "10.4.0.2", 9200),
        ),
    ];
    for (name, bytes, (src, sport, dst, dport)) in cases {
        let (out, records) = analyze(dir.path(), name, &bytes);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(records.len(), 1, "{name}: {records:?}");
        assert_eq!(
            tuple(&records[0]),
            (src.to_owned(), Some(sport), dst.to_owned(), Some(dport)),
            "{name}"
        );
    }

    // GRE on a raw-IP link: the session inside, and where it was found.
    let (out, records) = analyze(dir.path(), "gre.pcap", &pcap(101, &[gre_raw()]));
    assert!(out.status.success());
    assert_eq!(
        tuple(&records[0]),
        (
            "192.168.9.1".to_owned(),
            Some(7000),
            "192.168.9.2".to_owned(),
            Some(7001)
        )
    );
    let tunnel = records[0].tunnel.as_ref().unwrap();
    assert_eq!(tunnel.layers[0].kind, "gre");
    let outer = tunnel.outer.as_ref().unwrap();
    assert_eq!(outer.source_ip, Some("10.2.0.1".parse().unwrap()));
    assert_eq!(outer.protocol, Transport::Other(47));
    assert_eq!(outer.source_port, None);
    let (_, records) = analyze(dir.path(), "vxlan.pcap", &pcap(1, &[vxlan()]));
    assert_eq!(records[0].tunnel.as_ref().unwrap().layers[0].id, Some(0x64));

    // pcapng with two interfaces of different link types.
    let frames = vec![
        (
            0,
            udp4(
                [10, 6, 0, 1],
                [10, 6, 0, 2],
                1000,
                53,
                &dns_query("a.example"),
            ),
        ),
        (
            1,
            udp4(
                [10, 7, 0, 1],
                [10, 7, 0, 2],
                1001,
                53,
                &dns_query("b.example"),
            )[14..]
                .to_vec(),
        ),
    ];
    let (out, records) = analyze(
        dir.path(),
        "two-interfaces.pcapng",
        &pcapng(&[1, 101], &frames),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let urls: Vec<&[String]> = records.iter().map(Record::urls).collect();
    assert_eq!(urls, [["dns://a.example"], ["dns://b.example"]]);

    // An unknown link type is read, and nothing is made of its frames.
    let (out, records) = analyze(dir.path(), "user0.pcap", &pcap(147, &[vec![1, 2, 3, 4]]));
    assert!(out.status.success());
    assert!(records.is_empty());
}

#[test]
fn unreadable_captures_get_a_clear_error_with_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let good = pcap(
        1,
        &[
            tcp4([10, 0, 0, 1], [10, 0, 0, 2], 40000, 80, 1, 0x02, b""),
            udp4(
                [10, 0, 0, 1],
                [10, 0, 0, 3],
                40001,
                53,
                &dns_query("x.example"),
            ),
        ],
    );
    // Cut inside the second record: the first session is still reported.
    let cut = good.len() - 10;
    let (out, records) = analyze(dir.path(), "truncated.pcap", &good[..cut]);
    assert_eq!(out.status.code(), Some(65));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("truncated") && err.contains("byte offset"),
        "{err}"
    );
    assert_eq!(
        records.len(),
        1,
        "what was read before the error is reported"
    );

    // A record claiming 2 GiB.
    let mut bogus = good.clone();
    bogus[24 + 8..24 + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let (out, _) = analyze(dir.path(), "bogus-length.pcap", &bogus);
    assert_eq!(out.status.code(), Some(65));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("byte offset 24"), "{err}");

    for (name, bytes) in [
        ("text.pcap", b"this is not a capture\n".to_vec()),
        ("empty.pcap", Vec::new()),
    ] {
        let (out, records) = analyze(dir.path(), name, &bytes);
        assert_eq!(out.status.code(), Some(65), "{name}");
        assert!(records.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(name) && err.contains("offset"),
            "{name}: {err}"
        );
    }
}

/// A DNS query for `name`.
fn dns_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

#[test]
fn sharing_from_a_config_removes_switched_off_fields() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.pcap");
    std::fs::write(
        &file,
        pcap(
            1,
            &[udp4(
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                1,
                53,
                &dns_query("q.example"),
            )],
        ),
    )
    .unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "[sharing]\nurl = false\nsource_ip = false\n").unwrap();
    let records = analyze_records(&file, Some(&config));
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    let shared = r.shared_fields();
    assert!(
        !shared.contains(Field::Url) && !shared.contains(Field::SourceIp),
        "{r:?}"
    );
    assert_eq!(r.destination().0, Some("10.0.0.2".parse().unwrap()));
    assert_eq!(r.application(), Some(App::Dns));
    let _ = pcapgen::pcap;
}

/// A file is mapped and read in place, a pipe read as a stream: the same capture gives the
/// same records, in the same order, either way (and in every run), across many steps of the
/// mapping and with an error at the same offset when the file is cut.
#[test]
fn a_file_and_a_pipe_give_the_same_records() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    // Over 4 MiB (the mapping is read in steps of 1 MiB): DNS queries, HTTP requests and
    // datagrams of 20,000 flows.
    let mut frames = Vec::new();
    for i in 0..20_000u32 {
        let client = [10, 1, (i >> 8) as u8 & 0x3f, i as u8];
        let port = 20_000 + (i % 20_000) as u16;
        frames.push(match i % 3 {
            0 => udp4(
                client,
                [10, 9, 0, 53],
                port,
                53,
                &dns_query(&format!("n{i}.example")),
            ),
            1 => tcp4(
                client,
                [10, 9, 0, 80],
                port,
                80,
                1,
                0x18,
                format!(
                    "GET /f/{i}.bin HTTP/1.1\r\nHost: h{}.example\r\n\r\n",
                    i % 7
                )
                .as_bytes(),
            ),
            _ => udp4(client, [10, 9, 0, 9], port, 9, &[0x5a; 400]),
        });
    }
    let whole = pcap(1, &frames);
    assert!(whole.len() > 4 << 20, "{}", whole.len());
    for (name, bytes) in [
        ("many.pcap", &whole[..]),
        ("many-cut.pcap", &whole[..whole.len() - 7]),
    ] {
        let (from_file, _) = analyze(dir.path(), name, bytes);
        let (again, _) = analyze(dir.path(), name, bytes);
        let mut child = Command::new(bin("pcap-agent"))
            .args(["analyze", "/dev/stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = bytes.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let from_pipe = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(!from_file.stdout.is_empty(), "{name}");
        assert!(
            from_file.stdout == from_pipe.stdout,
            "{name}: a pipe gives other records than the file"
        );
        assert!(from_file.stdout == again.stdout, "{name}: two runs differ");
        assert_eq!(from_file.status.code(), from_pipe.status.code(), "{name}");
        let path = dir.path().join(name);
        assert_eq!(
            String::from_utf8_lossy(&from_file.stderr)
                .replace(path.to_str().unwrap(), "/dev/stdin"),
            String::from_utf8_lossy(&from_pipe.stderr),
            "{name}"
        );
    }
}

/// A file that another process truncates while `analyze` reads it (mapped) ends the run with a
/// clear error and exit status 65, not a crash.
#[test]
fn a_file_truncated_while_it_is_read_ends_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shrinking.pcap");
    let frames: Vec<Vec<u8>> = (0..40_000u32)
        .map(|i| {
            udp4(
                [10, 2, 0, 1],
                [10, 2, 0, 2],
                1024 + (i % 5000) as u16,
                9,
                &[7; 1400],
            )
        })
        .collect();
    std::fs::write(&path, pcap(1, &frames)).unwrap();
    let child = Command::new(bin("pcap-agent"))
        .arg("analyze")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let signal = |sig: &str| {
        assert!(run(Command::new("kill").args([sig, &pid])).status.success());
    };
    // Once the file is mapped, stop the reader, cut the file and let it go on.
    let maps = format!("/proc/{pid}/maps");
    let start = std::time::Instant::now();
    loop {
        let mapped = std::fs::read_to_string(&maps)
            .unwrap_or_default()
            .contains(path.to_str().unwrap());
        if mapped {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "analyze never mapped the file"
        );
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    signal("-STOP");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4096)
        .unwrap();
    signal("-CONT");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert!(err.contains("the file shrank while it was read"), "{err}");
}
