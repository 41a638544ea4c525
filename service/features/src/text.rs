//! Features of the raw text itself: connective diversity and paragraph structure.

use super::safe_divide;
use spacy_en_core_sm::pychar::{is_letter, is_space};

/// The connectives counted (single words and phrases), in docs/features.md order.
pub const CONNECTIVES: [&str; 15] = [
    "however",
    "therefore",
    "moreover",
    "furthermore",
    "nevertheless",
    "thus",
    "hence",
    "consequently",
    "although",
    "because",
    "meanwhile",
    "additionally",
    "finally",
    "in addition",
    "on the other hand",
];

/// Phrases that mark a conclusion in the last paragraph.
pub const CONCLUSION_MARKERS: [&str; 5] = [
    "in conclusion",
    "to conclude",
    "in summary",
    "overall",
    "to sum up",
];

/// Raw-text features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextFeatures {
    /// Distinct connectives found / occurrences.
    pub connective_diversity: f64,
    /// Paragraphs.
    pub paragraph_count: f64,
    /// The first paragraph has at least 30 words.
    pub has_intro: f64,
    /// The last paragraph contains a conclusion marker.
    pub has_conclusion: f64,
}

/// Python's `\w` (letters, numbers, underscore) for the `\b` of the connective search.
fn is_word_char(c: char) -> bool {
    is_letter(c) || c.is_numeric() || c == '_'
}

/// Occurrences of `phrase` in `text` bounded by non-word characters (regex `\bphrase\b`).
fn count_on_word_boundaries(text: &str, phrase: &str) -> usize {
    text.match_indices(phrase)
        .filter(|(at, m)| {
            let before = text[..*at].chars().next_back();
            let after = text[at + m.len()..].chars().next();
            !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char)
        })
        .count()
}

/// Python's `str.strip()`.
fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Paragraphs: the stripped text split where whitespace holds two or more newlines (the regex
/// `\n\s*\n`), each part stripped, empty parts dropped; a text with no split is one paragraph.
pub fn paragraphs(text: &str) -> Vec<&str> {
    let t = strip(text);
    if t.is_empty() {
        return Vec::new();
    }
    let mut parts = Vec::new();
    let mut start = 0;
    let mut run: Option<usize> = None;
    let mut newlines = 0;
    let mut first_nl = 0;
    let mut last_nl = 0;
    for (i, c) in t.char_indices() {
        if is_space(c) {
            if run.is_none() {
                run = Some(i);
                newlines = 0;
            }
            if c == '\n' {
                if newlines == 0 {
                    first_nl = i;
                }
                last_nl = i;
                newlines += 1;
            }
        } else if run.take().is_some() && newlines >= 2 {
            parts.push(&t[start..first_nl]);
            start = last_nl + 1;
        }
    }
    parts.push(&t[start..]);
    let kept: Vec<&str> = parts
        .into_iter()
        .map(strip)
        .filter(|p| !p.is_empty())
        .collect();
    if kept.is_empty() { vec![t] } else { kept }
}

/// Connective diversity and paragraph features of the raw text.
pub fn text_features(text: &str) -> TextFeatures {
    let low = text.to_lowercase();
    let counts: Vec<usize> = CONNECTIVES
        .iter()
        .map(|c| count_on_word_boundaries(&low, c))
        .collect();
    let total: usize = counts.iter().sum();
    let distinct = counts.iter().filter(|&&n| n > 0).count();
    let ps = paragraphs(text);
    let words_in = |p: &str| p.split(is_space).filter(|w| !w.is_empty()).count();
    TextFeatures {
        connective_diversity: safe_divide(distinct as f64, total as f64),
        paragraph_count: ps.len() as f64,
        has_intro: if ps.first().is_some_and(|p| words_in(p) >= 30) {
            1.0
        } else {
            0.0
        },
        has_conclusion: if ps.last().is_some_and(|p| {
            let low = p.to_lowercase();
            CONCLUSION_MARKERS.iter().any(|m| low.contains(m))
        }) {
            1.0
        } else {
            0.0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_split_on_blank_lines() {
        assert_eq!(paragraphs("a\n\nb"), vec!["a", "b"]);
        assert_eq!(paragraphs("  a\n \t\n\n b \n c  "), vec!["a", "b \n c"]);
        assert_eq!(paragraphs("one"), vec!["one"]);
        assert!(paragraphs(" \n\n ").is_empty());
    }

    #[test]
    fn connectives_count_on_word_boundaries() {
        let f = text_features("However, thus. Thusly however! In addition, in additional");
        // however x2, thus x1, in addition x1: 3 distinct / 4 occurrences.
        assert_eq!(f.connective_diversity, 0.75);
    }
}
