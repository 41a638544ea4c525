//! The essay analyser on tokio's blocking pool: at most `threads` documents are parsed at once,
//! and the async side never blocks on a parse.
//!
//! A parse holds its place until the blocking work has really stopped, so `--nlp-threads` bounds
//! CPU. When the future waiting for a parse is dropped (the client went away, a deadline passed),
//! a guard raises the parse's [`Cancel`] flag, which the tokenizer, the parser and the feature
//! code check: the work stops within a few milliseconds and only then gives its place back.

use std::sync::Arc;

use essay_features::AnalyseError;
use essay_features::Cancel;
use essay_features::analysis::{Analysis, Analyzer};
use prometheus_client::metrics::counter::Counter;
use spacy_en_core_sm::NlpError;
use spacy_en_core_sm::pipeline::Word;
use tokio::sync::Semaphore;

/// Why a document could not be analysed on the pool.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The analyser refused or gave up on the text.
    #[error(transparent)]
    Analyse(#[from] AnalyseError),
    /// The worker task panicked.
    #[error("an annotation worker failed: {0}")]
    Worker(String),
}

/// The loaded analyser with a bound on parses in flight; cheap to clone, shared by all requests.
#[derive(Clone)]
pub struct AnalysisPool {
    analyzer: Analyzer,
    permits: Arc<Semaphore>,
    cancelled: Counter,
}

impl std::fmt::Debug for AnalysisPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnalysisPool")
            .field("free_threads", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

/// Raises a parse's cancel flag when the future waiting for it is dropped.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl AnalysisPool {
    /// Runs `analyzer` on the blocking pool, at most `threads` documents at once (at least 1).
    pub fn new(analyzer: Analyzer, threads: usize) -> AnalysisPool {
        AnalysisPool {
            analyzer,
            permits: Arc::new(Semaphore::new(threads.max(1))),
            cancelled: Counter::default(),
        }
    }

    /// Counts parses stopped by cancellation in `counter` (the server's metric).
    pub fn counting_cancellations(mut self, counter: Counter) -> AnalysisPool {
        self.cancelled = counter;
        self
    }

    /// The analyser itself.
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// sha256 identifying every model file the analyser read.
    pub fn sha256(&self) -> &str {
        self.analyzer.sha256()
    }

    /// Places free for parses right now.
    pub fn free_threads(&self) -> usize {
        self.permits.available_permits()
    }

    /// Analyses one essay on the blocking pool, waiting for one of the `threads` places; dropping
    /// the returned future cancels the parse.
    pub async fn analyse_owned(&self, text: String) -> Result<Analysis, AnalysisError> {
        self.run(text, |a, text, cancel| a.analyse_with(&text, cancel))
            .await
    }

    /// Analyses essays in parallel (at most `threads` at once); results in input order.
    pub async fn analyse_all(&self, texts: Vec<String>) -> Vec<Result<Analysis, AnalysisError>> {
        self.in_parallel(texts, |a, text, cancel| a.analyse_with(&text, cancel))
            .await
    }

    /// Annotates texts (one parse each, no readability, no limits) in parallel; results in
    /// input order.
    pub async fn annotate_all(&self, texts: Vec<String>) -> Vec<Result<Vec<Word>, AnalysisError>> {
        self.in_parallel(texts, |a, text, cancel| {
            a.pipeline()
                .annotate_with(&text, cancel)
                .map_err(|e| match e {
                    NlpError::Cancelled => AnalyseError::Cancelled,
                    e => AnalyseError::Nlp(e),
                })
        })
        .await
    }

    /// Runs `work` on one text on the blocking pool once a place is free; the place is given
    /// back when the work has ended, and dropping this future cancels the work.
    async fn run<T: Send + 'static>(
        &self,
        text: String,
        work: fn(&Analyzer, String, &Cancel) -> Result<T, AnalyseError>,
    ) -> Result<T, AnalysisError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AnalysisError::Worker("the analyser is shut down".into()))?;
        let analyzer = self.analyzer.clone();
        let cancel = Cancel::new();
        let _guard = CancelOnDrop(cancel.clone());
        let cancelled = self.cancelled.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let result = work(&analyzer, text, &cancel);
            if matches!(result, Err(AnalyseError::Cancelled)) {
                cancelled.inc();
            }
            result
        })
        .await
        .map_err(|e| AnalysisError::Worker(e.to_string()))?
        .map_err(AnalysisError::from)
    }

    /// Runs `work` on every text, at most `threads` at once, in input order.
    async fn in_parallel<T: Send + 'static>(
        &self,
        texts: Vec<String>,
        work: fn(&Analyzer, String, &Cancel) -> Result<T, AnalyseError>,
    ) -> Vec<Result<T, AnalysisError>> {
        let runs = texts.into_iter().map(|text| self.run(text, work));
        futures::future::join_all(runs).await
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
            assert_eq!(
                got.unwrap(),
                analyzer.analyse_with(text, &Cancel::new()).unwrap()
            );
        }
    }
}
