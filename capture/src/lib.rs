//! The capture engine: where packets enter pcap-agent.
//!
//! # Layout (grows with the capture issue)
//!
//! - `device`: opening an allowed interface with libpcap (snaplen, buffer, immediate mode).
//! - `filter`: BPF validation without a device and the effective filter that excludes the
//!   agent's own store traffic.
//! - `limits`, `rate`: stop conditions and token-bucket rate limits.
//! - `writer`: the pcap writer, rotated by size and by a timer, writing through the spool's
//!   encrypting segment writer.
//! - `session/`: the flow table and the twelve session metadata fields.
//! - `worker`: one named OS thread per capture.
//!
//! # Where the data goes
//!
//! libpcap (BPF) -> rate limiter -> pcap writer -> spool segment writer (`pcap-uploader`), and a
//! copy of each packet's headers to the session table. Nothing here talks to the network or the
//! store.

#![forbid(unsafe_code)]
