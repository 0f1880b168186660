//! What sessions really cost in memory, counted by the allocator, against what the flow table
//! accounts for them; and the table under a flood of crafted flows that stay inspecting (half-
//! open HTTP heads with out-of-order segments): it stays within its budget, stops inspecting
//! before it evicts, and records every session.

use std::time::Duration;

use pcap_capture::session::SessionTable;
use pcap_capture::session::packet::linktype::ETHERNET;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// The heap is counted for the whole program: one test at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Bytes the program holds on the heap now.
fn held() -> usize {
    // Reallocations are in both counts already (what they grew or shrank).
    let s = ALLOCATOR.stats();
    s.bytes_allocated.saturating_sub(s.bytes_deallocated)
}

/// An Ethernet/IPv4/TCP frame of flow `n` (its client port and address from `n`) to port 80.
fn tcp(n: u32, to_server: bool, syn: bool, seq: u32, payload: &[u8]) -> Vec<u8> {
    let client = [10, 1, (n >> 16) as u8, (n >> 8) as u8];
    let server = [10, 2, 0, 1];
    let port = 10_000 + (n & 0xff) as u16 * 100;
    let eth = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let b = if to_server {
        eth.ipv4(client, server, 64).tcp(port, 80, seq, 65535)
    } else {
        eth.ipv4(server, client, 64).tcp(80, port, seq, 65535)
    };
    let b = if syn { b.syn() } else { b.ack(1).psh() };
    let mut f = Vec::new();
    b.write(&mut f, payload).expect("a frame");
    f
}

/// The frames of a flow that stays inspecting: a SYN, an HTTP request head cut before its
/// end (`head` bytes of it), and `ooo` segments past a hole that never fills.
fn hostile_flow(n: u32, head: usize, ooo: usize) -> Vec<Vec<u8>> {
    let mut frames = vec![tcp(n, true, true, 1000, b"")];
    let mut request = b"GET /a HTTP/1.1\r\nHost: lab\r\nX-Pad: ".to_vec();
    request.resize(head, b'a');
    let mut seq = 1001;
    for piece in request.chunks(1400) {
        frames.push(tcp(n, true, false, seq, piece));
        seq += piece.len() as u32;
    }
    for i in 0..ooo as u32 {
        frames.push(tcp(n, true, false, seq + 5000 + i * 1400, &[b'b'; 1400]));
    }
    frames
}

/// A finished HTTP exchange: request, response with a file name.
fn plain_flow(n: u32) -> Vec<Vec<u8>> {
    vec![
        tcp(n, true, true, 1000, b""),
        tcp(n, false, true, 5000, b""),
        tcp(
            n,
            true,
            false,
            1001,
            b"GET /firmware/v2.bin HTTP/1.1\r\nHost: updates.lab\r\n\r\n",
        ),
        tcp(
            n,
            false,
            false,
            5001,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ),
    ]
}

fn feed(table: &mut SessionTable, flows: impl Iterator<Item = Vec<Vec<u8>>>) {
    let mut t = 0;
    for flow in flows {
        for f in flow {
            t += 1000;
            table.packet(ETHERNET, t, &f, f.len() as u32);
        }
    }
}

/// Bytes per session that `flows` really add to a table, and what the table accounts.
fn cost(flows: usize, flow: impl Fn(u32) -> Vec<Vec<u8>>) -> (usize, usize) {
    let frames: Vec<Vec<Vec<u8>>> = (0..flows as u32).map(&flow).collect();
    let before = held();
    let mut table = SessionTable::new(1_000_000, Duration::from_secs(3600));
    let mut t = 0;
    for f in frames.iter().flatten() {
        t += 1000;
        table.packet(ETHERNET, t, f, f.len() as u32);
    }
    let real = (held() - before) / flows;
    let accounted = table.memory() / flows;
    drop(table);
    (real, accounted)
}

#[test]
fn the_table_accounts_for_what_its_sessions_really_hold() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let syn_only = |n| vec![tcp(n, true, true, 1000, b"")];
    for (what, flow) in [
        (
            "a SYN scan's session",
            &syn_only as &dyn Fn(u32) -> Vec<Vec<u8>>,
        ),
        ("an HTTP exchange", &plain_flow),
        ("a half-open HTTP flow", &|n| hostile_flow(n, 6000, 4)),
    ] {
        let (real, accounted) = cost(2000, flow);
        println!("{what}: {real} bytes held, {accounted} accounted");
        // The table grows by doubling: real cost per entry lies between 1x and 2x its slot.
        assert!(
            accounted >= real * 3 / 4 && accounted <= real * 3 / 2,
            "{what}: {accounted} accounted for {real} held"
        );
    }
}

#[test]
fn a_flood_of_flows_that_stay_inspecting_stays_within_the_budget() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    const BUDGET: usize = 8 << 20;
    const FLOWS: u32 = 8000;
    let mut table = SessionTable::new(100_000, Duration::from_secs(3600)).with_memory(BUDGET);
    let before = held();
    let mut peak = 0;
    let mut t = 0;
    for n in 0..FLOWS {
        for f in hostile_flow(n, 6000, 4) {
            t += 1000;
            table.packet(ETHERNET, t, &f, f.len() as u32);
        }
        assert!(table.memory() <= BUDGET, "{} accounted", table.memory());
        peak = peak.max(held().saturating_sub(before));
    }
    // Unbounded, these flows would hold about 8000 x 13 KiB = 100 MiB.
    println!(
        "peak {} KiB held for a budget of {} KiB; {} stopped inspecting, {} evicted",
        peak >> 10,
        BUDGET >> 10,
        table.stats.inspection_stopped,
        table.stats.evicted_memory
    );
    assert!(
        peak <= BUDGET + (BUDGET / 4),
        "peak {peak} for a budget of {BUDGET}"
    );
    assert!(table.stats.inspection_stopped > 0);
    assert_eq!(
        table.stats.evicted_memory, 0,
        "stopping inspections was enough: no session left early"
    );
    let sessions = table.finish();
    assert_eq!(sessions.len(), FLOWS as usize, "every session is recorded");
    // The newest flows are still inspected: their URLs are not found (the heads never
    // end), but their inspection holds, and a normal session after the flood is read whole.
    let mut table = SessionTable::new(100_000, Duration::from_secs(3600)).with_memory(BUDGET);
    feed(&mut table, (0..FLOWS).map(|n| hostile_flow(n, 6000, 4)));
    feed(&mut table, std::iter::once(plain_flow(FLOWS + 1)));
    let last = table.finish().into_iter().find(|s| {
        s.found()
            .urls
            .iter()
            .any(|u| u.ends_with("/firmware/v2.bin"))
    });
    assert!(last.is_some(), "the session after the flood is inspected");
}
