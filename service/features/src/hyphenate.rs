//! Liang hyphenation as pyphen 0.18.1 does it with `hyph_en_GB.dic` (PORT.md), for syllable
//! counts: left and right minimums of 2 (the dictionary's own minimums are ignored, as pyphen
//! ignores them).

use ahash::AHashMap as HashMap;
use std::path::Path;

use spacy_en_core_sm::NlpError;

/// Hyphenation patterns: letters -> (offset, digit values).
#[derive(Debug)]
pub struct Hyphenator {
    patterns: HashMap<String, (usize, Vec<u8>)>,
    max_len: usize,
}

const SKIP: [&str; 6] = [
    "%",
    "#",
    "LEFTHYPHENMIN",
    "RIGHTHYPHENMIN",
    "COMPOUNDLEFTHYPHENMIN",
    "COMPOUNDRIGHTHYPHENMIN",
];

impl Hyphenator {
    /// Reads a Hunspell/pyphen `.dic` pattern file (first line: its encoding).
    pub fn load(path: &Path) -> Result<Hyphenator, NlpError> {
        let text = std::fs::read_to_string(path).map_err(|source| NlpError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut patterns = HashMap::new();
        for line in text.split('\n').skip(1) {
            let line = line.trim();
            if line.is_empty() || SKIP.iter().any(|p| line.starts_with(p)) {
                continue;
            }
            let mut letters = String::new();
            let mut values: Vec<u8> = vec![0];
            for c in line.chars() {
                match c.to_digit(10) {
                    Some(d) => *values.last_mut().expect("values starts non-empty") = d as u8,
                    None => {
                        letters.push(c);
                        values.push(0);
                    }
                }
            }
            if values.iter().all(|&v| v == 0) {
                continue;
            }
            let start = values.iter().position(|&v| v != 0).unwrap_or(0);
            let end = values
                .iter()
                .rposition(|&v| v != 0)
                .map_or(values.len(), |e| e + 1);
            patterns.insert(letters, (start, values[start..end].to_vec()));
        }
        let max_len = patterns
            .keys()
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(0);
        if max_len == 0 {
            return Err(NlpError::Format {
                path: path.to_owned(),
                message: "no hyphenation patterns".into(),
            });
        }
        Ok(Hyphenator { patterns, max_len })
    }

    /// Hyphenation points of `word` (character positions), as pyphen's `positions`.
    pub fn positions(&self, word: &str) -> Vec<usize> {
        let lower: Vec<char> = word.to_lowercase().chars().collect();
        let mut padded = Vec::with_capacity(lower.len() + 2);
        padded.push('.');
        padded.extend(&lower);
        padded.push('.');
        let mut refs = vec![0u8; padded.len() + 1];
        let mut key = String::new();
        for i in 0..padded.len().saturating_sub(1) {
            for j in i + 1..=(i + self.max_len).min(padded.len()) {
                key.clear();
                key.extend(&padded[i..j]);
                if let Some((offset, values)) = self.patterns.get(&key) {
                    for (k, &v) in values.iter().enumerate() {
                        let r = &mut refs[i + offset + k];
                        *r = (*r).max(v);
                    }
                }
            }
        }
        let right = word.chars().count() as i64 - 2;
        refs.iter()
            .enumerate()
            .filter(|(_, r)| *r % 2 == 1)
            .map(|(i, _)| i as i64 - 1)
            .filter(|&p| p >= 2 && p <= right)
            .map(|p| p as usize)
            .collect()
    }

    /// TextDescriptives' syllables of a lower-cased token: `max(1, points + hyphens + 1)`.
    pub fn syllables(&self, token_lower: &str) -> usize {
        (self.positions(token_lower).len() + token_lower.matches('-').count() + 1).max(1)
    }
}
