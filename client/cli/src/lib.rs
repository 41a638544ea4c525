//! The `hemma` command line as a library: its arguments ([`cli`]), input readers ([`input`]),
//! output formats ([`outputs`]) and the file commands over [`hemma_runs`] and [`hemma_client`].
//! The binary is `src/main.rs`; the docs test parses every documented command line with [`cli`].
#![deny(missing_docs)]

pub mod check_file;
pub mod cli;
pub mod embed_file;
pub mod extract_file;
pub mod file_run;
#[doc(hidden)]
pub mod fuzz_harness;
pub mod input;
pub mod outputs;
