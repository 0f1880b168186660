//! Test networks: a network namespace joined to the host by a veth pair, so traffic crosses a
//! real interface the agent captures on. Everything is removed when the pair is dropped.
//!
//! ```text
//! host namespace                 test namespace
//! <host_if> 10.A.B.1/24  <--veth-->  <ns_if> 10.A.B.2/24
//! ```

use std::net::UdpSocket;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::run;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace and the veth pair that joins it to the host.
#[derive(Debug)]
pub struct VethPair {
    pub ns: String,
    pub host_if: String,
    pub ns_if: String,
    pub host_ip: String,
    pub ns_ip: String,
}

/// Runs `ip` with `args`; fails the test with its error if it fails.
pub fn ip(args: &[&str]) {
    let out = run(Command::new("ip").args(args));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl VethPair {
    /// Creates a fresh namespace and veth pair with unique names and addresses.
    pub fn create() -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{}{}", pid % 100_000, n);
        let pair = VethPair {
            ns: format!("pa-test-{tag}"),
            host_if: format!("pah{tag}"),
            ns_if: format!("pan{tag}"),
            host_ip: format!("10.{}.{}.1", 200 + (n % 50), pid % 250),
            ns_ip: format!("10.{}.{}.2", 200 + (n % 50), pid % 250),
        };
        ip(&["netns", "add", &pair.ns]);
        ip(&[
            "link",
            "add",
            &pair.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &pair.ns_if,
            "netns",
            &pair.ns,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{}/24", pair.host_ip),
            "dev",
            &pair.host_if,
        ]);
        ip(&["link", "set", &pair.host_if, "up"]);
        ip(&[
            "-n",
            &pair.ns,
            "addr",
            "add",
            &format!("{}/24", pair.ns_ip),
            "dev",
            &pair.ns_if,
        ]);
        ip(&["-n", &pair.ns, "link", "set", &pair.ns_if, "up"]);
        ip(&["-n", &pair.ns, "link", "set", "lo", "up"]);
        // A static neighbour entry, so no ARP exchange mixes into the first packets of a test.
        let mac = run(pair
            .in_ns("cat")
            .arg(format!("/sys/class/net/{}/address", pair.ns_if)));
        let mac = String::from_utf8_lossy(&mac.stdout).trim().to_owned();
        ip(&[
            "neigh",
            "replace",
            &pair.ns_ip,
            "lladdr",
            &mac,
            "dev",
            &pair.host_if,
            "nud",
            "permanent",
        ]);
        pair
    }

    /// A command run inside the test namespace.
    pub fn in_ns(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, program]);
        cmd
    }

    /// Sends `count` UDP datagrams of `size` payload bytes from the host to the namespace's
    /// `port`, paced at `pps` (0: as fast as possible). Bounded by count; returns when sent.
    pub fn send_udp(&self, port: u16, count: usize, size: usize, pps: u64) {
        send_udp(&self.ns_ip, port, count, size, pps);
    }
}

/// Sends `count` UDP datagrams to `ip:port`, payload `size` bytes starting with the sequence
/// number, paced at `pps` packets per second (0: unpaced).
pub fn send_udp(ip: &str, port: u16, count: usize, size: usize, pps: u64) {
    let sock = UdpSocket::bind("0.0.0.0:0").expect("bind a UDP socket");
    let mut payload = vec![0x5a_u8; size.max(4)];
    let start = Instant::now();
    for i in 0..count {
        payload[..4].copy_from_slice(&(i as u32).to_be_bytes());
        // A full socket buffer is retried; a port without listener answers with ICMP only.
        while sock.send_to(&payload, (ip, port)).is_err() {
            std::thread::sleep(Duration::from_micros(100));
        }
        if let Some(offset) = (1_000_000_000 * (i as u64 + 1)).checked_div(pps) {
            let due = start + Duration::from_nanos(offset);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
    }
}

/// Sends `frames` as they are out of `interface` (libpcap's injection), paced at `pps`.
/// Bounded by the frames given; returns when all are sent.
pub fn inject(interface: &str, frames: impl IntoIterator<Item = Vec<u8>>, pps: u64) -> usize {
    let mut out = pcap::Capture::from_device(interface)
        .and_then(|c| c.open())
        .unwrap_or_else(|e| panic!("open {interface} to send: {e}"));
    let start = Instant::now();
    let mut sent = 0;
    for f in frames {
        // A full device queue is retried, a bounded number of times.
        let mut tries = 0;
        while let Err(e) = out.sendpacket(&f[..]) {
            tries += 1;
            assert!(tries < 1000, "cannot send on {interface}: {e}");
            std::thread::sleep(Duration::from_micros(200));
        }
        sent += 1;
        let due = start + Duration::from_nanos(1_000_000_000 * sent as u64 / pps.max(1));
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
    sent
}

impl Drop for VethPair {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}
