//! spaCy's rule-based tokenizer as `en_core_web_sm` 3.8.0 runs it (PORT.md): a whitespace pass,
//! prefix/suffix/infix/URL rules and the model's 1,347 exceptions per chunk, then the
//! special-case matcher over the whole token list.
//!
//! The patterns are the model's own, compiled with `fancy-regex` (they need look-around); the URL
//! pattern is the spec's rewrite with Python's `\w`, `\d` and `\S` spelled out, so it matches
//! exactly what Python's `re` matches. Affix lengths are counted in characters, as Python does.
//!
//! The work per text is linear in its length (PORT.md, "Why the tokenizer is linear"): prefix
//! and suffix searches look only at a window at the chunk's ends ([`affix`](super::affix)),
//! exception lookups skip chunks longer than the longest exception, and the memo holds short
//! chunks only, up to a byte budget.

use std::collections::BTreeMap;

use ahash::AHashMap as HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use super::prefilter::FilteredRegex;
use serde::Deserialize;

use super::NlpError;
use super::affix::{AffixPattern, Side};
use super::cancel::Cancel;
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

/// The work the regex engines and exception lookups were given while tokenizing, for checking
/// that it grows linearly with the text ([`Tokenizer::tokenize_counted`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// Calls of a regex engine.
    pub regex_calls: u64,
    /// Bytes of text the engines were given to search: from the first position a match may
    /// start to the end of the text they may read.
    pub regex_bytes: u64,
    /// Bytes hashed to look chunks up among the exceptions and in the memo.
    pub lookup_bytes: u64,
}

impl Work {
    /// Records one regex call over `bytes` bytes.
    pub fn add_regex(&mut self, bytes: usize) {
        self.regex_calls += 1;
        self.regex_bytes += bytes as u64;
    }

    /// All bytes handled: regex and lookup bytes together.
    pub fn total_bytes(&self) -> u64 {
        self.regex_bytes + self.lookup_bytes
    }
}

/// One tokenization: the caller's cancellation flag, the work done, and whether the memo is used.
struct Run<'c> {
    cancel: &'c Cancel,
    work: Work,
    memo: bool,
}

/// The memo of chunk -> tokens, with the bytes it holds.
#[derive(Debug, Default)]
struct Memo {
    chunks: HashMap<String, Arc<[Token]>>,
    bytes: usize,
}

/// Chunks longer than this many bytes are not memoised (they rarely repeat, and one huge chunk
/// would fill the memo).
pub const MEMO_MAX_CHUNK_BYTES: usize = 256;
/// The memo starts over when the bytes it holds (keys, token texts and a fixed cost per entry
/// and token) pass this budget.
pub const MEMO_MAX_BYTES: usize = 32 << 20;
/// What the memo counts per entry besides its texts (hash-table slot, `Arc` header).
const MEMO_ENTRY_BYTES: usize = 64;

/// Bytes one memo entry is counted as.
fn memo_cost(chunk: &str, tokens: &[Token]) -> usize {
    MEMO_ENTRY_BYTES
        + chunk.len()
        + tokens
            .iter()
            .map(|t| {
                std::mem::size_of::<Token>() + t.text.len() + t.norm.as_ref().map_or(0, String::len)
            })
            .sum::<usize>()
}

/// The tokenizer of one model.
#[derive(Debug)]
pub struct Tokenizer {
    prefix: AffixPattern,
    suffix: AffixPattern,
    infix: FilteredRegex,
    url: FilteredRegex,
    rules: HashMap<String, Rule>,
    /// Length in bytes of the longest exception key: longer chunks are never looked up.
    max_key_bytes: usize,
    /// Special-case matcher: token texts of an exception tokenized without exceptions -> its key.
    patterns: HashMap<Vec<String>, String>,
    max_pattern_len: usize,
    /// Length in bytes of the longest token text of any special-case pattern.
    max_pattern_token_bytes: usize,
    /// Memo of chunk -> tokens (spaCy keeps the same cache; it never changes a result; see
    /// PORT.md), bounded by [`MEMO_MAX_CHUNK_BYTES`] and [`MEMO_MAX_BYTES`].
    cache: RwLock<Memo>,
}

/// The backtracking limit of every pattern (PORT.md, Regexes).
const BACKTRACK_LIMIT: usize = 10_000_000;

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
                .backtrack_limit(BACKTRACK_LIMIT)
                .build()
                .map(|exact| FilteredRegex::new(exact, pattern))
                .map_err(|e| NlpError::Pattern {
                    name,
                    message: e.to_string(),
                })
        };
        let affix = |name: &'static str, side: Side, pattern: &str| {
            AffixPattern::new(side, pattern, BACKTRACK_LIMIT).map_err(|e| NlpError::Pattern {
                name,
                message: e.to_string(),
            })
        };
        let mut tokenizer = Tokenizer {
            prefix: affix("prefix", Side::Prefix, &file.prefix_search)?,
            suffix: affix("suffix", Side::Suffix, &file.suffix_search)?,
            infix: compile("infix", &file.infix_finditer)?,
            url: compile("url", url_text.trim_end_matches('\n'))?,
            max_key_bytes: rules.keys().map(String::len).max().unwrap_or(0),
            rules,
            patterns: HashMap::new(),
            max_pattern_len: 0,
            max_pattern_token_bytes: 0,
            cache: RwLock::new(Memo::default()),
        };
        tokenizer.build_patterns()?;
        Ok(tokenizer)
    }

    /// Whether the prefix and suffix searches are limited to windows at the chunk's ends (true
    /// for the vendored model; a model with other pattern shapes is searched whole).
    pub fn is_linear(&self) -> bool {
        self.prefix.is_windowed() && self.suffix.is_windowed()
    }

    /// The special-case matcher's patterns (`faster_heuristics`: only keys with an affix, an
    /// infix or a space), in sorted key order so the first key wins a shared token sequence.
    fn build_patterns(&mut self) -> Result<(), NlpError> {
        let keys: BTreeMap<&String, ()> = self.rules.keys().map(|k| (k, ())).collect();
        let mut patterns = HashMap::new();
        let cancel = Cancel::new();
        let mut run = Run {
            cancel: &cancel,
            work: Work::default(),
            memo: false,
        };
        for key in keys.keys() {
            let affixed = self.find_prefix(key, &mut run)? > 0
                || self.has_infix(key, &mut run)?
                || self.find_suffix(key, &mut run)? > 0
                || key.contains(' ');
            if !affixed {
                continue;
            }
            let texts: Vec<String> = self
                .tokenize_affixes(key, false, &mut run)?
                .into_iter()
                .map(|t| t.text)
                .collect();
            patterns.entry(texts).or_insert_with(|| (*key).clone());
        }
        self.max_pattern_len = patterns.keys().map(Vec::len).max().unwrap_or(0);
        self.max_pattern_token_bytes = patterns
            .keys()
            .flatten()
            .map(String::len)
            .max()
            .unwrap_or(0);
        self.patterns = patterns;
        Ok(())
    }

    /// Tokenizes `text`.
    pub fn tokenize(&self, text: &str) -> Result<Tokens, NlpError> {
        self.tokenize_with(text, &Cancel::new())
    }

    /// Tokenizes `text`, stopping with [`NlpError::Cancelled`] once `cancel` is set (checked
    /// per chunk and per peeled affix).
    pub fn tokenize_with(&self, text: &str, cancel: &Cancel) -> Result<Tokens, NlpError> {
        let mut run = Run {
            cancel,
            work: Work::default(),
            memo: true,
        };
        self.tokenize_run(text, &mut run)
    }

    /// Tokenizes `text` without the memo and reports the work done, to check that the work
    /// grows linearly with the text.
    pub fn tokenize_counted(&self, text: &str) -> Result<(Tokens, Work), NlpError> {
        let cancel = Cancel::new();
        let mut run = Run {
            cancel: &cancel,
            work: Work::default(),
            memo: false,
        };
        let tokens = self.tokenize_run(text, &mut run)?;
        Ok((tokens, run.work))
    }

    fn tokenize_run(&self, text: &str, run: &mut Run) -> Result<Tokens, NlpError> {
        let tokens = self.tokenize_affixes(text, true, run)?;
        run.cancel.check()?;
        Ok(self.apply_special_cases(tokens, run))
    }

    fn find_prefix(&self, s: &str, run: &mut Run) -> Result<usize, NlpError> {
        self.prefix
            .find_len(s, &mut run.work)
            .map_err(|e| gave_up("prefix", s, e))
    }

    fn find_suffix(&self, s: &str, run: &mut Run) -> Result<usize, NlpError> {
        self.suffix
            .find_len(s, &mut run.work)
            .map_err(|e| gave_up("suffix", s, e))
    }

    fn has_infix(&self, s: &str, run: &mut Run) -> Result<bool, NlpError> {
        run.work.add_regex(s.len());
        let found = self.infix.find(s).map_err(|e| gave_up("infix", s, e))?;
        run.work.add_regex(s.len());
        Ok(found.is_some())
    }

    fn is_url(&self, s: &str, run: &mut Run) -> Result<bool, NlpError> {
        // Python's `match`: anchored at the start (the pattern itself starts with `^`). The
        // superset and the exact pattern each see the text once per chunk.
        run.work.add_regex(s.len());
        run.work.add_regex(s.len());
        match self.url.find(s) {
            Ok(m) => Ok(m.is_some_and(|m| m.start() == 0)),
            Err(e) => Err(gave_up("url", s, e)),
        }
    }

    /// The exception's tokens if `key` is an exception key (chunks longer than every key are
    /// not hashed).
    fn special(&self, key: &str, run: &mut Run) -> Option<Vec<Token>> {
        if key.len() > self.max_key_bytes {
            return None;
        }
        run.work.lookup_bytes += key.len() as u64;
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

    /// Whether `s` is an exception key (only with exceptions on; chunks longer than every key
    /// are not hashed).
    fn is_special(&self, s: &str, with_special: bool, run: &mut Run) -> bool {
        if !with_special || s.len() > self.max_key_bytes {
            return false;
        }
        run.work.lookup_bytes += s.len() as u64;
        self.rules.contains_key(s)
    }

    /// Peels prefixes and suffixes off a chunk (PORT.md).
    fn split_affixes<'a>(
        &self,
        mut s: &'a str,
        with_special: bool,
        run: &mut Run,
    ) -> Result<(Vec<&'a str>, &'a str, Vec<&'a str>), NlpError> {
        let (mut prefixes, mut suffixes) = (Vec::new(), Vec::new());
        let mut last_len = usize::MAX;
        while !s.is_empty() && s.len() != last_len {
            run.cancel.check()?;
            if self.is_special(s, with_special, run) {
                break;
            }
            last_len = s.len();
            let pre = self.find_prefix(s, run)?;
            let pre_bytes = char_offset(s, pre);
            if pre > 0 {
                let minus_pre = &s[pre_bytes..];
                if !minus_pre.is_empty() && self.is_special(minus_pre, with_special, run) {
                    prefixes.push(&s[..pre_bytes]);
                    s = minus_pre;
                    break;
                }
            }
            let suf = self.find_suffix(&s[pre_bytes..], run)?;
            let suf_start = char_offset_from_end(s, suf);
            if suf > 0 {
                let minus_suf = &s[..suf_start];
                if !minus_suf.is_empty() && self.is_special(minus_suf, with_special, run) {
                    suffixes.push(&s[suf_start..]);
                    s = minus_suf;
                    break;
                }
            }
            // spaCy's `pre_len + suf_len <= len(string)` in characters, compared as byte
            // offsets: the prefix ends at or before the suffix starts.
            if pre > 0 && suf > 0 && pre_bytes <= suf_start {
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

    /// Tokens of one chunk, from the memo when it has them (only with exceptions on and the
    /// memo in use: the pattern-building pass is not memoised, nor are long chunks).
    fn chunk(
        &self,
        span: &str,
        with_special: bool,
        out: &mut Vec<Token>,
        run: &mut Run,
    ) -> Result<(), NlpError> {
        run.cancel.check()?;
        if !with_special || !run.memo || span.len() > MEMO_MAX_CHUNK_BYTES {
            return self.chunk_uncached(span, with_special, out, run);
        }
        run.work.lookup_bytes += span.len() as u64;
        if let Some(hit) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .chunks
            .get(span)
        {
            out.extend(hit.iter().cloned());
            return Ok(());
        }
        let start = out.len();
        self.chunk_uncached(span, true, out, run)?;
        let tokens: Arc<[Token]> = out[start..].into();
        let cost = memo_cost(span, &tokens);
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.bytes + cost > MEMO_MAX_BYTES {
            cache.chunks.clear();
            cache.bytes = 0;
        }
        if cache.chunks.insert(span.to_owned(), tokens).is_none() {
            cache.bytes += cost;
        }
        Ok(())
    }

    /// Bytes the chunk memo holds now (at most [`MEMO_MAX_BYTES`]).
    pub fn memo_bytes(&self) -> usize {
        self.cache.read().unwrap_or_else(|e| e.into_inner()).bytes
    }

    /// Emits prefixes, the infix-split middle and the suffixes (PORT.md).
    fn chunk_uncached(
        &self,
        span: &str,
        with_special: bool,
        out: &mut Vec<Token>,
        run: &mut Run,
    ) -> Result<(), NlpError> {
        if with_special && let Some(tokens) = self.special(span, run) {
            out.extend(tokens);
            return Ok(());
        }
        let (prefixes, s, suffixes) = self.split_affixes(span, with_special, run)?;
        out.extend(prefixes.iter().map(|p| Token::plain(p)));
        if !s.is_empty() {
            let special = if with_special {
                self.special(s, run)
            } else {
                None
            };
            if let Some(tokens) = special {
                out.extend(tokens);
            } else if self.is_url(s, run)? {
                out.push(Token::plain(s));
            } else {
                let mut start = 0;
                let mut any = false;
                run.work.add_regex(s.len());
                let matches = self.infix.find_iter(s);
                if matches.is_some() {
                    run.work.add_regex(s.len());
                }
                for m in matches.into_iter().flatten() {
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
    fn tokenize_affixes(
        &self,
        text: &str,
        with_special: bool,
        run: &mut Run,
    ) -> Result<Vec<Token>, NlpError> {
        let mut tokens = Vec::new();
        let Some(first) = text.chars().next() else {
            return Ok(tokens);
        };
        let mut in_space = is_space(first);
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if is_space(c) != in_space {
                if start < i {
                    self.chunk(&text[start..i], with_special, &mut tokens, run)?;
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
            self.chunk(&text[start..], with_special, &mut tokens, run)?;
            if let Some(last) = tokens.last_mut() {
                last.spacy = text.ends_with(' ') && !in_space;
            }
        }
        Ok(tokens)
    }

    /// The special-case matcher (PORT.md): exception keys that the affix rules split are
    /// found as token sequences and replaced by the exception's tokens.
    fn apply_special_cases(&self, tokens: Vec<Token>, run: &mut Run) -> Tokens {
        let n = tokens.len();
        let mut matches: Vec<(usize, usize)> = Vec::new();
        let mut window: Vec<String> = Vec::with_capacity(self.max_pattern_len);
        for i in 0..n {
            window.clear();
            for len in 1..=self.max_pattern_len.min(n - i) {
                let text = &tokens[i + len - 1].text;
                // No pattern holds a token this long: no window through it can match.
                if text.len() > self.max_pattern_token_bytes {
                    break;
                }
                run.work.lookup_bytes += text.len() as u64;
                window.push(text.clone());
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
                    match self.special(&key, run) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored model's prefix and suffix patterns.
    fn model_patterns() -> (String, String) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/spacy/en_core_web_sm-3.8.0/tokenizer");
        let bytes = std::fs::read(&path).expect("the vendored tokenizer file");
        let file: TokenizerFile = rmp_serde::from_slice(&bytes).expect("msgpack");
        (file.prefix_search, file.suffix_search)
    }

    /// Deterministic strings over `alphabet`: all up to 3 characters, then pseudo-random ones
    /// of 4 to 14 characters.
    fn strings(alphabet: &[char]) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..3 {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..30_000 {
            let len = 4 + (next() % 11) as usize;
            all.push(
                (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect(),
            );
        }
        all
    }

    #[test]
    fn the_models_affix_windows_find_what_a_whole_string_search_finds() {
        let (prefix, suffix) = model_patterns();
        let alphabet: Vec<char> = ".,;:!?()[]'\"’‘”$£€+-%°/…&#*_sSUCAkmFg15aé x"
            .chars()
            .collect();
        for (side, pattern) in [(Side::Prefix, prefix), (Side::Suffix, suffix)] {
            let windowed = AffixPattern::new(side, &pattern, BACKTRACK_LIMIT).unwrap();
            assert!(windowed.is_windowed(), "{side:?}");
            let whole = fancy_regex::Regex::new(&pattern).unwrap();
            for s in strings(&alphabet) {
                let want = whole
                    .find(&s)
                    .unwrap()
                    .map_or(0, |m| m.as_str().chars().count());
                let got = windowed.find_len(&s, &mut Work::default()).unwrap();
                assert_eq!(got, want, "{side:?} {s:?}");
            }
        }
    }

    #[test]
    fn the_memo_keeps_short_chunks_within_its_byte_budget() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/spacy");
        let tok = Tokenizer::load(
            &models.join("en_core_web_sm-3.8.0"),
            &models.join("tables/tok_url_match_rustsafe.txt"),
        )
        .unwrap();
        let long = "y".repeat(MEMO_MAX_CHUNK_BYTES + 1);
        tok.tokenize(&long).unwrap();
        assert_eq!(tok.memo_bytes(), 0, "a long chunk is not memoised");
        tok.tokenize("short words here").unwrap();
        let three = tok.memo_bytes();
        assert!(three > 0);
        tok.tokenize("short words here").unwrap();
        assert_eq!(
            tok.memo_bytes(),
            three,
            "a memoised chunk is not counted twice"
        );
        // Distinct chunks past the budget: the memo starts over and stays within it.
        let words: String = (0..MEMO_MAX_BYTES / 100)
            .map(|i| format!("w{i} "))
            .collect();
        tok.tokenize(&words).unwrap();
        assert!(tok.memo_bytes() <= MEMO_MAX_BYTES);
        assert!(tok.memo_bytes() > 0);
    }
}
