//! The LanguageTool proxy: upstream flavours, a pooled and health-checked set of instances, a
//! content-addressed cache, long-text splitting, UTF-16 offset conversion and error counts.
//!
//! Data flows one way: [`checker::Grammar`] looks a text up in the [`cache`], else splits it
//! ([`split`]) if an upstream limit requires, checks the parts on the [`pool`], converts the
//! offsets ([`offsets`]), classifies the matches ([`categorise`]) and stores the result.
#![deny(missing_docs)]

pub mod cache;
pub mod categorise;
pub mod checker;
pub mod metrics;
pub mod offsets;
pub mod options;
pub mod pool;
pub mod response;
pub mod settings;
pub mod split;
pub mod start;
pub mod upstream;

use serde::{Deserialize, Serialize};

pub use categorise::{Counts, Kind};
pub use checker::{Grammar, GrammarError, MAX_PART_UTF16};
pub use options::CheckOptions;
pub use response::ReceivedMatch;

/// Replacements kept per match (the cache stores no more).
pub const MAX_REPLACEMENTS: usize = 10;

/// One match: what LanguageTool said, its offsets in characters, and its count kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    /// The match as received (UTF-16 offsets, rule, category, message, replacements).
    #[serde(flatten)]
    pub received: ReceivedMatch,
    /// Start, Unicode scalar values.
    pub offset: usize,
    /// Length, Unicode scalar values.
    pub length: usize,
    /// The count it adds to.
    pub kind: Kind,
}

/// The checked form of one text: what the cache holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The LanguageTool version that produced it.
    pub languagetool_version: String,
    /// Matches ordered by offset.
    pub matches: Vec<Match>,
    /// The derived counts.
    pub counts: Counts,
}
