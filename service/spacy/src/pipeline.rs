//! The whole pipeline for one text: tokenizer → lexical features → tok2vec → tagger → parser →
//! attribute ruler, giving what spaCy's `Doc` would hold for the features.

use std::path::Path;

use super::NlpError;
use super::attribute_ruler::AttributeRuler;
use super::lexeme::{Lexicon, is_punct_str};
use super::parser::Parser;
use super::pychar::is_space_str;
use super::scratch::ScratchPool;
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
        let tokenized = self.tokenizer.tokenize(text)?;
        let tokens = tokenized.tokens;
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let features: Vec<[u64; 6]> = tokens.iter().map(|t| self.lexicon.features(t)).collect();
        let mut scratch = self.scratch.take();
        let mut logits = std::mem::take(&mut scratch.logits);
        let mut projected = std::mem::take(&mut scratch.projected);
        let mut precomputed = std::mem::take(&mut scratch.precomputed);
        let vectors = self.tok2vec.forward(&features, &mut scratch);
        let tags = self.tagger.tag(vectors, &mut logits);
        let is_space: Vec<bool> = tokens.iter().map(|t| is_space_str(&t.text)).collect();
        let parse = self.parser.parse(
            vectors,
            !tokenized.first_token_replaced,
            &is_space,
            (&mut projected, &mut precomputed),
        );
        (scratch.logits, scratch.projected, scratch.precomputed) = (logits, projected, precomputed);
        self.scratch.give_back(scratch);
        let texts: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
        let ruled = self.ruler.apply(&texts, &tags, &parse.deps);
        drop(texts);
        Ok(tokens
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
            .collect())
    }
}
