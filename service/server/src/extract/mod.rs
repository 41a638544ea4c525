//! One extraction request: every essay parsed twice on the blocking pool, the distinct strings
//! (essays, prompts, sentences, paragraphs) embedded once each through the shared batcher while
//! parsing goes on, LanguageTool checks running alongside, and the rows assembled in
//! docs/features.md order. Nothing partial comes out: any failure fails the whole request.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use ndarray::Array2;

use essay_features::analysis::Analysis;
use essay_features::{ErrorCounts, FeatureError};
use hemma_embed::queue::{EmbedError, Embedder};
use languagetool_pool::{Grammar, GrammarError};

pub use hemma_proto::v1::FeatureSet;

use crate::telemetry::metrics::Metrics;

mod analysis_pool;
pub use analysis_pool::{AnalysisError, AnalysisPool};

/// Strings per embedding call: small enough that several requests interleave in the batcher,
/// large enough to fill a batch.
const EMBED_PIECE: usize = 64;

/// One validated request.
#[derive(Debug, Clone)]
pub struct Job {
    /// The essays, byte-exact.
    pub texts: Vec<String>,
    /// One prompt per essay (empty for [`FeatureSet::Embeddings`]).
    pub prompts: Vec<String>,
    /// What to compute.
    pub set: FeatureSet,
}

/// Wall time of each stage of one request; the stages overlap.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// From the start until the last essay was parsed.
    pub parse: Duration,
    /// From the first embedding call until the last answered.
    pub embed: Duration,
    /// From the start until the last LanguageTool check answered.
    pub languagetool: Duration,
    /// Computing the handcrafted rows.
    pub assembly: Duration,
    /// The whole request.
    pub total: Duration,
    /// Distinct strings embedded.
    pub strings_embedded: usize,
}

/// The matrices of one request, rows in request order.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// [essays, dim], for embeddings and combined.
    pub embeddings: Option<Array2<f32>>,
    /// [essays, 25], for handcrafted and combined; NaN where a feature is undefined.
    pub handcrafted: Option<Array2<f32>>,
    /// Where the time went.
    pub timings: Timings,
}

/// Why a request could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The feature set needs LanguageTool and the server has none.
    #[error(
        "the {set} feature set needs LanguageTool, which is not configured on this server \
         (start it with --languagetool-url URL), or ask for the embeddings feature set"
    )]
    NoLanguageTool {
        /// The feature set asked for.
        set: &'static str,
    },
    /// An essay could not be parsed.
    #[error("text {index}: {source}")]
    Analyse {
        /// Its position in the request.
        index: usize,
        /// Why.
        source: AnalysisError,
    },
    /// LanguageTool failed on an essay.
    #[error("text {index}: LanguageTool: {source}")]
    Grammar {
        /// Its position in the request.
        index: usize,
        /// Why.
        source: GrammarError,
    },
    /// The embedding engine failed or is full.
    #[error("embedding: {0}")]
    Embed(#[from] EmbedError),
    /// The features of an essay could not be computed.
    #[error("text {index}: {source}")]
    Feature {
        /// Its position in the request.
        index: usize,
        /// Why.
        source: FeatureError,
    },
    /// A worker task failed.
    #[error("an extraction worker failed: {0}")]
    Worker(String),
}

/// Runs extractions over the shared analyser, embedder and LanguageTool proxy; cheap to clone.
#[derive(Debug, Clone)]
pub struct Extractor {
    analyzer: AnalysisPool,
    embedder: Embedder,
    grammar: Option<Arc<Grammar>>,
    metrics: Metrics,
}

/// Embeddings of the strings one request needed, by string.
type Vectors = HashMap<String, Vec<f32>>;

impl Extractor {
    /// An extractor over the server's components.
    pub fn new(
        analyzer: AnalysisPool,
        embedder: Embedder,
        grammar: Option<Arc<Grammar>>,
        metrics: Metrics,
    ) -> Extractor {
        Extractor {
            analyzer,
            embedder,
            grammar,
            metrics,
        }
    }

    /// Computes the feature set of every essay of `job`.
    pub async fn extract(&self, job: Job) -> Result<Extracted, ExtractError> {
        let started = Instant::now();
        let mut out = match job.set {
            FeatureSet::Embeddings => self.embeddings_only(job.texts).await?,
            set => self.with_handcrafted(job, set).await?,
        };
        out.timings.total = started.elapsed();
        self.metrics.record_extract(
            job_set_name(&out),
            &[
                ("parse", out.timings.parse),
                ("embed", out.timings.embed),
                ("languagetool", out.timings.languagetool),
                ("assembly", out.timings.assembly),
                ("total", out.timings.total),
            ],
        );
        Ok(out)
    }

    async fn embeddings_only(&self, texts: Vec<String>) -> Result<Extracted, ExtractError> {
        let started = Instant::now();
        let strings_embedded = texts.len();
        let pieces = texts
            .chunks(self.piece())
            .map(|piece| self.embedder.embed_waiting(piece.to_vec()));
        let answers = futures::future::try_join_all(pieces).await?;
        let dim = self.embedder.info().dim;
        let mut matrix = Array2::<f32>::zeros((strings_embedded, dim));
        let mut row = 0;
        for answer in answers {
            for vector in answer.vectors.rows() {
                matrix.row_mut(row).assign(&vector);
                row += 1;
            }
        }
        Ok(Extracted {
            embeddings: Some(matrix),
            handcrafted: None,
            timings: Timings {
                embed: started.elapsed(),
                strings_embedded,
                ..Timings::default()
            },
        })
    }

    fn piece(&self) -> usize {
        EMBED_PIECE.min(self.embedder.capacity()).max(1)
    }

    async fn with_handcrafted(&self, job: Job, set: FeatureSet) -> Result<Extracted, ExtractError> {
        let grammar = self
            .grammar
            .clone()
            .ok_or(ExtractError::NoLanguageTool { set: set.name() })?;
        let started = Instant::now();
        let Job { texts, prompts, .. } = job;
        let languagetool = async {
            let counts = check_all(&grammar, &texts).await?;
            Ok::<_, ExtractError>((counts, started.elapsed()))
        };
        let ((counts, languagetool), (analyses, vectors, mut timings)) =
            futures::future::try_join(languagetool, self.parse_and_embed(&texts, &prompts)).await?;
        timings.languagetool = languagetool;
        let assembling = Instant::now();
        let (embeddings, handcrafted) = tokio::task::spawn_blocking(move || {
            assemble(set, &analyses, &prompts, &counts, &vectors)
        })
        .await
        .map_err(|e| ExtractError::Worker(e.to_string()))??;
        timings.assembly = assembling.elapsed();
        Ok(Extracted {
            embeddings,
            handcrafted: Some(handcrafted),
            timings,
        })
    }

    /// Parses every essay and, as each parse finishes, embeds the strings it needs that no earlier
    /// essay of the request asked for, so the engine works while the parser does.
    async fn parse_and_embed(
        &self,
        texts: &[String],
        prompts: &[String],
    ) -> Result<(Vec<Analysis>, Vectors, Timings), ExtractError> {
        let started = Instant::now();
        let mut parsing: FuturesUnordered<_> = texts
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let analyzer = self.analyzer.clone();
                let text = text.clone();
                async move { (index, analyzer.analyse_owned(text).await) }
            })
            .collect();
        let mut embedding = FuturesUnordered::new();
        let mut analyses: Vec<Option<Analysis>> = vec![None; texts.len()];
        let mut asked: HashSet<String> = HashSet::new();
        let mut vectors = Vectors::new();
        let mut timings = Timings::default();
        let mut embed_started: Option<Instant> = None;
        loop {
            tokio::select! {
                Some((index, analysis)) = parsing.next() => {
                    let analysis =
                        analysis.map_err(|source| ExtractError::Analyse { index, source })?;
                    let fresh: Vec<String> = essay_features::embedding_inputs(&analysis, &prompts[index])
                        .into_iter()
                        .filter(|s| asked.insert(s.clone()))
                        .collect();
                    for piece in fresh.chunks(self.piece()) {
                        embed_started.get_or_insert_with(Instant::now);
                        let strings = piece.to_vec();
                        let embedder = self.embedder.clone();
                        embedding.push(async move {
                            let answer = embedder.embed_waiting(strings.clone()).await?;
                            Ok::<_, EmbedError>((strings, answer.vectors))
                        });
                    }
                    analyses[index] = Some(analysis);
                    if parsing.is_empty() {
                        timings.parse = started.elapsed();
                    }
                }
                Some(answer) = embedding.next() => {
                    let (strings, matrix) = answer?;
                    for (string, row) in strings.into_iter().zip(matrix.rows()) {
                        vectors.insert(string, row.to_vec());
                    }
                }
                else => break,
            }
        }
        timings.embed = embed_started.map(|t| t.elapsed()).unwrap_or_default();
        timings.strings_embedded = vectors.len();
        let analyses = analyses
            .into_iter()
            .enumerate()
            .map(|(index, a)| {
                a.ok_or_else(|| ExtractError::Worker(format!("text {index} was never parsed")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((analyses, vectors, timings))
    }
}

fn job_set_name(out: &Extracted) -> &'static str {
    match (out.embeddings.is_some(), out.handcrafted.is_some()) {
        (true, true) => FeatureSet::Combined.name(),
        (false, true) => FeatureSet::Handcrafted.name(),
        _ => FeatureSet::Embeddings.name(),
    }
}

/// LanguageTool counts of every essay's normalised text (one check each, all in flight at once;
/// the pool bounds what reaches LanguageTool). An essay with no text has no matches.
async fn check_all(grammar: &Grammar, texts: &[String]) -> Result<Vec<ErrorCounts>, ExtractError> {
    let checks = texts.iter().enumerate().map(|(index, text)| async move {
        let normalised = essay_features::normalise(text);
        if normalised.is_empty() {
            return Ok(ErrorCounts::default());
        }
        grammar
            .check(&normalised, grammar.defaults())
            .await
            .map(|checked| error_counts(&checked.result.counts))
            .map_err(|source| ExtractError::Grammar { index, source })
    });
    futures::future::try_join_all(checks).await
}

/// The checker's counts as the features' error counts.
fn error_counts(c: &languagetool_pool::Counts) -> ErrorCounts {
    ErrorCounts {
        grammar: c.grammar,
        spelling: c.spelling,
        punctuation: c.punctuation,
    }
}

/// The matrices from the parts: the essay rows of the embeddings (combined only) and the 25
/// handcrafted features per essay, as f32.
fn assemble(
    set: FeatureSet,
    analyses: &[Analysis],
    prompts: &[String],
    counts: &[ErrorCounts],
    vectors: &Vectors,
) -> Result<(Option<Array2<f32>>, Array2<f32>), ExtractError> {
    let n = analyses.len();
    let mut handcrafted = Array2::<f32>::zeros((n, essay_features::COLUMNS.len()));
    for (index, analysis) in analyses.iter().enumerate() {
        let row = essay_features::handcrafted(analysis, &prompts[index], counts[index], vectors)
            .map_err(|source| ExtractError::Feature { index, source })?;
        for (cell, value) in handcrafted.row_mut(index).iter_mut().zip(row) {
            *cell = value as f32;
        }
    }
    let embeddings = if set.has_embeddings() {
        let dim = vectors.values().next().map_or(0, Vec::len);
        let mut matrix = Array2::<f32>::zeros((n, dim));
        for (index, analysis) in analyses.iter().enumerate() {
            let vector = vectors
                .get(&analysis.text)
                .ok_or_else(|| ExtractError::Feature {
                    index,
                    source: FeatureError::MissingEmbedding {
                        role: "essay",
                        preview: analysis.text.chars().take(40).collect(),
                    },
                })?;
            matrix
                .row_mut(index)
                .assign(&ndarray::ArrayView1::from(&vector[..]));
        }
        Some(matrix)
    } else {
        None
    };
    Ok((embeddings, handcrafted))
}
