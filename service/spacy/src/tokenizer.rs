//! spaCy's rule-based tokenizer as `en_core_web_sm` 3.8.0 runs it (PORT.md): a whitespace pass,
//! prefix/suffix/infix/URL rules and the model's 1,347 exceptions per chunk, then the
//! special-case matcher over the whole token list.
//!
//! The patterns are the model's own, compiled with `fancy-regex` (they need look-around); the URL
//! pattern is the spec's rewrite with Python's `\w`, `\d` and `\S` spelled out, so it matches
//! exactly what Python's `re` matches. Affix lengths are counted in characters, as Python does.

use std::collections::BTreeMap;

use ahash::AHashMap as HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use super::prefilter::FilteredRegex;
use serde::Deserialize;

use super::NlpError;
use super::pychar::is_space;

/// msgpack attribute ids of a tokenizer exception's token.
const ORTH: u64 = 65;
const NORM: u64 = 67;

/// One token: its text, whether one space follows it, and the NORM an exception gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token text (a slice of the input, or an exception's ORTH).
    pub text: String,
    /// Followed by exactly one space that belongs to no token.
    pub spacy: bool,
    /// Token-level NORM from a tokenizer exception.
    pub norm: Option<String>,
}

impl Token {
    fn plain(text: &str) -> Token {
        Token {
            text: text.to_owned(),
            spacy: false,
            norm: None,
        }
    }
}

/// A tokenized text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The tokens in order; their texts and spaces rebuild the input.
    pub tokens: Vec<Token>,
    /// The special-case matcher replaced a span starting at token 0 (spaCy then drops token 0's
    /// preset sentence start; PORT.md point 5).
    pub first_token_replaced: bool,
}

#[derive(Deserialize)]
struct TokenizerFile {
    prefix_search: String,
    suffix_search: String,
    infix_finditer: String,
    url_match: Option<String>,
    token_match: Option<String>,
    exceptions: HashMap<String, Vec<HashMap<u64, String>>>,
}

/// An exception's tokens: ORTH and optional NORM.
type Rule = Vec<(String, Option<String>)>;

/// The tokenizer of one model.
#[derive(Debug)]
pub struct Tokenizer {
    prefix: FilteredRegex,
    suffix: FilteredRegex,
    infix: FilteredRegex,
    url: FilteredRegex,
    rules: HashMap<String, Rule>,
    /// Special-case matcher: token texts of an exception tokenized without exceptions -> its key.
    patterns: HashMap<Vec<String>, String>,
    max_pattern_len: usize,
    /// Memo of chunk -> tokens (spaCy keeps the same cache; it never changes a result; see
    /// PORT.md). Cleared when it reaches [`CACHE_ENTRIES`].
    cache: RwLock<HashMap<String, Arc<[Token]>>>,
}

/// Chunks memoised at most before the cache starts over.
const CACHE_ENTRIES: usize = 200_000;

impl Tokenizer {
    /// Loads `<model_dir>/tokenizer` and the URL pattern rewritten for Rust (`url_pattern_file`).
    pub fn load(model_dir: &Path, url_pattern_file: &Path) -> Result<Tokenizer, NlpError> {
        let path = model_dir.join("tokenizer");
        let bytes = std::fs::read(&path).map_err(|source| NlpError::Read {
            path: path.clone(),
            source,
        })?;
        let file: TokenizerFile = rmp_serde::from_slice(&bytes).map_err(|e| NlpError::Format {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if file.token_match.is_some() {
            return Err(NlpError::Format {
                path,
                message: "token_match is set; this port implements the model without it".into(),
            });
        }
        if file.url_match.is_none() {
            return Err(NlpError::Format {
                path,
                message: "url_match is missing".into(),
            });
        }
        let url_text =
            std::fs::read_to_string(url_pattern_file).map_err(|source| NlpError::Read {
                path: url_pattern_file.to_owned(),
                source,
            })?;
        let mut rules = HashMap::with_capacity(file.exceptions.len());
        for (key, tokens) in file.exceptions {
            let mut rule = Vec::with_capacity(tokens.len());
            for t in tokens {
                let orth = t.get(&ORTH).cloned().ok_or_else(|| NlpError::Format {
                    path: path.clone(),
                    message: format!("exception {key:?} has a token without ORTH"),
                })?;
                rule.push((orth, t.get(&NORM).cloned()));
            }
            rules.insert(key, rule);
        }
        let compile = |name: &'static str, pattern: &str| {
            fancy_regex::RegexBuilder::new(pattern)
                .backtrack_limit(10_000_000)
                .build()
                .map(|exact| FilteredRegex::new(exact, pattern))
                .map_err(|e| NlpError::Pattern {
                    name,
                    message: e.to_string(),
                })
        };
        let mut tokenizer = Tokenizer {
            prefix: compile("prefix", &file.prefix_search)?,
            suffix: compile("suffix", &file.suffix_search)?,
            infix: compile("infix", &file.infix_finditer)?,
            url: compile("url", url_text.trim_end_matches('\n'))?,
            rules,
            patterns: HashMap::new(),
            max_pattern_len: 0,
            cache: RwLock::new(HashMap::new()),
        };
        tokenizer.build_patterns()?;
        Ok(tokenizer)
    }

    /// The special-case matcher's patterns (`faster_heuristics`: only keys with an affix, an
    /// infix or a space), in sorted key order so the first key wins a shared token sequence.
    fn build_patterns(&mut self) -> Result<(), NlpError> {
        let keys: BTreeMap<&String, ()> = self.rules.keys().map(|k| (k, ())).collect();
        let mut patterns = HashMap::new();
        for key in keys.keys() {
            let affixed = self.find_prefix(key)? > 0
                || self.has_infix(key)?
                || self.find_suffix(key)? > 0
                || key.contains(' ');
            if !affixed {
                continue;
            }
            let texts: Vec<String> = self
                .tokenize_affixes(key, false)?
                .into_iter()
                .map(|t| t.text)
                .collect();
            patterns.entry(texts).or_insert_with(|| (*key).clone());
        }
        self.max_pattern_len = patterns.keys().map(Vec::len).max().unwrap_or(0);
        self.patterns = patterns;
        Ok(())
    }

    /// Tokenizes `text`.
    pub fn tokenize(&self, text: &str) -> Result<Tokens, NlpError> {
        let tokens = self.tokenize_affixes(text, true)?;
        Ok(self.apply_special_cases(tokens))
    }

    fn find_prefix(&self, s: &str) -> Result<usize, NlpError> {
        match self.prefix.find(s) {
            Ok(m) => Ok(m.map_or(0, |m| m.as_str().chars().count())),
            Err(e) => Err(gave_up("prefix", s, e)),
        }
    }

    fn find_suffix(&self, s: &str) -> Result<usize, NlpError> {
        match self.suffix.find(s) {
            Ok(m) => Ok(m.map_or(0, |m| m.as_str().chars().count())),
            Err(e) => Err(gave_up("suffix", s, e)),
        }
    }

    fn has_infix(&self, s: &str) -> Result<bool, NlpError> {
        self.infix
            .find(s)
            .map(|m| m.is_some())
            .map_err(|e| gave_up("infix", s, e))
    }

    fn is_url(&self, s: &str) -> Result<bool, NlpError> {
        // Python's `match`: anchored at the start (the pattern itself starts with `^`).
        match self.url.find(s) {
            Ok(m) => Ok(m.is_some_and(|m| m.start() == 0)),
            Err(e) => Err(gave_up("url", s, e)),
        }
    }

    fn special(&self, key: &str) -> Option<Vec<Token>> {
        self.rules.get(key).map(|rule| {
            rule.iter()
                .map(|(orth, norm)| Token {
                    text: orth.clone(),
                    spacy: false,
                    norm: norm.clone(),
                })
                .collect()
        })
    }

    fn is_special(&self, s: &str, with_special: bool) -> bool {
        with_special && self.rules.contains_key(s)
    }

    /// Peels prefixes and suffixes off a chunk (PORT.md).
    fn split_affixes<'a>(
        &self,
        mut s: &'a str,
        with_special: bool,
    ) -> Result<(Vec<&'a str>, &'a str, Vec<&'a str>), NlpError> {
        let (mut prefixes, mut suffixes) = (Vec::new(), Vec::new());
        let mut last_len = usize::MAX;
        while !s.is_empty() && s.len() != last_len {
            if self.is_special(s, with_special) {
                break;
            }
            last_len = s.len();
            let pre = self.find_prefix(s)?;
            let pre_bytes = char_offset(s, pre);
            if pre > 0 {
                let minus_pre = &s[pre_bytes..];
                if !minus_pre.is_empty() && self.is_special(minus_pre, with_special) {
                    prefixes.push(&s[..pre_bytes]);
                    s = minus_pre;
                    break;
                }
            }
            let suf = self.find_suffix(&s[pre_bytes..])?;
            let suf_start = char_offset_from_end(s, suf);
            if suf > 0 {
                let minus_suf = &s[..suf_start];
                if !minus_suf.is_empty() && self.is_special(minus_suf, with_special) {
                    suffixes.push(&s[suf_start..]);
                    s = minus_suf;
                    break;
                }
            }
            let chars = s.chars().count();
            if pre > 0 && suf > 0 && pre + suf <= chars {
                prefixes.push(&s[..pre_bytes]);
                suffixes.push(&s[suf_start..]);
                s = &s[pre_bytes..suf_start];
            } else if pre > 0 {
                prefixes.push(&s[..pre_bytes]);
                s = &s[pre_bytes..];
            } else if suf > 0 {
                suffixes.push(&s[suf_start..]);
                s = &s[..suf_start];
            }
        }
        Ok((prefixes, s, suffixes))
    }

    /// Tokens of one chunk, from the memo when it has them (only with exceptions on: the
    /// pattern-building pass without them is not memoised).
    fn chunk(&self, span: &str, with_special: bool, out: &mut Vec<Token>) -> Result<(), NlpError> {
        if !with_special {
            return self.chunk_uncached(span, false, out);
        }
        if let Some(hit) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(span)
        {
            out.extend(hit.iter().cloned());
            return Ok(());
        }
        let start = out.len();
        self.chunk_uncached(span, true, out)?;
        let tokens: Arc<[Token]> = out[start..].into();
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(span.to_owned(), tokens);
        Ok(())
    }

    /// Emits prefixes, the infix-split middle and the suffixes (PORT.md).
    fn chunk_uncached(
        &self,
        span: &str,
        with_special: bool,
        out: &mut Vec<Token>,
    ) -> Result<(), NlpError> {
        if with_special && let Some(tokens) = self.special(span) {
            out.extend(tokens);
            return Ok(());
        }
        let (prefixes, s, suffixes) = self.split_affixes(span, with_special)?;
        out.extend(prefixes.iter().map(|p| Token::plain(p)));
        if !s.is_empty() {
            if let Some(tokens) = self.special(s).filter(|_| with_special) {
                out.extend(tokens);
            } else if self.is_url(s)? {
                out.push(Token::plain(s));
            } else {
                let mut start = 0;
                let mut any = false;
                for m in self.infix.find_iter(s).into_iter().flatten() {
                    let m = m.map_err(|e| gave_up("infix", s, e))?;
                    any = true;
                    let (a, b) = (m.start(), m.end());
                    if a == 0 {
                        // An infix at position 0 is ignored entirely.
                        continue;
                    }
                    if a != start {
                        out.push(Token::plain(&s[start..a]));
                    }
                    if a != b {
                        out.push(Token::plain(&s[a..b]));
                    }
                    start = b;
                }
                if !any {
                    out.push(Token::plain(s));
                } else if start < s.len() {
                    out.push(Token::plain(&s[start..]));
                }
            }
        }
        out.extend(suffixes.iter().rev().map(|x| Token::plain(x)));
        Ok(())
    }

    /// The whitespace pass (PORT.md): chunks of all-space or all-non-space; one plain space
    /// after a non-space run is absorbed into the previous token's `spacy` flag.
    fn tokenize_affixes(&self, text: &str, with_special: bool) -> Result<Vec<Token>, NlpError> {
        let mut tokens = Vec::new();
        let Some(first) = text.chars().next() else {
            return Ok(tokens);
        };
        let mut in_space = is_space(first);
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if is_space(c) != in_space {
                if start < i {
                    self.chunk(&text[start..i], with_special, &mut tokens)?;
                }
                if c == ' ' {
                    if let Some(last) = tokens.last_mut() {
                        last.spacy = true;
                    }
                    start = i + 1;
                } else {
                    start = i;
                }
                in_space = !in_space;
            }
        }
        if start < text.len() {
            self.chunk(&text[start..], with_special, &mut tokens)?;
            if let Some(last) = tokens.last_mut() {
                last.spacy = text.ends_with(' ') && !in_space;
            }
        }
        Ok(tokens)
    }

    /// The special-case matcher (PORT.md): exception keys that the affix rules split are
    /// found as token sequences and replaced by the exception's tokens.
    fn apply_special_cases(&self, tokens: Vec<Token>) -> Tokens {
        let n = tokens.len();
        let mut matches: Vec<(usize, usize)> = Vec::new();
        let mut window: Vec<String> = Vec::with_capacity(self.max_pattern_len);
        for i in 0..n {
            window.clear();
            for len in 1..=self.max_pattern_len.min(n - i) {
                window.push(tokens[i + len - 1].text.clone());
                if self.patterns.contains_key(&window) {
                    matches.push((i, i + len));
                }
            }
        }
        if matches.is_empty() {
            return Tokens {
                tokens,
                first_token_replaced: false,
            };
        }
        // Longest first, then leftmost; a match is kept unless one of its ends was covered by
        // an earlier match (kept or not).
        matches.sort_by_key(|&(s, e)| (e - s, std::cmp::Reverse(s)));
        let mut seen = vec![false; n];
        let mut kept: Vec<(usize, usize)> = Vec::new();
        for &(s, e) in matches.iter().rev() {
            if !seen[s] && !seen[e - 1] {
                kept.push((s, e));
            }
            seen[s..e].iter_mut().for_each(|x| *x = true);
        }
        kept.sort_unstable();
        let mut first_token_replaced = false;
        let mut out = Vec::with_capacity(n);
        let mut tokens = tokens.into_iter().enumerate().peekable();
        let mut kept = kept.into_iter().peekable();
        while let Some((i, token)) = tokens.next() {
            match kept.peek() {
                Some(&(s, e)) if s == i => {
                    kept.next();
                    let mut span = vec![token];
                    while span.len() < e - s {
                        match tokens.next() {
                            Some((_, t)) => span.push(t),
                            None => break,
                        }
                    }
                    let mut key = String::new();
                    for (k, t) in span.iter().enumerate() {
                        key.push_str(&t.text);
                        if t.spacy && k + 1 < span.len() {
                            key.push(' ');
                        }
                    }
                    let last_spacy = span.last().is_some_and(|t| t.spacy);
                    match self.special(&key) {
                        Some(mut replacement) => {
                            first_token_replaced |= i == 0;
                            if let Some(last) = replacement.last_mut() {
                                last.spacy = last_spacy;
                            }
                            out.extend(replacement);
                        }
                        None => out.extend(span),
                    }
                }
                _ => out.push(token),
            }
        }
        Tokens {
            tokens: out,
            first_token_replaced,
        }
    }
}

fn gave_up(name: &'static str, s: &str, e: fancy_regex::Error) -> NlpError {
    NlpError::Match {
        name,
        len: s.len(),
        message: e.to_string(),
    }
}

/// Byte offset of the `n`th character of `s` (its length if `n` is past the end).
fn char_offset(s: &str, n: usize) -> usize {
    s.char_indices().nth(n).map_or(s.len(), |(b, _)| b)
}

/// Byte offset where the last `n` characters of `s` start.
fn char_offset_from_end(s: &str, n: usize) -> usize {
    if n == 0 {
        return s.len();
    }
    s.char_indices().rev().nth(n - 1).map_or(0, |(b, _)| b)
}
