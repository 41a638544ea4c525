//! One extraction request: every essay parsed twice on the blocking pool, the distinct strings
//! (essays, prompts, sentences, paragraphs) embedded once each through the shared batcher while
//! parsing goes on, LanguageTool checks running alongside, and the rows assembled in
//! docs/features.md order.
//!
//! A text over one of the analyser's limits (docs/features.md, "Limits") is data, not a failure:
//! its row gets NaN handcrafted features and a [`LimitedRow`] status, and still its embedding.
//! Anything else that fails (LanguageTool down, the engine) fails the whole request, so the client
//! can retry it. Dropping the future stops the work: parses are cancelled, queued embeddings are
//! skipped, assembly stops between essays.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use ndarray::Array2;

use essay_features::AnalyseError;
use essay_features::analysis::Analysis;
use essay_features::{Cancel, ErrorCounts, FeatureError, Limit};
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

/// A row whose text exceeded an analyser limit: NaN handcrafted features.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitedRow {
    /// Its position in the request.
    pub index: usize,
    /// Which limit.
    pub limit: Limit,
    /// One sentence for a person.
    pub message: String,
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
    /// Rows with NaN handcrafted features because their text exceeded a limit, by index.
    pub limited: Vec<LimitedRow>,
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
    /// The request needs more distinct strings embedded than one request may.
    #[error(
        "the essays of this request need more than {cap} distinct strings embedded (essays, \
         prompts, sentences, paragraphs); send fewer essays per request (hemma extract \
         --chunk-size)"
    )]
    TooManyStrings {
        /// The server's cap (--max-strings-per-request).
        cap: usize,
    },
    /// A worker task failed.
    #[error("an extraction worker failed: {0}")]
    Worker(String),
}

/// One essay after parsing: analysed, or over a limit.
enum Parsed {
    Analysed(Analysis),
    Limited { limit: Limit, message: String },
}

/// Runs extractions over the shared analyser, embedder and LanguageTool proxy; cheap to clone.
#[derive(Debug, Clone)]
pub struct Extractor {
    analyzer: AnalysisPool,
    embedder: Embedder,
    grammar: Option<Arc<Grammar>>,
    metrics: Metrics,
    max_strings: usize,
}

/// Embeddings of the strings one request needed, by string.
type Vectors = HashMap<String, Vec<f32>>;

impl Extractor {
    /// An extractor over the server's components.
    /// An extractor over the server's components; one request embeds at most `max_strings`
    /// distinct strings.
    pub fn new(
        analyzer: AnalysisPool,
        embedder: Embedder,
        grammar: Option<Arc<Grammar>>,
        metrics: Metrics,
        max_strings: usize,
    ) -> Extractor {
        let analyzer = analyzer.counting_cancellations(metrics.analyses_cancelled.clone());
        Extractor {
            analyzer,
            embedder,
            grammar,
            metrics,
            max_strings,
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
        for row in &out.limited {
            self.metrics
                .rows_limited
                .get_or_create(&crate::telemetry::metrics::LimitLabels {
                    reason: row.limit.code().to_owned(),
                })
                .inc();
        }
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
        let requester = self.embedder.requester();
        let pieces = texts
            .chunks(self.piece())
            .map(|piece| requester.embed(piece.to_vec()));
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
            limited: Vec::new(),
        })
    }

    fn piece(&self) -> usize {
        EMBED_PIECE.min(self.embedder.share()).max(1)
    }

    async fn with_handcrafted(&self, job: Job, set: FeatureSet) -> Result<Extracted, ExtractError> {
        let grammar = self
            .grammar
            .clone()
            .ok_or(ExtractError::NoLanguageTool { set: set.name() })?;
        let Job { texts, prompts, .. } = job;
        let (analyses, counts, vectors, mut timings) =
            self.parse_check_embed(&grammar, &texts, &prompts).await?;
        let assembling = Instant::now();
        let limited: Vec<LimitedRow> = analyses
            .iter()
            .enumerate()
            .filter_map(|(index, p)| match p {
                Parsed::Limited { limit, message } => Some(LimitedRow {
                    index,
                    limit: *limit,
                    message: message.clone(),
                }),
                Parsed::Analysed(_) => None,
            })
            .collect();
        let cancel = Cancel::new();
        let _stop = CancelOnDrop(cancel.clone());
        let (embeddings, handcrafted) = tokio::task::spawn_blocking(move || {
            assemble(set, &texts, &analyses, &prompts, &counts, &vectors, &cancel)
        })
        .await
        .map_err(|e| ExtractError::Worker(e.to_string()))??;
        timings.assembly = assembling.elapsed();
        Ok(Extracted {
            embeddings,
            handcrafted: Some(handcrafted),
            timings,
            limited,
        })
    }

    /// Parses every essay and, as each parse finishes, sends it to LanguageTool and embeds the
    /// strings it needs that no earlier essay of the request asked for, so the engine and
    /// LanguageTool work while the parser does. A text over a limit is not sent to LanguageTool.
    async fn parse_check_embed(
        &self,
        grammar: &Grammar,
        texts: &[String],
        prompts: &[String],
    ) -> Result<(Vec<Parsed>, Vec<ErrorCounts>, Vectors, Timings), ExtractError> {
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
        let requester = self.embedder.requester();
        let mut embedding = FuturesUnordered::new();
        let mut checking = FuturesUnordered::new();
        let mut counts = vec![ErrorCounts::default(); texts.len()];
        let mut analyses: Vec<Option<Parsed>> = (0..texts.len()).map(|_| None).collect();
        let mut asked: HashSet<String> = HashSet::new();
        let mut vectors = Vectors::new();
        let mut timings = Timings::default();
        let mut embed_started: Option<Instant> = None;
        loop {
            tokio::select! {
                Some((index, analysis)) = parsing.next() => {
                    let parsed = match analysis {
                        Ok(analysis) => Parsed::Analysed(analysis),
                        Err(AnalysisError::Analyse(AnalyseError::Limited { limit, message })) => {
                            Parsed::Limited { limit, message }
                        }
                        Err(source) => return Err(ExtractError::Analyse { index, source }),
                    };
                    if let Parsed::Analysed(_) = parsed {
                        checking.push(async move {
                            (index, check_one(grammar, &texts[index]).await)
                        });
                    }
                    let needed = match &parsed {
                        Parsed::Analysed(a) => essay_features::embedding_inputs(a, &prompts[index]),
                        // Only the essay row's own embedding (embeddings truncate anyway).
                        Parsed::Limited { .. } => vec![texts[index].clone()],
                    };
                    let fresh: Vec<String> =
                        needed.into_iter().filter(|s| asked.insert(s.clone())).collect();
                    if asked.len() > self.max_strings {
                        return Err(ExtractError::TooManyStrings { cap: self.max_strings });
                    }
                    for piece in fresh.chunks(self.piece()) {
                        embed_started.get_or_insert_with(Instant::now);
                        let strings = piece.to_vec();
                        let requester = &requester;
                        embedding.push(async move {
                            let answer = requester.embed(strings.clone()).await?;
                            Ok::<_, EmbedError>((strings, answer.vectors))
                        });
                    }
                    analyses[index] = Some(parsed);
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
                Some((index, checked)) = checking.next() => {
                    counts[index] =
                        checked.map_err(|source| ExtractError::Grammar { index, source })?;
                    timings.languagetool = started.elapsed();
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
        Ok((analyses, counts, vectors, timings))
    }
}

fn job_set_name(out: &Extracted) -> &'static str {
    match (out.embeddings.is_some(), out.handcrafted.is_some()) {
        (true, true) => FeatureSet::Combined.name(),
        (false, true) => FeatureSet::Handcrafted.name(),
        _ => FeatureSet::Embeddings.name(),
    }
}

/// LanguageTool counts of one essay's normalised text (the pool bounds what reaches
/// LanguageTool). An essay with no text has no matches.
async fn check_one(grammar: &Grammar, text: &str) -> Result<ErrorCounts, GrammarError> {
    let normalised = essay_features::normalise(text);
    if normalised.is_empty() {
        return Ok(ErrorCounts::default());
    }
    grammar
        .check(&normalised, grammar.defaults())
        .await
        .map(|checked| error_counts(&checked.result.counts))
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
/// Raises a cancel flag when the future waiting for the work is dropped.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The matrices from the parts: the essay rows of the embeddings (combined only) and the 25
/// handcrafted features per essay, as f32 (NaN for limited rows). Stops between essays once
/// `cancel` is raised.
fn assemble(
    set: FeatureSet,
    texts: &[String],
    analyses: &[Parsed],
    prompts: &[String],
    counts: &[ErrorCounts],
    vectors: &Vectors,
    cancel: &Cancel,
) -> Result<(Option<Array2<f32>>, Array2<f32>), ExtractError> {
    let n = analyses.len();
    let mut handcrafted = Array2::<f32>::from_elem((n, essay_features::COLUMNS.len()), f32::NAN);
    for (index, parsed) in analyses.iter().enumerate() {
        if cancel.is_cancelled() {
            return Err(ExtractError::Worker("the request was cancelled".into()));
        }
        let Parsed::Analysed(analysis) = parsed else {
            continue;
        };
        let row = essay_features::handcrafted(analysis, &prompts[index], counts[index], vectors)
            .map_err(|source| ExtractError::Feature { index, source })?;
        for (cell, value) in handcrafted.row_mut(index).iter_mut().zip(row) {
            *cell = value as f32;
        }
    }
    let embeddings = if set.has_embeddings() {
        let dim = vectors.values().next().map_or(0, Vec::len);
        let mut matrix = Array2::<f32>::zeros((n, dim));
        for (index, text) in texts.iter().enumerate() {
            let vector = vectors.get(text).ok_or_else(|| ExtractError::Feature {
                index,
                source: FeatureError::MissingEmbedding {
                    role: "essay",
                    preview: text.chars().take(40).collect(),
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
