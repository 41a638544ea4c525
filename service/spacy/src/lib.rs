//! A native port of spaCy's `en_core_web_sm` 3.8.0 inference (the parts the essay features use),
//! reading the model's own files from the repository's `models/spacy/` (see this crate's `PORT.md`).
//!
//! [`pipeline::Pipeline`] runs, per text: [`tokenizer`] → [`lexeme`] features → [`tok2vec`] →
//! [`tagger`] → [`parser`] → [`attribute_ruler`]. The model files are read with [`thinc`];
//! Python's character classes are in [`pychar`] (tables generated from Python 3.11 in
//! [`unicode_tables`]).

pub mod affix;
pub mod attribute_ruler;
pub mod cancel;
#[doc(hidden)]
pub mod fuzz_harness;
pub mod gemm;
pub mod lexeme;
pub mod parser;
pub mod pipeline;
pub mod prefilter;
pub mod pychar;
pub mod scratch;
pub mod tagger;
pub mod thinc;
pub mod tok2vec;
pub mod tokenizer;
pub mod unicode_tables;

use std::path::PathBuf;

pub use cancel::Cancel;

/// Why the NLP pipeline cannot load or run.
#[derive(Debug, thiserror::Error)]
pub enum NlpError {
    /// A model file could not be read.
    #[error("cannot read spaCy model file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A model file does not have the expected layout.
    #[error("spaCy model file {path} is not in the expected format: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What did not fit.
        message: String,
    },
    /// A tokenizer pattern did not compile.
    #[error("the tokenizer's {name} pattern does not compile: {message}")]
    Pattern {
        /// `prefix`, `suffix`, `infix` or `url`.
        name: &'static str,
        /// The regex engine's message.
        message: String,
    },
    /// A pattern gave up on an input (backtracking limit).
    #[error("the tokenizer's {name} pattern gave up on a {len}-byte input: {message}")]
    Match {
        /// Which pattern.
        name: &'static str,
        /// Input length in bytes.
        len: usize,
        /// The regex engine's message.
        message: String,
    },
    /// The caller cancelled the request ([`Cancel`]).
    #[error("the request was cancelled")]
    Cancelled,
}
