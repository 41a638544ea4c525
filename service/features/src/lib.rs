//! The 25 handcrafted essay features of the repository's `docs/features.md`, as plain
//! functions of the text, its two annotated documents (normalised and raw), the LanguageTool
//! counts and the embeddings of the strings Tier 2 needs. Synchronous: no runtime, no I/O after
//! loading the models.
//!
//! One way through: [`analysis::Analyzer`] annotates an essay → [`embedding_inputs`] lists the
//! distinct strings to embed → [`handcrafted`] combines everything into [`COLUMNS`] order.
//! [`COLUMNS`] is the one table of the columns: names, order, tiers and which columns the spaCy
//! oracle records all derive from it.
#![deny(missing_docs)]

pub mod analysis;
pub mod errors;
pub mod hyphenate;
pub mod limits;
pub mod readability;
pub mod similarity;
pub mod syntax;
pub mod text;

use readability::{Readability, sentence_ranges};
use spacy_en_core_sm::pipeline::Word;
use spacy_en_core_sm::pychar::is_space;

pub use analysis::{Analysis, Analyzer};
pub use errors::ErrorCounts;
pub use limits::{AnalyseError, LIMITS, Limit, Limits};
pub use similarity::{EmbeddingInputs, EmbeddingLookup};
pub use spacy_en_core_sm::Cancel;

/// The version of the feature code. Bump it whenever any feature value can change (a definition,
/// the parse, a limit's effect, the arithmetic); the server puts it into its fingerprint, so
/// clients' caches never serve rows computed by older code. `tests/parity/golden.rs` fails when
/// the values change and this version does not.
pub const FEATURE_CODE_VERSION: u32 = 1;

/// What a column is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The text and its parses alone (the columns the spaCy oracle records).
    Text,
    /// LanguageTool's counts.
    LanguageTool,
    /// Embeddings of the essay, prompt, sentences or paragraphs.
    Embeddings,
}

/// One handcrafted column: its name, tier, source and how to read it off an essay's [`Parts`].
#[derive(Clone, Copy)]
pub struct Column {
    /// The column name (`docs/features.md`).
    pub name: &'static str,
    /// Tier 1 (errors, readability, length), 2 (syntax, similarity) or 3 (structure).
    pub tier: u8,
    /// What the value is computed from.
    pub source: Source,
    /// The value of this column among an essay's computed parts.
    pub value: fn(&Parts) -> f64,
}

impl std::fmt::Debug for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Column")
            .field("name", &self.name)
            .field("tier", &self.tier)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Everything computed for one essay, from which each column reads its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Parts {
    /// Error densities (NaN where LanguageTool was not asked).
    pub errors: errors::ErrorDensity,
    /// Readability of the normalised document.
    pub readability: Readability,
    /// Tier 1 text statistics.
    pub text: TextStats,
    /// Syntax of the raw document.
    pub syntax: syntax::Syntax,
    /// Structure and connectives of the raw text.
    pub structure: text::TextFeatures,
    /// Embedding similarities (NaN where embeddings were not asked).
    pub similarity: similarity::SimilarityFeatures,
}

const fn column(name: &'static str, tier: u8, source: Source, value: fn(&Parts) -> f64) -> Column {
    Column {
        name,
        tier,
        source,
        value,
    }
}

/// The handcrafted columns in schema order: Tier 1, Tier 2, Tier 3.
pub const COLUMNS: [Column; 25] = {
    use Source::{Embeddings as E, LanguageTool as L, Text as T};
    [
        column("grammar_errors_per_100_words", 1, L, |p| p.errors.grammar),
        column("spelling_errors_per_100_words", 1, L, |p| p.errors.spelling),
        column("punctuation_errors_per_100_words", 1, L, |p| {
            p.errors.punctuation
        }),
        column("flesch_kincaid", 1, T, |p| p.readability.flesch_kincaid),
        column("smog", 1, T, |p| p.readability.smog),
        column("coleman_liau", 1, T, |p| p.readability.coleman_liau),
        column("ari", 1, T, |p| p.readability.ari),
        column("avg_sentence_length", 1, T, |p| p.text.avg_sentence_length),
        column("ttr", 1, T, |p| p.text.ttr),
        column("word_count", 1, T, |p| p.text.word_count),
        column("avg_word_length", 1, T, |p| p.text.avg_word_length),
        column("parse_tree_depth", 2, T, |p| p.syntax.parse_tree_depth),
        column("clause_count", 2, T, |p| p.syntax.clause_count),
        column("passive_ratio", 2, T, |p| p.syntax.passive_ratio),
        column("dep_distance", 2, T, |p| p.syntax.dep_distance),
        column("connective_diversity", 2, T, |p| {
            p.structure.connective_diversity
        }),
        column("sent_similarity_variance", 2, E, |p| {
            p.similarity.sent_similarity_variance
        }),
        column("prompt_similarity", 2, E, |p| {
            p.similarity.prompt_similarity
        }),
        column("intro_prompt_sim", 2, E, |p| p.similarity.intro_prompt_sim),
        column("min_para_relevance", 2, E, |p| {
            p.similarity.min_para_relevance
        }),
        column("paragraph_count", 3, T, |p| p.structure.paragraph_count),
        column("has_intro", 3, T, |p| p.structure.has_intro),
        column("has_conclusion", 3, T, |p| p.structure.has_conclusion),
        column("lexical_overlap", 3, T, |p| p.syntax.lexical_overlap),
        column("pronoun_noun_ratio", 3, T, |p| p.syntax.pronoun_noun_ratio),
    ]
};

/// The column names in schema order.
pub fn column_names() -> Vec<&'static str> {
    COLUMNS.iter().map(|c| c.name).collect()
}

/// The column names of one tier (1, 2 or 3), in schema order.
pub fn tier_names(tier: u8) -> Vec<&'static str> {
    COLUMNS
        .iter()
        .filter(|c| c.tier == tier)
        .map(|c| c.name)
        .collect()
}

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

/// The parts of one essay that need neither LanguageTool nor embeddings; the error densities and
/// similarities are NaN.
fn text_parts(text: &str, normalised: &[Word], raw: &[Word], readability: &Readability) -> Parts {
    Parts {
        errors: errors::ErrorDensity::undefined(),
        readability: *readability,
        text: text_stats(normalised),
        syntax: syntax::syntax(raw),
        structure: text::text_features(text),
        similarity: similarity::SimilarityFeatures::undefined(),
    }
}

/// The features computed from the text alone (the [`Source::Text`] columns, those the spaCy
/// oracle records), by name, in schema order.
pub fn oracle_features(
    text: &str,
    normalised: &[Word],
    raw: &[Word],
    readability: &Readability,
) -> Vec<(&'static str, f64)> {
    let parts = text_parts(text, normalised, raw, readability);
    COLUMNS
        .iter()
        .filter(|c| c.source == Source::Text)
        .map(|c| (c.name, (c.value)(&parts)))
        .collect()
}

/// The 25 handcrafted features of one essay, in [`COLUMNS`] order (f64; the wire stores f32).
pub fn handcrafted(
    analysis: &Analysis,
    prompt: &str,
    counts: ErrorCounts,
    embeddings: &dyn EmbeddingLookup,
) -> Result<[f64; 25], FeatureError> {
    let mut parts = text_parts(
        &analysis.text,
        &analysis.normalised,
        &analysis.raw,
        &analysis.readability,
    );
    parts.errors = counts.per_100_words(parts.text.word_count);
    let inputs = EmbeddingInputs::of(analysis, prompt);
    parts.similarity = similarity::similarity_features(&inputs, embeddings)?;
    Ok(COLUMNS.map(|c| (c.value)(&parts)))
}

/// Every distinct string one essay needs embedded (essay, prompt, sentences, paragraphs), first
/// occurrence first.
pub fn embedding_inputs(analysis: &Analysis, prompt: &str) -> Vec<String> {
    EmbeddingInputs::of(analysis, prompt).distinct()
}
