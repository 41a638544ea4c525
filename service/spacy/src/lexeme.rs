//! Lexical attributes and string hashes (PORT.md): the six per-token feature ids tok2vec reads
//! (NORM, PREFIX, SUFFIX, SHAPE, SPACY, IS_SPACE) and the flags the features use.

use std::sync::RwLock;

use ahash::AHashMap as HashMap;
use std::path::Path;

use serde::Deserialize;

use super::NlpError;
use super::pychar::{is_digit, is_letter, is_punct, is_space_str, is_upper_letter};
use super::tokenizer::Token;

/// spaCy's string id: 0 for "", the reserved symbol id, else MurmurHash64A(utf8, seed 1).
pub fn string_id(s: &str, symbols: &HashMap<String, u64>) -> u64 {
    if s.is_empty() {
        return 0;
    }
    match symbols.get(s) {
        Some(&id) => id,
        None => murmurhash64a(s.as_bytes(), 1),
    }
}

/// MurmurHash64A (MurmurHash2, 64-bit), as the `murmurhash` package's `hash64`.
pub fn murmurhash64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut k = u64::from_le_bytes(block.try_into().expect("chunks_exact gives 8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate().rev() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// spaCy's word shape: letters to `X`/`x`, digits to `d`, runs cut at 4, `LONG` from 100 chars.
pub fn shape(text: &str) -> String {
    if text.chars().count() >= 100 {
        return "LONG".into();
    }
    let mut out = String::new();
    let (mut last, mut run) = ('\0', 0);
    for c in text.chars() {
        let mapped = if is_letter(c) {
            if is_upper_letter(c) { 'X' } else { 'x' }
        } else if is_digit(c) {
            'd'
        } else {
            c
        };
        if mapped == last {
            run += 1;
        } else {
            run = 0;
            last = mapped;
        }
        if run < 4 {
            out.push(mapped);
        }
    }
    out
}

/// Whether every character of `text` is punctuation (`is_punct`).
pub fn is_punct_str(text: &str) -> bool {
    !text.is_empty() && text.chars().all(is_punct)
}

#[derive(Deserialize)]
struct Lookups {
    lexeme_norm: HashMap<u64, String>,
}

/// The tables the lexical attributes need: the model's lexeme norms, spaCy's BASE_NORMS and
/// reserved symbols.
#[derive(Debug)]
pub struct Lexicon {
    lexeme_norm: HashMap<u64, String>,
    base_norms: HashMap<String, String>,
    symbols: HashMap<String, u64>,
    /// Memo of text -> its context-free feature ids (norm, prefix, suffix, shape), as spaCy's
    /// vocabulary keeps each lexeme once; cleared when it reaches [`LEXEME_CACHE_ENTRIES`].
    cache: RwLock<HashMap<String, [u64; 4]>>,
}

/// Texts memoised at most before the lexeme cache starts over.
const LEXEME_CACHE_ENTRIES: usize = 200_000;

fn read(path: &Path) -> Result<Vec<u8>, NlpError> {
    std::fs::read(path).map_err(|source| NlpError::Read {
        path: path.to_owned(),
        source,
    })
}

fn format(path: &Path, e: impl std::fmt::Display) -> NlpError {
    NlpError::Format {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

impl Lexicon {
    /// Loads `<model_dir>/vocab/lookups.bin` and `<tables_dir>/{base_norms,symbols_ids}.json`.
    pub fn load(model_dir: &Path, tables_dir: &Path) -> Result<Lexicon, NlpError> {
        let lookups_path = model_dir.join("vocab/lookups.bin");
        let lookups: Lookups =
            rmp_serde::from_slice(&read(&lookups_path)?).map_err(|e| format(&lookups_path, e))?;
        let norms_path = tables_dir.join("base_norms.json");
        let base_norms =
            serde_json::from_slice(&read(&norms_path)?).map_err(|e| format(&norms_path, e))?;
        let symbols_path = tables_dir.join("symbols_ids.json");
        let symbols =
            serde_json::from_slice(&read(&symbols_path)?).map_err(|e| format(&symbols_path, e))?;
        Ok(Lexicon {
            lexeme_norm: lookups.lexeme_norm,
            base_norms,
            symbols,
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// spaCy's string id of `s`.
    pub fn id(&self, s: &str) -> u64 {
        string_id(s, &self.symbols)
    }

    /// The lexeme norm: the model's table, else BASE_NORMS, else Python's `lower()`.
    pub fn lex_norm(&self, text: &str) -> String {
        if let Some(n) = self.lexeme_norm.get(&self.id(text)) {
            return n.clone();
        }
        if let Some(n) = self.base_norms.get(text) {
            return n.clone();
        }
        text.to_lowercase()
    }

    /// The six feature ids of a token: NORM, PREFIX, SUFFIX, SHAPE, SPACY, IS_SPACE.
    pub fn features(&self, token: &Token) -> [u64; 6] {
        let text = token.text.as_str();
        let [lex_norm, prefix, suffix, shape] = self.lexical_ids(text);
        let norm = match &token.norm {
            Some(n) => self.id(n),
            None => lex_norm,
        };
        [
            norm,
            prefix,
            suffix,
            shape,
            u64::from(token.spacy),
            u64::from(is_space_str(text)),
        ]
    }

    /// The ids of a text's lexeme norm, first character, last three characters and shape.
    fn lexical_ids(&self, text: &str) -> [u64; 4] {
        let cached = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(text)
            .copied();
        if let Some(ids) = cached {
            return ids;
        }
        let n_chars = text.chars().count();
        let prefix: String = text.chars().take(1).collect();
        let suffix: String = text.chars().skip(n_chars.saturating_sub(3)).collect();
        let ids = [
            self.id(&self.lex_norm(text)),
            self.id(&prefix),
            self.id(&suffix),
            self.id(&shape(text)),
        ];
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= LEXEME_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(text.to_owned(), ids);
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_ids_are_spacys() {
        // spaCy's documentation: nlp.vocab.strings["coffee"] == 3197928453018144401.
        assert_eq!(murmurhash64a(b"coffee", 1), 3197928453018144401);
        let symbols: HashMap<String, u64> = [("X".to_string(), 101)].into();
        assert_eq!(string_id("X", &symbols), 101);
        assert_eq!(string_id("", &symbols), 0);
    }

    #[test]
    fn shapes_follow_spacy() {
        assert_eq!(shape("Hello"), "Xxxxx");
        assert_eq!(shape("Mississippi"), "Xxxxx");
        assert_eq!(shape("1234567"), "dddd");
        assert_eq!(shape("!!!!!!"), "!!!!");
        assert_eq!(shape("C3-PO"), "Xd-XX");
        assert_eq!(shape(&"a".repeat(100)), "LONG");
    }
}
