//! Corpus runs against hemma-offload: what a run of many essays needs that is not presentation.
//! The `hemma` CLI and the Python package both run through it, so they share the cache (same
//! location, format and keys), the window, the retries and the resume.
//!
//! [`runner::extract`] looks every distinct (text, prompt) up in the [`cache`], streams the misses
//! in chunks to one or more servers ([`spread`]), stores each answered chunk at once and returns
//! the matrices in input order;
//! [`atomic::write_atomically`] is the one writer of files that must never be seen half-written.
#![deny(missing_docs)]

pub mod atomic;
pub mod cache;
#[doc(hidden)]
pub mod fuzz_harness;
pub mod progress;
pub mod runner;
pub mod spread;

pub use progress::{Progress, Silent};
pub use runner::{ExtractReport, LimitedRow, RunError, RunOptions, RunOutput, StageSums, extract};
pub use spread::ServerReport;

/// One essay of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Essay {
    /// Its id (names it in errors and outputs).
    pub id: String,
    /// The text, byte-exact.
    pub text: String,
    /// Its prompt; the handcrafted and combined sets need one.
    pub prompt: Option<String>,
}
