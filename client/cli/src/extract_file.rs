//! `hemma extract`: a file of essays in, the feature matrices out. The run itself (cache, stream,
//! retries, resume) is [`hemma_runs::extract`]; this module draws its progress and writes its rows
//! into the output folder (see [`crate::outputs`]) with `meta.json` last.
//!
//! Essays whose text exceeded the server's analyser get a row like any other (NaN handcrafted
//! features); `meta.json` lists them under `limited_rows` (index, id, code, message) and counts
//! them in `limited`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hemma_client::Client;
use hemma_proto::v1::FeatureSet;
use hemma_runs::{ExtractReport, LimitedRow, RunError, RunOptions, RunOutput};

use crate::file_run::{Bar, progress_bar};
use crate::input::Essay;
use crate::outputs::{FeatureTable, OutputError, OutputFormat, write_outputs};

/// How to run one extraction of a file.
#[derive(Debug, Clone)]
pub struct ExtractFileOptions {
    /// Which matrices to compute.
    pub feature_set: FeatureSet,
    /// Npy files or one parquet table.
    pub format: OutputFormat,
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
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// What a run did, and the files it wrote.
#[derive(Debug, Clone)]
pub struct ExtractFileReport {
    /// The run's counts, fingerprint and timings.
    pub run: ExtractReport,
    /// The essays whose rows are limited (NaN handcrafted features), in input order.
    pub limited: Vec<LimitedRow>,
    /// Files written, `meta.json` last.
    pub files: Vec<PathBuf>,
}

/// Why `hemma extract` failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtractFileError {
    /// The run failed (nothing is written; finished chunks stay cached).
    #[error(transparent)]
    Run(#[from] RunError),
    /// The outputs could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The writer task failed.
    #[error("output writer failed: {0}")]
    Writer(String),
}

/// Extracts the features of `essays` on `servers` (one or more) and writes them into `out`.
pub async fn extract_file(
    servers: &[Client],
    essays: Vec<Essay>,
    out: &Path,
    options: &ExtractFileOptions,
) -> Result<ExtractFileReport, ExtractFileError> {
    let started = Instant::now();
    let run_options = RunOptions {
        feature_set: options.feature_set,
        chunk_size: options.chunk_size,
        concurrency: options.concurrency,
        retries: options.retries,
        backoff: options.backoff,
        cache: options.cache.clone(),
    };
    let bar = Bar(progress_bar(essays.len(), options.progress));
    let output = match hemma_runs::extract(servers, essays, &run_options, &bar).await {
        Ok(o) => o,
        Err(e) => {
            bar.0.abandon();
            return Err(e.into());
        }
    };
    bar.0.finish_and_clear();
    let meta = meta_json(&output, options, started);
    let dir = out.to_owned();
    let format = options.format;
    let report = output.report.clone();
    let limited = output.limited.clone();
    let files = tokio::task::spawn_blocking(move || {
        let ids: Vec<String> = output.essays.iter().map(|e| e.id.clone()).collect();
        let table = FeatureTable {
            ids: &ids,
            embeddings: output.embeddings.as_ref(),
            embedding_names: &output.info.embedding_feature_names,
            handcrafted: output.handcrafted.as_ref(),
            handcrafted_names: &output.info.handcrafted_feature_names,
        };
        write_outputs(&dir, &table, format, &meta)
    })
    .await
    .map_err(|e| ExtractFileError::Writer(e.to_string()))??;
    Ok(ExtractFileReport {
        run: report,
        limited,
        files,
    })
}

/// Most limited essays [`limited_lines`] names one by one on stderr.
pub const LIMITED_LINES: usize = 20;
/// Most characters of a server message one stderr line quotes.
const MESSAGE_CHARS: usize = 300;

/// The stderr lines about limited essays: a heading naming `meta` (where all are listed), then
/// one line per essay (`id: code: message`), at most `cap`, then `... and N more`. Control
/// characters from the input or the server are escaped, so they cannot drive the terminal.
pub fn limited_lines(
    limited: &[LimitedRow],
    essays: usize,
    meta: &Path,
    cap: usize,
) -> Vec<String> {
    if limited.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![format!(
        "hemma: {} of {essays} essays exceed what the server's analyser takes: their handcrafted features are NaN (embeddings as usual); all are listed in {}:",
        limited.len(),
        meta.display()
    )];
    for row in limited.iter().take(cap) {
        let mut message: String = row.message.chars().take(MESSAGE_CHARS).collect();
        if row.message.chars().nth(MESSAGE_CHARS).is_some() {
            message.push_str("...");
        }
        lines.push(format!(
            "  {}: {}: {}",
            printable(&row.id),
            printable(&row.code),
            printable(&message)
        ));
    }
    if limited.len() > cap {
        lines.push(format!("  ... and {} more", limited.len() - cap));
    }
    lines
}

/// `text` with control characters escaped (`\n`, `\u{1b}`).
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// `meta.json`: fingerprint, schema, feature names, server, counts and timings of the run.
fn meta_json(
    output: &RunOutput,
    options: &ExtractFileOptions,
    started: Instant,
) -> serde_json::Value {
    let info = &output.info;
    let report = &output.report;
    let model = info.model.clone().unwrap_or_default();
    serde_json::json!({
        "fingerprint": report.fingerprint,
        "schema_version": info.schema_version,
        "feature_set": options.feature_set.name(),
        "format": match options.format { OutputFormat::Npy => "npy", OutputFormat::Parquet => "parquet" },
        "essays": report.essays,
        "distinct": report.distinct,
        "cache_hits": report.cache_hits,
        "cache_damaged": report.cache_damaged,
        "fetched": report.fetched,
        "chunks": report.chunks,
        "retries": report.retries,
        "limited": report.limited,
        "limited_rows": output.limited,
        "embedding_dim": output.embeddings.as_ref().map(|m| m.ncols()),
        "embedding_feature_names": output.embeddings.as_ref().map(|_| &info.embedding_feature_names),
        "handcrafted_feature_names": output.handcrafted.as_ref().map(|_| &info.handcrafted_feature_names),
        "server": {
            "server_version": info.server_version,
            "git_sha": info.git_sha,
            "model_id": model.model_id,
            "model_sha256": model.model_sha256,
            "engine": model.engine,
            "execution_provider": model.execution_provider,
            "precision": model.precision,
            "max_length": model.max_length,
            "languagetool_version": info.languagetool_version,
            "nlp_sha256": info.nlp_sha256,
        },
        "timings": {
            "wall_seconds": started.elapsed().as_secs_f64(),
            "server_stage_seconds": report.stages,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(index: usize, id: &str) -> LimitedRow {
        LimitedRow {
            index,
            id: id.into(),
            code: "word_too_long".into(),
            message: "a word of 5000 characters; the analyser takes 2000".into(),
        }
    }

    #[test]
    fn no_limited_essay_prints_nothing() {
        assert!(limited_lines(&[], 10, Path::new("out/meta.json"), 20).is_empty());
    }

    #[test]
    fn limited_essays_are_listed_up_to_the_cap_then_counted() {
        let rows: Vec<LimitedRow> = (0..23).map(|i| row(i, &format!("e{i}"))).collect();
        let lines = limited_lines(&rows, 100, Path::new("out/meta.json"), 20);
        assert_eq!(lines.len(), 1 + 20 + 1);
        assert!(
            lines[0].contains("23 of 100 essays") && lines[0].contains("out/meta.json"),
            "{}",
            lines[0]
        );
        assert_eq!(
            lines[1],
            "  e0: word_too_long: a word of 5000 characters; the analyser takes 2000"
        );
        assert_eq!(lines[21], "  ... and 3 more");
        let two = limited_lines(&rows[..2], 2, Path::new("m.json"), 20);
        assert_eq!(two.len(), 3, "{two:?}");
    }

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        let mut r = row(0, "id\u{1b}[2J");
        r.message = format!("\u{7}{}\n", "x".repeat(400));
        let lines = limited_lines(&[r], 1, Path::new("m.json"), 20);
        assert!(!lines[1].chars().any(char::is_control), "{:?}", lines[1]);
        assert!(lines[1].starts_with("  id\\u{1b}[2J: "), "{}", lines[1]);
        assert!(
            lines[1].contains(": word_too_long: \\u{7}xxx"),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].ends_with("x..."),
            "a long message is cut: {}",
            lines[1]
        );
    }
}
