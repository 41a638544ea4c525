//! The drop-in HTTP API's request bodies (`POST /v1/extract`, `POST /v1/embed`) on arbitrary
//! bytes (the harness is `hemma_server::api::compat::fuzz_harness::compat_request`, which the
//! unit tests replay over the corpus).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hemma_server::api::compat::fuzz_harness::compat_request(data);
});
