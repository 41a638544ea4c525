//! The 25 handcrafted essay features of `shared/docs/FEATURES.md` (schema v1), as plain
//! functions of the text, its two annotated documents (normalised and raw), the LanguageTool
//! counts and the embeddings of the strings Tier 2 needs.
//!
//! One way through: [`analysis::Analyzer`] annotates an essay → [`embedding_inputs`] lists the
//! distinct strings to embed → [`handcrafted`] combines everything into [`COLUMNS`] order.

pub mod analysis;
pub mod errors;
pub mod similarity;
pub mod syntax;
pub mod text;

use crate::nlp::pipeline::Word;
use crate::nlp::pychar::is_space;
use crate::nlp::readability::{Readability, sentence_ranges};

pub use analysis::{Analysis, Analyzer};
pub use errors::ErrorCounts;
pub use similarity::{EmbeddingInputs, EmbeddingLookup};

/// The handcrafted columns in schema order: Tier 1, Tier 2, Tier 3.
pub const COLUMNS: [&str; 25] = [
    "grammar_errors_per_100_words",
    "spelling_errors_per_100_words",
    "punctuation_errors_per_100_words",
    "flesch_kincaid",
    "smog",
    "coleman_liau",
    "ari",
    "avg_sentence_length",
    "ttr",
    "word_count",
    "avg_word_length",
    "parse_tree_depth",
    "clause_count",
    "passive_ratio",
    "dep_distance",
    "connective_diversity",
    "sent_similarity_variance",
    "prompt_similarity",
    "intro_prompt_sim",
    "min_para_relevance",
    "paragraph_count",
    "has_intro",
    "has_conclusion",
    "lexical_overlap",
    "pronoun_noun_ratio",
];

/// Version of the feature contract these functions implement.
pub const SCHEMA_VERSION: u32 = 1;

/// Why the features of an essay cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    /// A string Tier 2 needs has no embedding.
    #[error("no embedding was given for the {role} {preview:?}")]
    MissingEmbedding {
        /// `essay`, `prompt`, `sentence` or `paragraph`.
        role: &'static str,
        /// The string's first characters.
        preview: String,
    },
    /// Two embeddings have different lengths.
    #[error("embeddings of different dimensions: {0} and {1}")]
    Dimension(usize, usize),
}

/// `0` when the divisor is 0, else `a / b`.
pub fn safe_divide(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

/// Python's `re.sub(r"\s+", " ", text).strip()`: the text of the normalised document.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if is_space(c) {
            in_space = true;
        } else {
            if in_space && !out.is_empty() {
                out.push(' ');
            }
            in_space = false;
            out.push(c);
        }
    }
    out
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

/// The 18 features that need neither LanguageTool nor embeddings (those the spaCy oracle
/// records), by name.
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

/// The 25 handcrafted features of one essay, in [`COLUMNS`] order (f64; the wire stores f32).
pub fn handcrafted(
    analysis: &Analysis,
    prompt: &str,
    counts: ErrorCounts,
    embeddings: &dyn EmbeddingLookup,
) -> Result<[f64; 25], FeatureError> {
    let t = text_stats(&analysis.normalised);
    let r = &analysis.readability;
    let e = counts.per_100_words(t.word_count);
    let s = syntax::syntax(&analysis.raw);
    let x = text::text_features(&analysis.text);
    let inputs = EmbeddingInputs::of(analysis, prompt);
    let sim = similarity::similarity_features(&inputs, embeddings)?;
    Ok([
        e.grammar,
        e.spelling,
        e.punctuation,
        r.flesch_kincaid,
        r.smog,
        r.coleman_liau,
        r.ari,
        t.avg_sentence_length,
        t.ttr,
        t.word_count,
        t.avg_word_length,
        s.parse_tree_depth,
        s.clause_count,
        s.passive_ratio,
        s.dep_distance,
        x.connective_diversity,
        sim.sent_similarity_variance,
        sim.prompt_similarity,
        sim.intro_prompt_sim,
        sim.min_para_relevance,
        x.paragraph_count,
        x.has_intro,
        x.has_conclusion,
        s.lexical_overlap,
        s.pronoun_noun_ratio,
    ])
}

/// Every distinct string one essay needs embedded (essay, prompt, sentences, paragraphs), first
/// occurrence first.
pub fn embedding_inputs(analysis: &Analysis, prompt: &str) -> Vec<String> {
    EmbeddingInputs::of(analysis, prompt).distinct()
}
