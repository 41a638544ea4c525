//! A corpus run: essays in, the feature matrices out, in input order.
//!
//! Every distinct (text, prompt) is looked up in the local cache first; the misses go to the
//! servers over `ExtractStream` in chunks, with a bounded number of chunks in flight per server
//! ([`crate::spread`]: several servers with the same fingerprint share the chunks), and each
//! answered chunk is written to the cache at once. That is what makes a re-run free and an
//! interrupted run resume: the next run finds the finished chunks in the cache. Transport errors
//! and UNAVAILABLE / RESOURCE_EXHAUSTED / DEADLINE_EXCEEDED answers are retried with exponential
//! backoff (the stream is reopened for what is still missing, on any server); any other refusal
//! stops the run at once and names the essays. The caller gets the matrices only when every row
//! is there.
//!
//! A row the server answered but could not analyse whole (its text exceeded the analyser's
//! limits: NaN handcrafted features, embeddings as usual) is not a failure: the run finishes and
//! [`RunOutput::limited`] lists it with the server's status, which the cache keeps with the row.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hemma_proto::v1::{ExtractChunk, ExtractChunkResult, InfoResponse, extract_chunk_result};
use ndarray::Array2;

use hemma_client::extract::Extraction;
use hemma_client::{Client, ClientError, extract_request};
use hemma_proto::v1::FeatureSet;

use crate::Essay;
use crate::cache::{Cache, CacheError, CachedRow, Lookup, RowLimit, entry_key};
use crate::progress::Progress;
use crate::spread::{Chunk, RoundError, ServerReport, Shared, serve_chunks};

/// How to run one extraction.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Which matrices to compute.
    pub feature_set: FeatureSet,
    /// Essays per chunk on the stream.
    pub chunk_size: usize,
    /// Chunks in flight at once.
    pub concurrency: usize,
    /// Retries after a transient failure that made no progress (0: fail at the first).
    pub retries: u32,
    /// Wait before the first retry; doubled each time, at most 30 s.
    pub backoff: Duration,
    /// Cache root; None runs without a cache (nothing is kept, nothing resumes).
    pub cache: Option<PathBuf>,
}

/// Per-stage seconds summed over the chunks the server computed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StageSums {
    /// Parsing (both parses of every essay).
    pub parse_seconds: f64,
    /// Embedding the distinct strings.
    pub embed_seconds: f64,
    /// LanguageTool checks.
    pub languagetool_seconds: f64,
    /// Assembling the rows.
    pub assembly_seconds: f64,
    /// Whole chunks, as the server timed them.
    pub total_seconds: f64,
    /// Distinct strings embedded.
    pub strings_embedded: u64,
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExtractReport {
    /// Essays in the input (rows of the outputs).
    pub essays: usize,
    /// Distinct (text, prompt) pairs among them.
    pub distinct: usize,
    /// Distinct pairs found in the cache.
    pub cache_hits: usize,
    /// Damaged cache entries found (and fetched again).
    pub cache_damaged: usize,
    /// Distinct pairs computed by the server in this run.
    pub fetched: usize,
    /// Chunks the server answered.
    pub chunks: usize,
    /// Retries after transient failures.
    pub retries: u32,
    /// Essays (rows of the outputs, duplicates each counted) the server could not analyse
    /// whole: their handcrafted features are NaN; [`RunOutput::limited`] lists them.
    pub limited: usize,
    /// The server fingerprint of every row.
    pub fingerprint: String,
    /// What each server did, in the order given.
    pub servers: Vec<ServerReport>,
    /// Wall time of the run.
    pub seconds: f64,
    /// Server-side stage times of the fetched chunks.
    pub stages: StageSums,
}

/// The rows of a finished run, in input order.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The essays, as given.
    pub essays: Vec<Essay>,
    /// The first server's `Info` at the start of the run (its fingerprint is every row's).
    pub info: InfoResponse,
    /// [essays, dim], for sets with embeddings.
    pub embeddings: Option<Array2<f32>>,
    /// [essays, 25], NaN kept, for sets with handcrafted features.
    pub handcrafted: Option<Array2<f32>>,
    /// The essays whose text exceeded the server's analyser, in input order (empty when every
    /// row is complete); the same status whether the row was computed now or read from the cache.
    pub limited: Vec<LimitedRow>,
    /// What the run did.
    pub report: ExtractReport,
}

/// One essay whose row is not complete: its handcrafted features are NaN because its text
/// exceeded what the server's analyser takes (its embedding is computed as usual).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LimitedRow {
    /// Its position in the run's input (row of the outputs), from 0.
    pub index: usize,
    /// Its id.
    pub id: String,
    /// The server's stable snake_case reason, e.g. `word_too_long`.
    pub code: String,
    /// The server's sentence: what was over which limit.
    pub message: String,
}

/// Why an extraction run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The feature set needs prompts and an essay has none.
    #[error(
        "essay `{id}` has no prompt; the {set} feature set needs one (--prompt-column COLUMN, or --prompt TEXT for all)"
    )]
    MissingPrompt {
        /// The essay's id.
        id: String,
        /// The feature set.
        set: &'static str,
    },
    /// The server refused a chunk for a reason retrying cannot fix.
    #[error("the server refused essays {first}..{last} ({count} distinct): {code:?}: {message}")]
    Refused {
        /// Id of the chunk's first essay.
        first: String,
        /// Id of its last essay.
        last: String,
        /// Essays in the chunk.
        count: usize,
        /// gRPC code.
        code: tonic::Code,
        /// The server's sentence.
        message: String,
    },
    /// Transient failures went on past the retry budget.
    #[error(
        "giving up after {attempts} attempts without progress: {last} (the finished chunks are cached: run the same command again to resume)"
    )]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// A call failed for good (e.g. Info).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// No server was given.
    #[error("no server to run on: give at least one")]
    NoServers,
    /// Two servers of the run compute different features.
    #[error(
        "the servers compute different features: {first} has fingerprint {first_fingerprint}, {other} has {other_fingerprint}; run with servers that share one (same model, options and version)"
    )]
    FingerprintsDiffer {
        /// The first server.
        first: String,
        /// Its fingerprint (the run's).
        first_fingerprint: String,
        /// The server that differs.
        other: String,
        /// Its fingerprint.
        other_fingerprint: String,
    },
    /// The server was replaced by one whose features differ.
    #[error(
        "the server's fingerprint changed during the run (was {was}, now {now}); run again to extract everything from the new server"
    )]
    FingerprintChanged {
        /// The fingerprint the run started with.
        was: String,
        /// The one a later answer carried.
        now: String,
    },
    /// The cache could not be read or written.
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// Shared state of one run.
pub(crate) struct Run {
    pub(crate) set: FeatureSet,
    fingerprint: String,
    pub(crate) essays: Arc<Vec<Essay>>,
    /// Cache key of every essay.
    keys: Vec<String>,
    /// Essays per key (duplicates count once each).
    copies: HashMap<String, usize>,
    cache: Option<Arc<Cache>>,
    rows: HashMap<String, CachedRow>,
    stages: StageSums,
    chunks: usize,
}

/// Extracts the features of `essays`: cached rows from the cache, the rest from `servers` (one
/// or more; all must have the same fingerprint); `progress` hears of every essay done, of every
/// retry and of a server that leaves the run.
pub async fn extract(
    servers: &[Client],
    essays: Vec<Essay>,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<RunOutput, RunError> {
    let started = Instant::now();
    let set = options.feature_set;
    if set.has_handcrafted()
        && let Some(e) = essays.iter().find(|e| e.prompt.is_none())
    {
        return Err(RunError::MissingPrompt {
            id: e.id.clone(),
            set: set.name(),
        });
    }
    let Some(first) = servers.first() else {
        return Err(RunError::NoServers);
    };
    let info = info_with_retries(first, options, progress).await?;
    for other in &servers[1..] {
        let theirs = info_with_retries(other, options, progress).await?;
        if theirs.fingerprint != info.fingerprint {
            return Err(RunError::FingerprintsDiffer {
                first: first.endpoint().to_owned(),
                first_fingerprint: info.fingerprint.clone(),
                other: other.endpoint().to_owned(),
                other_fingerprint: theirs.fingerprint,
            });
        }
    }
    let fingerprint = info.fingerprint.clone();
    let prompt_of = |e: &Essay| -> String {
        match set.has_handcrafted() {
            true => e.prompt.clone().unwrap_or_default(),
            false => String::new(),
        }
    };
    let keys: Vec<String> = essays
        .iter()
        .map(|e| entry_key(&fingerprint, set.name(), &e.text, &prompt_of(e)))
        .collect();
    let mut copies: HashMap<String, usize> = HashMap::new();
    let mut distinct = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let n = copies.entry(k.clone()).or_insert(0);
        if *n == 0 {
            distinct.push(i);
        }
        *n += 1;
    }
    let cache = match &options.cache {
        Some(root) => Some(Arc::new(Cache::new(root, &fingerprint, set.name())?)),
        None => None,
    };
    let mut run = Run {
        set,
        fingerprint,
        essays: Arc::new(essays),
        keys,
        copies,
        cache,
        rows: HashMap::new(),
        stages: StageSums::default(),
        chunks: 0,
    };
    let (hits, damaged) = run.read_cache(&distinct).await?;
    for k in hits.keys() {
        progress.advance(run.copies[k] as u64);
    }
    let cache_hits = hits.len();
    run.rows = hits;
    let pending: Vec<usize> = distinct
        .iter()
        .copied()
        .filter(|&i| !run.rows.contains_key(&run.keys[i]))
        .collect();
    let fetched = pending.len();
    let chunks: Vec<Chunk> = pending
        .chunks(options.chunk_size.max(1))
        .enumerate()
        .map(|(k, rows)| Chunk {
            id: k as u64,
            rows: rows.to_vec(),
        })
        .collect();
    let shared = Shared::new(run, chunks, servers.len());
    // One worker per server, polled together on this task; the first error ends them all.
    let mut workers = futures::stream::FuturesOrdered::new();
    for client in servers {
        workers.push_back(serve_chunks(&shared, client, options, progress));
    }
    let mut reports = Vec::with_capacity(servers.len());
    while let Some(report) = workers.next().await {
        reports.push(report?);
    }
    drop(workers);
    let (run, retries) = shared.finish();
    let (embeddings, handcrafted) = run.matrices()?;
    let limited = limited_rows(&run.essays, &run.keys, &run.rows);
    let report = ExtractReport {
        essays: run.essays.len(),
        distinct: distinct.len(),
        cache_hits,
        cache_damaged: damaged,
        fetched,
        chunks: run.chunks,
        retries,
        limited: limited.len(),
        fingerprint: run.fingerprint.clone(),
        servers: reports,
        seconds: started.elapsed().as_secs_f64(),
        stages: run.stages.clone(),
    };
    let essays = Arc::try_unwrap(run.essays).unwrap_or_else(|shared| (*shared).clone());
    Ok(RunOutput {
        essays,
        info,
        embeddings,
        handcrafted,
        limited,
        report,
    })
}

/// The essays whose row carries a status, in input order; duplicates share their row's status.
fn limited_rows(
    essays: &[Essay],
    keys: &[String],
    rows: &HashMap<String, CachedRow>,
) -> Vec<LimitedRow> {
    essays
        .iter()
        .zip(keys)
        .enumerate()
        .filter_map(|(index, (essay, key))| {
            let limit = rows.get(key)?.limited.as_ref()?;
            Some(LimitedRow {
                index,
                id: essay.id.clone(),
                code: limit.code.clone(),
                message: limit.message.clone(),
            })
        })
        .collect()
}

/// Wait before retry `attempt` (1-based): `base` doubled each time, at most 30 s.
pub(crate) fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(Duration::from_secs(30))
}

/// Whether a failure with `code` may go away by itself.
fn transient(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Unavailable | ResourceExhausted | DeadlineExceeded | Aborted | Unknown | Cancelled
    )
}

async fn info_with_retries(
    client: &Client,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<InfoResponse, RunError> {
    let mut attempt = 0;
    loop {
        match client.info().await {
            Ok(info) => return Ok(info),
            Err(e) if e.code().is_some_and(transient) && attempt < options.retries => {
                attempt += 1;
                let wait = backoff(options.backoff, attempt);
                progress.note(&format!(
                    "hemma: {e}; retrying in {:.1} s",
                    wait.as_secs_f64()
                ));
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

impl Run {
    /// Reads the cache entries of the essays `distinct`: the hits and how many were damaged.
    async fn read_cache(
        &self,
        distinct: &[usize],
    ) -> Result<(HashMap<String, CachedRow>, usize), RunError> {
        let Some(cache) = self.cache.clone() else {
            return Ok((HashMap::new(), 0));
        };
        let keys: Vec<String> = distinct.iter().map(|&i| self.keys[i].clone()).collect();
        let read = tokio::task::spawn_blocking(move || {
            let mut hits = HashMap::new();
            let mut damaged = 0;
            for key in keys {
                match cache.get(&key)? {
                    Lookup::Hit(row) => {
                        hits.insert(key, row);
                    }
                    Lookup::Miss => {}
                    Lookup::Damaged => damaged += 1,
                }
            }
            Ok::<_, CacheError>((hits, damaged))
        })
        .await;
        match read {
            Ok(r) => Ok(r?),
            Err(e) => Err(RunError::Cache(CacheError::Io {
                path: self
                    .cache
                    .as_ref()
                    .map(|c| c.dir().to_owned())
                    .unwrap_or_default(),
                source: std::io::Error::other(e),
            })),
        }
    }

    /// Checks one chunk's answer and stores its rows in memory and in the cache; returns how
    /// many essays (duplicates included) it completes.
    pub(crate) async fn store(
        &mut self,
        chunk: &Chunk,
        answer: ExtractChunkResult,
    ) -> Result<u64, RoundError> {
        let (chunk_id, rows) = (chunk.id, &chunk.rows[..]);
        let malformed = |m: String| RoundError::Fatal(ClientError::Malformed(m).into());
        if answer.chunk_id != chunk_id {
            return Err(malformed(format!(
                "answer for chunk {} where chunk {chunk_id} was due",
                answer.chunk_id
            )));
        }
        let resp = match answer.outcome {
            Some(extract_chunk_result::Outcome::Response(r)) => r,
            Some(extract_chunk_result::Outcome::Error(e)) => {
                let code = tonic::Code::from(e.code);
                let err = ClientError::Status {
                    code,
                    message: e.message,
                    correlation_id: "-".into(),
                };
                return Err(classify(err, Some((&self.essays, rows))));
            }
            None => return Err(malformed(format!("chunk {chunk_id}: an empty answer"))),
        };
        let x = Extraction::decode(resp, rows.len()).map_err(|e| RoundError::Fatal(e.into()))?;
        if x.fingerprint != self.fingerprint {
            return Err(RoundError::Changed {
                was: self.fingerprint.clone(),
                now: x.fingerprint,
            });
        }
        let t = &x.timings;
        self.stages.parse_seconds += t.parse_seconds;
        self.stages.embed_seconds += t.embed_seconds;
        self.stages.languagetool_seconds += t.languagetool_seconds;
        self.stages.assembly_seconds += t.assembly_seconds;
        self.stages.total_seconds += t.total_seconds;
        self.stages.strings_embedded += u64::from(t.strings_embedded);
        self.chunks += 1;
        let row_of = |m: &Option<Array2<f32>>, j: usize| -> Vec<f32> {
            m.as_ref().map(|m| m.row(j).to_vec()).unwrap_or_default()
        };
        // `Extraction::decode` checked that every index is a row of this chunk, listed once.
        if let Some(s) = x.limited.iter().find(|s| s.code.is_empty()) {
            return Err(malformed(format!(
                "chunk {chunk_id}: a row status without a code (row {})",
                s.index
            )));
        }
        let mut limits: HashMap<usize, RowLimit> = x
            .limited
            .iter()
            .map(|s| {
                let limit = RowLimit {
                    code: s.code.clone(),
                    message: s.message.clone(),
                };
                (s.index as usize, limit)
            })
            .collect();
        let new: Vec<(String, CachedRow)> = rows
            .iter()
            .enumerate()
            .map(|(j, &i)| {
                let row = CachedRow {
                    embedding: row_of(&x.embeddings, j),
                    handcrafted: row_of(&x.handcrafted, j),
                    limited: limits.remove(&j),
                };
                (self.keys[i].clone(), row)
            })
            .collect();
        if let Some(cache) = self.cache.clone() {
            let entries = new.clone();
            let written = tokio::task::spawn_blocking(move || {
                entries.iter().try_for_each(|(k, row)| cache.put(k, row))
            })
            .await;
            match written {
                Ok(r) => r.map_err(|e| RoundError::Fatal(e.into()))?,
                Err(e) => return Err(malformed(format!("cache writer failed: {e}"))),
            }
        }
        self.rows.extend(new);
        Ok(rows
            .iter()
            .map(|&i| self.copies[&self.keys[i]] as u64)
            .sum())
    }

    /// The matrices in input order.
    #[allow(clippy::type_complexity)]
    fn matrices(&self) -> Result<(Option<Array2<f32>>, Option<Array2<f32>>), RunError> {
        let n = self.essays.len();
        let ids: Vec<String> = self.essays.iter().map(|e| e.id.clone()).collect();
        let rows: Vec<&CachedRow> = self.keys.iter().map(|k| &self.rows[k]).collect();
        let matrix = |pick: fn(&CachedRow) -> &[f32], what: &str| {
            let cols = rows.first().map(|r| pick(r).len()).unwrap_or(0);
            let mut values = Vec::with_capacity(n * cols);
            for (r, id) in rows.iter().zip(&ids) {
                if pick(r).len() != cols {
                    return Err(ClientError::Malformed(format!(
                        "essay `{id}`: {} {what} values where the others have {cols}",
                        pick(r).len()
                    )));
                }
                values.extend_from_slice(pick(r));
            }
            Array2::from_shape_vec((n, cols), values)
                .map_err(|e| ClientError::Malformed(e.to_string()))
        };
        let embeddings = match self.set.has_embeddings() {
            true => Some(matrix(|r| &r.embedding, "embedding")?),
            false => None,
        };
        let handcrafted = match self.set.has_handcrafted() {
            true => Some(matrix(|r| &r.handcrafted, "handcrafted")?),
            false => None,
        };
        Ok((embeddings, handcrafted))
    }
}

/// The stream message for chunk `k` holding the essays `rows`.
pub(crate) fn chunk_request(
    essays: &[Essay],
    k: u64,
    rows: &[usize],
    set: FeatureSet,
) -> ExtractChunk {
    let texts = rows.iter().map(|&i| essays[i].text.clone()).collect();
    let prompts = match set.has_handcrafted() {
        true => rows
            .iter()
            .map(|&i| essays[i].prompt.clone().unwrap_or_default())
            .collect(),
        false => Vec::new(),
    };
    ExtractChunk {
        chunk_id: k,
        ids: rows.iter().map(|&i| essays[i].id.clone()).collect(),
        request: Some(extract_request(texts, prompts, set, false)),
    }
}

/// Sorts a failure into retry or stop; `chunk` names the essays of a refused chunk.
pub(crate) fn classify(err: ClientError, chunk: Option<(&[Essay], &[usize])>) -> RoundError {
    let transient_err = match &err {
        ClientError::Status { code, .. } => transient(*code),
        ClientError::Connect { .. } => true,
        _ => false,
    };
    if transient_err {
        return RoundError::Transient(err.to_string());
    }
    match (err, chunk) {
        (ClientError::Status { code, message, .. }, Some((essays, rows))) if !rows.is_empty() => {
            let id = |i: usize| essays[i].id.clone();
            RoundError::Fatal(RunError::Refused {
                first: id(rows[0]),
                last: id(rows[rows.len() - 1]),
                count: rows.len(),
                code,
                message,
            })
        }
        (err, _) => RoundError::Fatal(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_millis(500);
        assert_eq!(backoff(base, 1), Duration::from_millis(500));
        assert_eq!(backoff(base, 3), Duration::from_secs(2));
        assert_eq!(backoff(base, 40), Duration::from_secs(30));
    }

    #[test]
    fn limited_rows_are_listed_in_input_order_and_duplicates_share_the_status() {
        let essay = |id: &str, text: &str| Essay {
            id: id.into(),
            text: text.into(),
            prompt: Some("p".into()),
        };
        let essays = vec![
            essay("a", "fine"),
            essay("long-1", "huge"),
            essay("b", "fine too"),
            essay("long-2", "huge"),
        ];
        let keys: Vec<String> = essays
            .iter()
            .map(|e| entry_key("fp", "combined", &e.text, "p"))
            .collect();
        let row = |limited: Option<RowLimit>| CachedRow {
            embedding: vec![1.0],
            handcrafted: vec![f32::NAN],
            limited,
        };
        let limit = RowLimit {
            code: "word_too_long".into(),
            message: "a word is over 2000 characters".into(),
        };
        let rows: HashMap<String, CachedRow> = [
            (keys[0].clone(), row(None)),
            (keys[1].clone(), row(Some(limit.clone()))),
            (keys[2].clone(), row(None)),
        ]
        .into_iter()
        .collect();
        let listed = limited_rows(&essays, &keys, &rows);
        let want = |index: usize, id: &str| LimitedRow {
            index,
            id: id.into(),
            code: limit.code.clone(),
            message: limit.message.clone(),
        };
        assert_eq!(listed, vec![want(1, "long-1"), want(3, "long-2")]);
    }

    #[test]
    fn only_transient_codes_are_retried() {
        assert!(transient(tonic::Code::Unavailable));
        assert!(transient(tonic::Code::ResourceExhausted));
        assert!(!transient(tonic::Code::InvalidArgument));
        assert!(!transient(tonic::Code::FailedPrecondition));
    }
}
