//! Annotating essays for the features: the normalised and the raw document of each text, and
//! readability, with documents processed in parallel on tokio's blocking pool.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::normalise;
use crate::nlp::NlpError;
use crate::nlp::hyphenate::Hyphenator;
use crate::nlp::pipeline::{Pipeline, Word};
use crate::nlp::readability::{Readability, readability};

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
    /// Loads `models_dir/spacy` and `models_dir/hyphenation/hyph_en_GB.dic`; at most `threads`
    /// documents are annotated at once (at least 1).
    pub fn load(models_dir: &Path, threads: usize) -> Result<Analyzer, NlpError> {
        let pipeline = Pipeline::load(&models_dir.join("spacy"))?;
        let hyphenator = Hyphenator::load(&models_dir.join("hyphenation/hyph_en_GB.dic"))?;
        Ok(Analyzer {
            models: Arc::new(Models {
                pipeline,
                hyphenator,
            }),
            permits: Arc::new(Semaphore::new(threads.max(1))),
        })
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
