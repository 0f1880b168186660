#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pcap_fuzzing::control_request(data));
