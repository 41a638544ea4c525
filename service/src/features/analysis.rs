//! Annotating essays for the features: the normalised and the raw document of each text, and
//! readability, with documents processed in parallel on tokio's blocking pool.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::normalise;
use crate::nlp::NlpError;
use crate::nlp::hyphenate::Hyphenator;
use crate::nlp::pipeline::{Pipeline, Word};
use crate::nlp::readability::{Readability, readability};

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
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("threads", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl Analyzer {
    /// Loads `models_dir/spacy` and `models_dir/hyphenation/hyph_en_GB.dic` after checking the
    /// spaCy files against their manifest; at most `threads` documents are annotated at once
    /// (at least 1).
    pub fn load(models_dir: &Path, threads: usize) -> Result<Analyzer, NlpError> {
        let sha256 = model_sha256(models_dir)?;
        let pipeline = Pipeline::load(&models_dir.join("spacy"))?;
        let hyphenator = Hyphenator::load(&models_dir.join(HYPHENATION))?;
        Ok(Analyzer {
            models: Arc::new(Models {
                pipeline,
                hyphenator,
                sha256,
            }),
            permits: Arc::new(Semaphore::new(threads.max(1))),
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

    /// Analyses one essay on the calling thread.
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

    /// Analyses one essay on the blocking pool, waiting for one of the `threads` places.
    pub async fn analyse_owned(&self, text: String) -> Result<Analysis, NlpError> {
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| NlpError::Worker("the analyser is shut down".into()))?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.analyse(&text))
            .await
            .map_err(|e| NlpError::Worker(e.to_string()))?
    }

    /// Analyses essays in parallel on the blocking pool (at most `threads` at once); results in
    /// input order, one per text.
    pub async fn analyse_all(&self, texts: Vec<String>) -> Vec<Result<Analysis, NlpError>> {
        self.in_parallel(texts, |this, text| this.analyse(&text))
            .await
    }

    /// Annotates texts (one parse each, no readability) in parallel on the blocking pool; results
    /// in input order.
    pub async fn annotate_all(&self, texts: Vec<String>) -> Vec<Result<Vec<Word>, NlpError>> {
        self.in_parallel(texts, |this, text| this.pipeline().annotate(&text))
            .await
    }

    /// Runs `work` on every text on the blocking pool, at most `threads` at once, in input order.
    async fn in_parallel<T: Send + 'static>(
        &self,
        texts: Vec<String>,
        work: fn(&Analyzer, String) -> Result<T, NlpError>,
    ) -> Vec<Result<T, NlpError>> {
        let tasks: Vec<_> =
            texts
                .into_iter()
                .map(|text| {
                    let this = self.clone();
                    tokio::spawn(async move {
                        let _permit =
                            this.permits.clone().acquire_owned().await.map_err(|_| {
                                NlpError::Worker("the analyser is shut down".into())
                            })?;
                        tokio::task::spawn_blocking(move || work(&this, text))
                            .await
                            .map_err(|e| NlpError::Worker(e.to_string()))?
                    })
                })
                .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            out.push(match task.await {
                Ok(result) => result,
                Err(e) => Err(NlpError::Worker(e.to_string())),
            });
        }
        out
    }
}
