//! The Tier 2 features made of embeddings: sentence-similarity variance and prompt relevance,
//! plus the strings they need embedded.

use std::collections::{HashMap, HashSet};

use super::FeatureError;
use super::analysis::Analysis;
use super::text::paragraphs;
use crate::readability::sentence_ranges;
use spacy_en_core_sm::pipeline::Word;
use spacy_en_core_sm::pychar::is_space;

/// Where the features find the embedding of a string.
pub trait EmbeddingLookup {
    /// The embedding of `text`, if one was computed.
    fn embedding(&self, text: &str) -> Option<&[f32]>;
}

impl EmbeddingLookup for HashMap<String, Vec<f32>> {
    fn embedding(&self, text: &str) -> Option<&[f32]> {
        self.get(text).map(Vec::as_slice)
    }
}

/// The strings of one essay whose embeddings Tier 2 needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingInputs {
    /// The essay text as sent.
    pub essay: String,
    /// The prompt.
    pub prompt: String,
    /// The parser's sentences of the raw document, stripped, empty ones dropped.
    pub sentences: Vec<String>,
    /// The paragraphs (docs/features.md Tier 2).
    pub paragraphs: Vec<String>,
}

/// Sentence texts of an annotated document: each sentence span's text (its last token's
/// trailing space excluded), stripped as Python's `str.strip`, empty ones dropped.
pub fn sentence_texts(words: &[Word]) -> Vec<String> {
    sentence_ranges(words)
        .into_iter()
        .map(|(a, b)| {
            let mut s = String::new();
            for (k, w) in words[a..b].iter().enumerate() {
                s.push_str(&w.text);
                if w.spacy && a + k + 1 < b {
                    s.push(' ');
                }
            }
            s.trim_matches(is_space).to_owned()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

impl EmbeddingInputs {
    /// The strings of an analysed essay and its prompt.
    pub fn of(analysis: &Analysis, prompt: &str) -> EmbeddingInputs {
        EmbeddingInputs {
            essay: analysis.text.clone(),
            prompt: prompt.to_owned(),
            sentences: sentence_texts(&analysis.raw),
            paragraphs: paragraphs(&analysis.text)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }

    /// Each distinct string once, first occurrence first (essay, prompt, sentences, paragraphs).
    pub fn distinct(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        std::iter::once(&self.essay)
            .chain(std::iter::once(&self.prompt))
            .chain(&self.sentences)
            .chain(&self.paragraphs)
            .filter(|s| seen.insert(s.as_str()))
            .cloned()
            .collect()
    }
}

/// The four embedding features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimilarityFeatures {
    /// Population variance of the cosine of every sentence pair i < j.
    pub sent_similarity_variance: f64,
    /// cosine(essay, prompt).
    pub prompt_similarity: f64,
    /// cosine(first paragraph, prompt).
    pub intro_prompt_sim: f64,
    /// Minimum over paragraphs of cosine(paragraph, prompt).
    pub min_para_relevance: f64,
}

impl SimilarityFeatures {
    /// All four NaN: embeddings were not asked.
    pub fn undefined() -> SimilarityFeatures {
        SimilarityFeatures {
            sent_similarity_variance: f64::NAN,
            prompt_similarity: f64::NAN,
            intro_prompt_sim: f64::NAN,
            min_para_relevance: f64::NAN,
        }
    }
}

/// Cosine similarity in f64; 0 when either vector has zero norm.
pub fn cosine(a: &[f32], b: &[f32]) -> Result<f64, FeatureError> {
    if a.len() != b.len() {
        return Err(FeatureError::Dimension(a.len(), b.len()));
    }
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    let norm = na.sqrt() * nb.sqrt();
    Ok(if norm == 0.0 { 0.0 } else { dot / norm })
}

/// Population variance of the cosines of every sentence pair i < j (0 under 2 sentences), in
/// O(sentences) memory: the pairs' cosines are computed twice, once for their mean and once for
/// the squared deviations, each time in the pair order (0,1), (0,2), ..., (1,2), ... and with
/// the same arithmetic as [`cosine`], so the result is the same to the bit as summing a list of
/// all pairs (which held 3 GB for 28,000 sentences).
pub fn sent_similarity_variance(sentences: &[&[f32]]) -> Result<f64, FeatureError> {
    let n = sentences.len();
    if n < 2 {
        return Ok(0.0);
    }
    let dim = sentences[0].len();
    if let Some(other) = sentences.iter().find(|s| s.len() != dim) {
        return Err(FeatureError::Dimension(dim, other.len()));
    }
    let wide: Vec<Vec<f64>> = sentences
        .iter()
        .map(|s| s.iter().map(|&x| f64::from(x)).collect())
        .collect();
    // Each norm is the same sequential sum of squares `cosine` accumulates beside the dot.
    let norms: Vec<f64> = wide
        .iter()
        .map(|v| v.iter().fold(0.0, |acc, x| acc + x * x).sqrt())
        .collect();
    let pairs = (n * (n - 1) / 2) as f64;
    let mut sum = 0.0f64;
    for_each_pair_cosine(&wide, &norms, |c| sum += c);
    let mean = sum / pairs;
    let mut squares = 0.0f64;
    for_each_pair_cosine(&wide, &norms, |c| squares += (c - mean) * (c - mean));
    Ok(squares / pairs)
}

/// Calls `f` with the cosine of every pair i < j in order (0,1), (0,2), ..., (1,2), ...; four
/// dot products at a time, each summed sequentially, so the values are `cosine`'s.
fn for_each_pair_cosine(v: &[Vec<f64>], norms: &[f64], mut f: impl FnMut(f64)) {
    let cos = |dot: f64, i: usize, j: usize| {
        let norm = norms[i] * norms[j];
        if norm == 0.0 { 0.0 } else { dot / norm }
    };
    for i in 0..v.len() {
        let a = &v[i];
        let mut j = i + 1;
        while j + 4 <= v.len() {
            let (b0, b1, b2, b3) = (&v[j], &v[j + 1], &v[j + 2], &v[j + 3]);
            let mut d = [0.0f64; 4];
            for k in 0..a.len() {
                d[0] += a[k] * b0[k];
                d[1] += a[k] * b1[k];
                d[2] += a[k] * b2[k];
                d[3] += a[k] * b3[k];
            }
            for (o, dot) in d.into_iter().enumerate() {
                f(cos(dot, i, j + o));
            }
            j += 4;
        }
        for b in &v[j..] {
            let dot = a.iter().zip(b).fold(0.0, |acc, (x, y)| acc + x * y);
            f(cos(dot, i, j));
            j += 1;
        }
    }
}

fn find<'a>(
    lookup: &'a dyn EmbeddingLookup,
    role: &'static str,
    text: &str,
) -> Result<&'a [f32], FeatureError> {
    lookup
        .embedding(text)
        .ok_or_else(|| FeatureError::MissingEmbedding {
            role,
            preview: text.chars().take(40).collect(),
        })
}

/// The embedding features of one essay.
pub fn similarity_features(
    inputs: &EmbeddingInputs,
    lookup: &dyn EmbeddingLookup,
) -> Result<SimilarityFeatures, FeatureError> {
    let prompt = find(lookup, "prompt", &inputs.prompt)?;
    let essay = find(lookup, "essay", &inputs.essay)?;
    let sentences = inputs
        .sentences
        .iter()
        .map(|s| find(lookup, "sentence", s))
        .collect::<Result<Vec<_>, _>>()?;
    let sent_similarity_variance = sent_similarity_variance(&sentences)?;
    let relevance = inputs
        .paragraphs
        .iter()
        .map(|p| cosine(find(lookup, "paragraph", p)?, prompt))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SimilarityFeatures {
        sent_similarity_variance,
        prompt_similarity: cosine(essay, prompt)?,
        intro_prompt_sim: relevance.first().copied().unwrap_or(0.0),
        min_para_relevance: relevance.iter().copied().reduce(f64::min).unwrap_or(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_is_zero_for_a_zero_vector_and_one_for_parallel_ones() {
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 2.0]).unwrap(), 0.0);
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!(cosine(&[1.0], &[1.0, 2.0]).is_err());
    }

    fn inputs(sentences: &[&str], paragraphs: &[&str]) -> EmbeddingInputs {
        EmbeddingInputs {
            essay: "E".into(),
            prompt: "P".into(),
            sentences: sentences.iter().map(|s| s.to_string()).collect(),
            paragraphs: paragraphs.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn table(rows: &[(&str, [f32; 2])]) -> HashMap<String, Vec<f32>> {
        rows.iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    }

    #[test]
    fn variance_relevance_and_the_empty_cases() {
        let t = table(&[
            ("E", [1.0, 0.0]),
            ("P", [1.0, 0.0]),
            ("a", [1.0, 0.0]),
            ("b", [0.0, 1.0]),
            ("c", [1.0, 1.0]),
        ]);
        // Pairs: a·b = 0, a·c = b·c = 1/sqrt(2); population variance of the three.
        let f = similarity_features(&inputs(&["a", "b", "c"], &["b", "a"]), &t).unwrap();
        let (c0, c1) = (0.0, std::f64::consts::FRAC_1_SQRT_2);
        let mean = (c0 + 2.0 * c1) / 3.0;
        let var = ((c0 - mean).powi(2) + 2.0 * (c1 - mean).powi(2)) / 3.0;
        assert!((f.sent_similarity_variance - var).abs() < 1e-12);
        assert_eq!(f.prompt_similarity, 1.0);
        assert_eq!(f.intro_prompt_sim, 0.0);
        assert_eq!(f.min_para_relevance, 0.0);
        let none = similarity_features(&inputs(&["a"], &[]), &t).unwrap();
        assert_eq!(
            (
                none.sent_similarity_variance,
                none.intro_prompt_sim,
                none.min_para_relevance
            ),
            (0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn a_missing_embedding_names_the_string() {
        let t = table(&[("E", [1.0, 0.0]), ("P", [1.0, 0.0])]);
        let err = similarity_features(&inputs(&["a sentence"], &[]), &t).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no embedding was given for the sentence \"a sentence\""
        );
    }

    #[test]
    fn distinct_strings_keep_first_occurrence_order() {
        let mut i = inputs(&["One.", "Two."], &["One. Two."]);
        i.essay = "One. Two.".into();
        assert_eq!(i.distinct(), vec!["One. Two.", "P", "One.", "Two."]);
    }
}
