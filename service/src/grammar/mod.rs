//! The LanguageTool proxy: upstream flavours, a pooled and health-checked set of instances, a
//! content-addressed cache, long-text splitting, UTF-16 offset conversion and error counts.
//!
//! Data flows one way: [`checker::Grammar`] looks a text up in the [`cache`], else splits it
//! ([`split`]) if an upstream limit requires, checks the parts on the [`pool`], converts the
//! offsets ([`offsets`]), classifies the matches ([`categorise`]) and stores the result.

pub mod cache;
pub mod categorise;
pub mod checker;
pub mod offsets;
pub mod options;
pub mod pool;
pub mod response;
pub mod split;
pub mod upstream;

use serde::{Deserialize, Serialize};

pub use categorise::{Counts, Kind};
pub use checker::{Grammar, GrammarError};
pub use options::CheckOptions;

/// Replacements kept per match (the cache stores no more).
pub const MAX_REPLACEMENTS: usize = 10;

/// One match, with offsets in both units and its count kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    /// Start, UTF-16 units (as LanguageTool reports it).
    pub offset_utf16: usize,
    /// Length, UTF-16 units.
    pub length_utf16: usize,
    /// Start, Unicode scalar values.
    pub offset: usize,
    /// Length, Unicode scalar values.
    pub length: usize,
    /// The explanation.
    pub message: String,
    /// The short explanation (often empty).
    pub short_message: String,
    /// Rule id.
    pub rule_id: String,
    /// Rule sub id.
    pub rule_sub_id: String,
    /// Rule description.
    pub rule_description: String,
    /// Category id.
    pub category_id: String,
    /// Category name.
    pub category_name: String,
    /// ITS issue type.
    pub issue_type: String,
    /// First replacements, best first (at most [`MAX_REPLACEMENTS`]).
    pub replacements: Vec<String>,
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
