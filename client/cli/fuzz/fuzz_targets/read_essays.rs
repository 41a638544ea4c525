//! The CLI's essay readers (`hemma_cli::input::read_essays`: JSON Lines and CSV) on arbitrary
//! bytes written to a scratch file (the harness is `hemma_cli::fuzz_harness::read_essays_from`,
//! which the unit tests replay over the corpus).
#![no_main]

use std::sync::OnceLock;

/// One scratch folder under the system's temporary folder for the whole run (three small files,
/// rewritten on every input; statics are never dropped, so it outlives the run).
static SCRATCH: OnceLock<tempfile::TempDir> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = SCRATCH.get_or_init(|| tempfile::tempdir().expect("a scratch folder"));
    hemma_cli::fuzz_harness::read_essays_from(dir.path(), data);
});
