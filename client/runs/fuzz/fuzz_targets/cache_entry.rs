//! The client cache's entry decoder on arbitrary bytes, as they are and sealed with their own
//! checksum (the harness is `hemma_runs::fuzz_harness::cache_entry`, which the unit tests replay
//! over the corpus).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hemma_runs::fuzz_harness::cache_entry(data);
});
