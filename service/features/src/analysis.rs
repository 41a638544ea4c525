//! Annotating essays for the features: the normalised and the raw document of each text, and
//! readability. Synchronous: the caller decides which thread runs it (the server uses tokio's
//! blocking pool).

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::normalise;
use crate::hyphenate::Hyphenator;
use crate::limits::{AnalyseError, LIMITS, Limit, Limits, longest_word};
use crate::readability::{Readability, readability};
use crate::similarity::sentence_texts;
use crate::text::paragraphs;
use spacy_en_core_sm::pipeline::{Annotated, Pipeline, Word};
use spacy_en_core_sm::{Cancel, NlpError};

/// The hyphenation patterns, under the models folder.
const HYPHENATION: &str = "hyphenation/hyph_en_GB.dic";
/// The vendored spaCy model, under the models folder.
const SPACY_MODEL: &str = "spacy/en_core_web_sm-3.8.0";
/// Tables from spaCy's code the port reads, under the models folder.
const SPACY_TABLES: [&str; 3] = [
    "spacy/tables/base_norms.json",
    "spacy/tables/symbols_ids.json",
    "spacy/tables/tok_url_match_rustsafe.txt",
];

/// Checks every file of the spaCy model against its `manifest.json` and returns a sha256 over
/// the manifest, the tables and the hyphenation patterns: one id for everything the analyser reads.
pub fn model_sha256(models_dir: &Path) -> Result<String, NlpError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| NlpError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let hex_sha = |bytes: &[u8]| hex::encode(Sha256::digest(bytes));
    let model = models_dir.join(SPACY_MODEL);
    let manifest_path = model.join("manifest.json");
    let manifest = read(&manifest_path)?;
    let format = |message: String| NlpError::Format {
        path: manifest_path.clone(),
        message,
    };
    let listed: serde_json::Value =
        serde_json::from_slice(&manifest).map_err(|e| format(e.to_string()))?;
    let files = listed
        .get("files")
        .and_then(|f| f.as_object())
        .ok_or_else(|| format("no \"files\" object".into()))?;
    for (name, want) in files {
        let path = model.join(name);
        let got = hex_sha(&read(&path)?);
        if Some(got.as_str()) != want.as_str() {
            return Err(NlpError::Format {
                path,
                message: format!(
                    "sha256 {got} differs from the manifest's {want}: the file was changed or damaged"
                ),
            });
        }
    }
    let mut all = Sha256::new();
    for part in std::iter::once(manifest_path.clone())
        .chain(SPACY_TABLES.iter().map(|t| models_dir.join(t)))
        .chain(std::iter::once(models_dir.join(HYPHENATION)))
    {
        all.update(hex_sha(&read(&part)?).as_bytes());
    }
    Ok(hex::encode(all.finalize()))
}

/// What the features need of one essay.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// The essay as sent.
    pub text: String,
    /// Annotations of the whitespace-normalised text (Tier 1).
    pub normalised: Vec<Word>,
    /// Annotations of the text as sent (Tiers 2 and 3).
    pub raw: Vec<Word>,
    /// Readability of the normalised document.
    pub readability: Readability,
}

struct Models {
    pipeline: Pipeline,
    hyphenator: Hyphenator,
    sha256: String,
}

/// The loaded spaCy port and hyphenation patterns; cheap to clone, shared by all requests.
#[derive(Clone)]
pub struct Analyzer {
    models: Arc<Models>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("sha256", &self.models.sha256)
            .finish_non_exhaustive()
    }
}

impl Analyzer {
    /// Loads `models_dir/spacy` and `models_dir/hyphenation/hyph_en_GB.dic` after checking the
    /// spaCy files against their manifest.
    pub fn load(models_dir: &Path) -> Result<Analyzer, NlpError> {
        let sha256 = model_sha256(models_dir)?;
        let pipeline = Pipeline::load(&models_dir.join("spacy"))?;
        let hyphenator = Hyphenator::load(&models_dir.join(HYPHENATION))?;
        Ok(Analyzer {
            models: Arc::new(Models {
                pipeline,
                hyphenator,
                sha256,
            }),
        })
    }

    /// sha256 identifying every model file the analyser read (the server fingerprint covers it).
    pub fn sha256(&self) -> &str {
        &self.models.sha256
    }

    /// The annotation pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.models.pipeline
    }

    /// Analyses one essay on the calling thread, without the per-document limits (see
    /// [`Analyzer::analyse_with`] for the server's path).
    pub fn analyse(&self, text: &str) -> Result<Analysis, NlpError> {
        let m = &self.models;
        let raw = m.pipeline.annotate(text)?;
        let norm_text = normalise(text);
        // Most short texts need no normalising: one parse serves both documents then.
        let normalised = if norm_text == text {
            raw.clone()
        } else {
            m.pipeline.annotate(&norm_text)?
        };
        let readability = readability(&normalised, &m.hyphenator);
        Ok(Analysis {
            text: text.to_owned(),
            normalised,
            raw,
            readability,
        })
    }

    /// Analyses one essay within [`LIMITS`], stopping with [`AnalyseError::Cancelled`] once
    /// `cancel` is set. The same analysis as [`Analyzer::analyse`] for every essay it takes.
    pub fn analyse_with(&self, text: &str, cancel: &Cancel) -> Result<Analysis, AnalyseError> {
        self.analyse_limited(text, cancel, &LIMITS)
    }

    /// [`Analyzer::analyse_with`] with other limits. Each check runs before the work it guards,
    /// in linear time: the longest word and the paragraphs before tokenizing, the tokens after
    /// tokenizing and before tagging and parsing, the sentences after parsing and before the
    /// normalised document and readability.
    pub fn analyse_limited(
        &self,
        text: &str,
        cancel: &Cancel,
        limits: &Limits,
    ) -> Result<Analysis, AnalyseError> {
        let m = &self.models;
        if cancel.is_cancelled() {
            return Err(AnalyseError::Cancelled);
        }
        let word = longest_word(text);
        if word.chars > limits.max_word_chars {
            return Err(AnalyseError::word(word, limits.max_word_chars));
        }
        let paragraph_count = paragraphs(text).len();
        if paragraph_count > limits.max_paragraphs {
            return Err(AnalyseError::count(
                Limit::TooManyParagraphs,
                "paragraphs",
                paragraph_count,
                limits.max_paragraphs,
            ));
        }
        let annotate =
            |t: &str| match m
                .pipeline
                .annotate_with_limit(t, cancel, limits.max_tokens)?
            {
                Annotated::Words(words) => Ok(words),
                Annotated::TooManyTokens { tokens } => Err(AnalyseError::count(
                    Limit::TooManyTokens,
                    "tokens",
                    tokens,
                    limits.max_tokens,
                )),
            };
        let raw = annotate(text)?;
        let sentence_count = sentence_texts(&raw).len();
        if sentence_count > limits.max_sentences {
            return Err(AnalyseError::count(
                Limit::TooManySentences,
                "sentences",
                sentence_count,
                limits.max_sentences,
            ));
        }
        let norm_text = normalise(text);
        let normalised = if norm_text == text {
            raw.clone()
        } else {
            annotate(&norm_text)?
        };
        if cancel.is_cancelled() {
            return Err(AnalyseError::Cancelled);
        }
        let readability = readability(&normalised, &m.hyphenator);
        Ok(Analysis {
            text: text.to_owned(),
            normalised,
            raw,
            readability,
        })
    }
}
