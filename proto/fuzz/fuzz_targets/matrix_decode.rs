//! `hemma_proto::matrix::decode` on a matrix built from arbitrary bytes (the harness is
//! `hemma_proto::fuzz_harness::matrix_decode`, which the unit tests replay over the corpus).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hemma_proto::fuzz_harness::matrix_decode(data);
});
