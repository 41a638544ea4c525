//! TextDescriptives 2.8.4 readability (PORT.md): Flesch-Kincaid grade, SMOG, Coleman-Liau and
//! ARI over the parser's sentences, float64, in TextDescriptives' evaluation order.

use crate::hyphenate::Hyphenator;
use spacy_en_core_sm::pipeline::Word;

/// The four readability values; NaN where TextDescriptives gives NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Readability {
    /// `flesch_kincaid_grade`.
    pub flesch_kincaid: f64,
    /// `smog` (NaN under 3 sentences).
    pub smog: f64,
    /// `coleman_liau_index`.
    pub coleman_liau: f64,
    /// `automated_readability_index`.
    pub ari: f64,
}

/// TextDescriptives' token filter: not punctuation and no ASCII apostrophe (whitespace is kept).
fn counted(w: &Word) -> bool {
    !w.is_punct && !w.text.contains('\'')
}

/// Sentences as token ranges: a new one at every `sent_start` after the first token.
pub fn sentence_ranges(words: &[Word]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if words.is_empty() {
        return out;
    }
    let mut start = 0;
    for (i, w) in words.iter().enumerate().skip(1) {
        if w.sent_start {
            out.push((start, i));
            start = i;
        }
    }
    out.push((start, words.len()));
    out
}

/// Readability of an annotated document.
pub fn readability(words: &[Word], hyphenator: &Hyphenator) -> Readability {
    let nan = f64::NAN;
    let sentences = sentence_ranges(words);
    let kept: Vec<&Word> = words.iter().filter(|w| counted(w)).collect();
    let n_tokens = kept.len();
    let n_sentences = sentences.len();
    let sentence_lengths: Vec<usize> = sentences
        .iter()
        .map(|&(a, b)| words[a..b].iter().filter(|w| counted(w)).count())
        .collect();
    let mean = |sum: usize, n: usize| if n == 0 { nan } else { sum as f64 / n as f64 };
    let asl = mean(sentence_lengths.iter().sum(), sentence_lengths.len());
    let syllables: Vec<usize> = kept
        .iter()
        .map(|w| hyphenator.syllables(&w.text.to_lowercase()))
        .collect();
    let asw = mean(syllables.iter().sum(), syllables.len());
    let token_length = mean(kept.iter().map(|w| w.text.chars().count()).sum(), n_tokens);
    let hard = syllables.iter().filter(|&&s| s >= 3).count();
    let flesch_kincaid = if asl == 0.0 || asw == 0.0 || asl.is_nan() || asw.is_nan() {
        nan
    } else {
        0.39 * asl + 11.8 * asw - 15.59
    };
    let smog = if n_sentences >= 3 {
        1.043 * (30.0 * (hard as f64 / n_sentences as f64)).powf(0.5) + 3.1291
    } else {
        nan
    };
    let ari = if words.is_empty() {
        nan
    } else {
        4.71 * token_length + 0.5 * asl - 21.43
    };
    let coleman_liau = if n_tokens == 0 {
        nan
    } else {
        0.0588 * (token_length * 100.0)
            - 0.296 * ((n_sentences as f64 / n_tokens as f64) * 100.0)
            - 15.8
    };
    Readability {
        flesch_kincaid,
        smog,
        coleman_liau,
        ari,
    }
}
