//! The essay analyser on tokio's blocking pool: at most `threads` documents are parsed at once,
//! and the async side never blocks on a parse.

use std::sync::Arc;

use essay_features::analysis::{Analysis, Analyzer};
use spacy_en_core_sm::NlpError;
use spacy_en_core_sm::pipeline::Word;
use tokio::sync::Semaphore;

/// Why a document could not be analysed on the pool.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The parser refused the text.
    #[error(transparent)]
    Nlp(#[from] NlpError),
    /// The worker task panicked or was cancelled.
    #[error("an annotation worker failed: {0}")]
    Worker(String),
}

/// The loaded analyser with a bound on parses in flight; cheap to clone, shared by all requests.
#[derive(Clone)]
pub struct AnalysisPool {
    analyzer: Analyzer,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for AnalysisPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalysisPool")
            .field("free_threads", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl AnalysisPool {
    /// Runs `analyzer` on the blocking pool, at most `threads` documents at once (at least 1).
    pub fn new(analyzer: Analyzer, threads: usize) -> AnalysisPool {
        AnalysisPool {
            analyzer,
            permits: Arc::new(Semaphore::new(threads.max(1))),
        }
    }

    /// The analyser itself.
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// sha256 identifying every model file the analyser read.
    pub fn sha256(&self) -> &str {
        self.analyzer.sha256()
    }

    /// Analyses one essay on the blocking pool, waiting for one of the `threads` places.
    pub async fn analyse_owned(&self, text: String) -> Result<Analysis, AnalysisError> {
        self.run(text, |a, text| a.analyse(&text)).await
    }

    /// Analyses essays in parallel (at most `threads` at once); results in input order.
    pub async fn analyse_all(&self, texts: Vec<String>) -> Vec<Result<Analysis, AnalysisError>> {
        self.in_parallel(texts, |a, text| a.analyse(&text)).await
    }

    /// Annotates texts (one parse each, no readability) in parallel; results in input order.
    pub async fn annotate_all(&self, texts: Vec<String>) -> Vec<Result<Vec<Word>, AnalysisError>> {
        self.in_parallel(texts, |a, text| a.pipeline().annotate(&text))
            .await
    }

    /// Runs `work` on one text on the blocking pool once a place is free.
    async fn run<T: Send + 'static>(
        &self,
        text: String,
        work: fn(&Analyzer, String) -> Result<T, NlpError>,
    ) -> Result<T, AnalysisError> {
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AnalysisError::Worker("the analyser is shut down".into()))?;
        let analyzer = self.analyzer.clone();
        tokio::task::spawn_blocking(move || work(&analyzer, text))
            .await
            .map_err(|e| AnalysisError::Worker(e.to_string()))?
            .map_err(AnalysisError::from)
    }

    /// Runs `work` on every text, at most `threads` at once, in input order.
    async fn in_parallel<T: Send + 'static>(
        &self,
        texts: Vec<String>,
        work: fn(&Analyzer, String) -> Result<T, NlpError>,
    ) -> Vec<Result<T, AnalysisError>> {
        let tasks: Vec<_> = texts
            .into_iter()
            .map(|text| {
                let this = self.clone();
                tokio::spawn(async move { this.run(text, work).await })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            out.push(match task.await {
                Ok(result) => result,
                Err(e) => Err(AnalysisError::Worker(e.to_string())),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn essays_are_analysed_in_parallel_in_input_order() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let analyzer = Analyzer::load(&root.join("models")).expect("the vendored models load");
        let pool = AnalysisPool::new(analyzer.clone(), 2);
        let texts: Vec<String> = std::fs::read_to_string(root.join("examples/essays.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let all = pool.analyse_all(texts.clone()).await;
        assert_eq!(all.len(), texts.len());
        for (text, got) in texts.iter().zip(all) {
            assert_eq!(got.unwrap(), analyzer.analyse(text).unwrap());
        }
    }
}
