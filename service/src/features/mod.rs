//! The handcrafted essay features of `shared/docs/FEATURES.md`, as plain functions of the text
//! and its annotations. So far the 18 that need neither LanguageTool nor embeddings: Tier 1 text
//! statistics and readability (normalised document), Tier 2 syntax and Tier 3 structure (raw
//! document), and the raw-text features (connectives, paragraphs).

pub mod syntax;
pub mod text;

use crate::nlp::pipeline::Word;
use crate::nlp::readability::{Readability, sentence_ranges};

/// `0` when the divisor is 0, else `a / b`.
pub fn safe_divide(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

/// Tier 1 text statistics of the normalised document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextStats {
    /// Tokens that are neither whitespace nor punctuation.
    pub word_count: f64,
    /// `word_count / sentences`.
    pub avg_sentence_length: f64,
    /// Distinct lower-cased words / words.
    pub ttr: f64,
    /// Mean word length in characters.
    pub avg_word_length: f64,
}

/// Tier 1 statistics of an annotated (normalised) document.
pub fn text_stats(words: &[Word]) -> TextStats {
    let kept: Vec<&str> = words
        .iter()
        .filter(|w| !w.is_space && !w.is_punct)
        .map(|w| w.text.as_str())
        .collect();
    let wc = kept.len() as f64;
    let sentences = sentence_ranges(words).len() as f64;
    let distinct: std::collections::HashSet<String> =
        kept.iter().map(|w| w.to_lowercase()).collect();
    let chars: usize = kept.iter().map(|w| w.chars().count()).sum();
    TextStats {
        word_count: wc,
        avg_sentence_length: safe_divide(wc, sentences),
        ttr: safe_divide(distinct.len() as f64, wc),
        avg_word_length: safe_divide(chars as f64, wc),
    }
}

/// The 18 features the spaCy oracle records, by name.
pub fn oracle_features(
    text: &str,
    normalised: &[Word],
    raw: &[Word],
    readability: &Readability,
) -> Vec<(&'static str, f64)> {
    let t = text_stats(normalised);
    let s = syntax::syntax(raw);
    let x = text::text_features(text);
    vec![
        ("word_count", t.word_count),
        ("avg_sentence_length", t.avg_sentence_length),
        ("ttr", t.ttr),
        ("avg_word_length", t.avg_word_length),
        ("flesch_kincaid", readability.flesch_kincaid),
        ("smog", readability.smog),
        ("coleman_liau", readability.coleman_liau),
        ("ari", readability.ari),
        ("parse_tree_depth", s.parse_tree_depth),
        ("clause_count", s.clause_count),
        ("passive_ratio", s.passive_ratio),
        ("dep_distance", s.dep_distance),
        ("lexical_overlap", s.lexical_overlap),
        ("pronoun_noun_ratio", s.pronoun_noun_ratio),
        ("connective_diversity", x.connective_diversity),
        ("paragraph_count", x.paragraph_count),
        ("has_intro", x.has_intro),
        ("has_conclusion", x.has_conclusion),
    ]
}
