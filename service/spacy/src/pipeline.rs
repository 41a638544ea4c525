//! The whole pipeline for one text: tokenizer → lexical features → tok2vec → tagger → parser →
//! attribute ruler, giving what spaCy's `Doc` would hold for the features.

use std::path::Path;

use super::NlpError;
use super::attribute_ruler::AttributeRuler;
use super::cancel::Cancel;
use super::lexeme::{Lexicon, is_punct_str};
use super::parser::{Parse, Parser};
use super::pychar::is_space_str;
use super::scratch::{Scratch, ScratchPool};
use super::tagger::Tagger;
use super::tok2vec::Tok2Vec;
use super::tokenizer::Tokenizer;

/// One annotated token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text.
    pub text: String,
    /// One space follows.
    pub spacy: bool,
    /// Fine tag (`tag_`).
    pub tag: String,
    /// Coarse POS (`pos_`; empty when no rule set one).
    pub pos: String,
    /// Dependency label (`dep_`).
    pub dep: String,
    /// Head index (a root is its own head).
    pub head: usize,
    /// Starts a sentence (`is_sent_start`).
    pub sent_start: bool,
    /// Every character is whitespace (`is_space`).
    pub is_space: bool,
    /// Every character is punctuation (`is_punct`).
    pub is_punct: bool,
}

/// The loaded pipeline; `annotate` takes `&self`, so one instance serves many threads.
#[derive(Debug)]
pub struct Pipeline {
    tokenizer: Tokenizer,
    lexicon: Lexicon,
    tok2vec: Tok2Vec,
    tagger: Tagger,
    parser: Parser,
    ruler: AttributeRuler,
    scratch: ScratchPool,
}

impl Pipeline {
    /// Loads the model from `models_dir` (holding `en_core_web_sm-3.8.0/` and `tables/`).
    pub fn load(models_dir: &Path) -> Result<Pipeline, NlpError> {
        let model = models_dir.join("en_core_web_sm-3.8.0");
        let tables = models_dir.join("tables");
        Ok(Pipeline {
            tokenizer: Tokenizer::load(&model, &tables.join("tok_url_match_rustsafe.txt"))?,
            lexicon: Lexicon::load(&model, &tables)?,
            tok2vec: Tok2Vec::load(&model)?,
            tagger: Tagger::load(&model)?,
            parser: Parser::load(&model)?,
            ruler: AttributeRuler::load(&model)?,
            scratch: ScratchPool::default(),
        })
    }

    /// The tokenizer alone (for stage timings).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Annotates one text.
    pub fn annotate(&self, text: &str) -> Result<Vec<Word>, NlpError> {
        self.annotate_with(text, &Cancel::new())
    }

    /// Annotates one text, stopping with [`NlpError::Cancelled`] once `cancel` is set (checked
    /// in the tokenizer's loops, between stages and in the parser's transition loop).
    pub fn annotate_with(&self, text: &str, cancel: &Cancel) -> Result<Vec<Word>, NlpError> {
        match self.annotate_with_limit(text, cancel, usize::MAX)? {
            Annotated::Words(words) => Ok(words),
            Annotated::TooManyTokens { tokens } => {
                unreachable!("{tokens} tokens cannot exceed usize::MAX")
            }
        }
    }

    /// Annotates one text unless it has more than `max_tokens` tokens: then it stops right after
    /// tokenizing, before the expensive stages, and says how many tokens there are.
    pub fn annotate_with_limit(
        &self,
        text: &str,
        cancel: &Cancel,
        max_tokens: usize,
    ) -> Result<Annotated, NlpError> {
        cancel.check()?;
        let tokenized = self.tokenizer.tokenize_with(text, cancel)?;
        let tokens = tokenized.tokens;
        if tokens.len() > max_tokens {
            return Ok(Annotated::TooManyTokens {
                tokens: tokens.len(),
            });
        }
        if tokens.is_empty() {
            return Ok(Annotated::Words(Vec::new()));
        }
        let features: Vec<[u64; 6]> = tokens.iter().map(|t| self.lexicon.features(t)).collect();
        let is_space: Vec<bool> = tokens.iter().map(|t| is_space_str(&t.text)).collect();
        let mut scratch = self.scratch.take();
        let analysed = self.tag_and_parse(
            &features,
            &is_space,
            !tokenized.first_token_replaced,
            &mut scratch,
            cancel,
        );
        self.scratch.give_back(scratch);
        let (tags, parse) = analysed?;
        cancel.check()?;
        let texts: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
        let ruled = self.ruler.apply(&texts, &tags, &parse.deps);
        drop(texts);
        Ok(Annotated::Words(
            tokens
                .into_iter()
                .zip(ruled)
                .enumerate()
                .map(|(i, (t, r))| Word {
                    is_punct: is_punct_str(&t.text),
                    text: t.text,
                    spacy: t.spacy,
                    tag: r.tag,
                    pos: r.pos,
                    dep: r.dep,
                    head: parse.heads[i],
                    sent_start: parse.sent_starts[i],
                    is_space: is_space[i],
                })
                .collect(),
        ))
    }

    /// tok2vec, tagger and parser in `scratch`, checking `cancel` between them.
    fn tag_and_parse(
        &self,
        features: &[[u64; 6]],
        is_space: &[bool],
        tok0_sent_start: bool,
        scratch: &mut Scratch,
        cancel: &Cancel,
    ) -> Result<(Vec<&str>, Parse), NlpError> {
        cancel.check()?;
        let mut logits = std::mem::take(&mut scratch.logits);
        let mut projected = std::mem::take(&mut scratch.projected);
        let mut precomputed = std::mem::take(&mut scratch.precomputed);
        let result = (|| {
            let vectors = self.tok2vec.forward(features, scratch, cancel)?;
            cancel.check()?;
            let tags = self.tagger.tag(vectors, &mut logits);
            cancel.check()?;
            let parse = self.parser.parse(
                vectors,
                tok0_sent_start,
                is_space,
                (&mut projected, &mut precomputed),
                cancel,
            )?;
            Ok((tags, parse))
        })();
        (scratch.logits, scratch.projected, scratch.precomputed) = (logits, projected, precomputed);
        result
    }
}

/// What [`Pipeline::annotate_with_limit`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Annotated {
    /// The annotated tokens.
    Words(Vec<Word>),
    /// The text has more tokens than the limit; nothing after the tokenizer ran.
    TooManyTokens {
        /// How many tokens the text has.
        tokens: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline() -> Pipeline {
        Pipeline::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/spacy"))
            .expect("the vendored model loads")
    }

    #[test]
    fn a_cancelled_request_returns_cancelled() {
        let p = pipeline();
        let text = "The cat sat on the mat, and (then) it left. ".repeat(2_000);
        let cancel = Cancel::new();
        cancel.cancel();
        assert!(matches!(
            p.annotate_with(&text, &cancel),
            Err(NlpError::Cancelled)
        ));
        assert!(matches!(
            p.tokenizer().tokenize_with(&text, &cancel),
            Err(NlpError::Cancelled)
        ));
        // An unset flag changes nothing.
        let short = &text[..200];
        assert_eq!(
            p.annotate_with(short, &Cancel::new()).unwrap(),
            p.annotate(short).unwrap()
        );
    }

    #[test]
    fn tok2vec_and_the_parser_check_the_flag() {
        let p = pipeline();
        let tokens = p.tokenizer().tokenize("A short text.").unwrap().tokens;
        let features: Vec<[u64; 6]> = tokens.iter().map(|t| p.lexicon.features(t)).collect();
        let cancelled = Cancel::new();
        cancelled.cancel();
        let mut scratch = Scratch::default();
        assert!(matches!(
            p.tok2vec.forward(&features, &mut scratch, &cancelled),
            Err(NlpError::Cancelled)
        ));
        let vectors = p
            .tok2vec
            .forward(&features, &mut scratch, &Cancel::new())
            .unwrap()
            .to_owned();
        let spaces = vec![false; tokens.len()];
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let parsed = p
            .parser
            .parse(vectors.view(), true, &spaces, (&mut a, &mut b), &cancelled);
        assert!(matches!(parsed, Err(NlpError::Cancelled)));
    }

    #[test]
    fn too_many_tokens_stops_after_the_tokenizer() {
        let p = pipeline();
        let text = "One two three. Four five!";
        let words = p.annotate(text).unwrap();
        assert_eq!(words.len(), 7);
        let cancel = Cancel::new();
        assert_eq!(
            p.annotate_with_limit(text, &cancel, 6).unwrap(),
            Annotated::TooManyTokens { tokens: 7 }
        );
        assert_eq!(
            p.annotate_with_limit(text, &cancel, 7).unwrap(),
            Annotated::Words(words)
        );
    }
}
