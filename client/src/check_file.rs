//! Checks a file of essays with LanguageTool through the server and writes error counts as CSV:
//! `id, grammar, spelling, punctuation`, then one column per LanguageTool category seen.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use crate::input::Essay;
use crate::v1::GrammarCounts;
use crate::{Client, ClientError};

/// Why checking a file failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckFileError {
    /// A request failed; `first..end` are the input rows it carried.
    #[error("essays {first}..{end} of the input: {source}")]
    Request {
        /// First row of the failed request.
        first: usize,
        /// One past its last row.
        end: usize,
        /// The error.
        source: ClientError,
    },
    /// The server's fingerprint changed mid-run.
    #[error("the server's fingerprint changed during the run (was {was}, now {now}); run again")]
    FingerprintChanged {
        /// Fingerprint of the first answer.
        was: String,
        /// Fingerprint of a later one.
        now: String,
    },
    /// Writing the CSV failed.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// How to send the essays.
#[derive(Debug, Clone, Copy)]
pub struct CheckFileOptions {
    /// Essays per request.
    pub batch_size: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct CheckFileReport {
    /// Essays checked.
    pub essays: usize,
    /// Of those, answered from the server's cache.
    pub cached: usize,
    /// Category columns written, in order.
    pub categories: Vec<String>,
    /// LanguageTool version that produced the counts.
    pub languagetool_version: String,
    /// Server fingerprint.
    pub fingerprint: String,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Checks `essays` and writes `out` (only once every request has succeeded).
pub async fn check_file(
    client: &Client,
    essays: &[Essay],
    out: &Path,
    options: CheckFileOptions,
) -> Result<CheckFileReport, CheckFileError> {
    let bar = if options.progress {
        ProgressBar::new(essays.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} essays {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    let started = Instant::now();
    let batch_size = options.batch_size.max(1);
    let mut answers = futures::stream::iter(essays.chunks(batch_size).enumerate())
        .map(|(k, chunk)| async move {
            let texts = chunk.iter().map(|e| e.text.clone()).collect();
            let first = k * batch_size;
            client
                .check_grammar(texts, None)
                .await
                .map_err(|source| CheckFileError::Request {
                    first,
                    end: first + chunk.len(),
                    source,
                })
        })
        .buffered(options.concurrency.max(1));
    let mut counts: Vec<GrammarCounts> = Vec::with_capacity(essays.len());
    let (mut fingerprint, mut version, mut cached) = (String::new(), String::new(), 0usize);
    while let Some(answer) = answers.next().await {
        let answer = answer?;
        if fingerprint.is_empty() {
            fingerprint = answer.fingerprint.clone();
            version = answer.languagetool_version.clone();
        } else if fingerprint != answer.fingerprint {
            return Err(CheckFileError::FingerprintChanged {
                was: fingerprint,
                now: answer.fingerprint,
            });
        }
        bar.inc(answer.results.len() as u64);
        for r in answer.results {
            cached += usize::from(r.cached);
            counts.push(r.counts.unwrap_or_default());
        }
    }
    bar.finish_and_clear();
    let categories: Vec<String> = counts
        .iter()
        .flat_map(|c| c.by_category.keys().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    write_csv(out, essays, &counts, &categories)?;
    Ok(CheckFileReport {
        essays: essays.len(),
        cached,
        categories,
        languagetool_version: version,
        fingerprint,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Writes through a temporary file and a rename, so a failed run leaves no half-written CSV.
fn write_csv(
    out: &Path,
    essays: &[Essay],
    counts: &[GrammarCounts],
    categories: &[String],
) -> Result<(), CheckFileError> {
    let err = |path: &Path, e: &dyn std::fmt::Display| CheckFileError::Write {
        path: path.to_owned(),
        message: e.to_string(),
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(dir, &e))?;
    }
    let tmp = out.with_extension("csv.partial");
    let mut w = csv::Writer::from_path(&tmp).map_err(|e| err(&tmp, &e))?;
    let mut header = vec!["id", "grammar", "spelling", "punctuation"];
    header.extend(categories.iter().map(String::as_str));
    w.write_record(&header).map_err(|e| err(&tmp, &e))?;
    for (essay, c) in essays.iter().zip(counts) {
        let mut row = vec![
            essay.id.clone(),
            c.grammar.to_string(),
            c.spelling.to_string(),
            c.punctuation.to_string(),
        ];
        row.extend(
            categories
                .iter()
                .map(|k| c.by_category.get(k).copied().unwrap_or(0).to_string()),
        );
        w.write_record(&row).map_err(|e| err(&tmp, &e))?;
    }
    w.flush().map_err(|e| err(&tmp, &e))?;
    drop(w);
    std::fs::rename(&tmp, out).map_err(|e| err(out, &e))
}
