//! Checks a file of essays with LanguageTool through the server and writes error counts as CSV:
//! `id, grammar, spelling, punctuation`, then one column per LanguageTool category seen.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use futures::StreamExt;

use crate::file_run::{FileRunError, SameServer, progress_bar, write_atomically};
use crate::input::Essay;
use hemma_client::Client;
use hemma_client::v1::GrammarCounts;

/// Why checking a file failed.
pub type CheckFileError = FileRunError;

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
    let bar = progress_bar(essays.len(), options.progress);
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
    let (mut server, mut version, mut cached) = (SameServer::default(), String::new(), 0usize);
    while let Some(answer) = answers.next().await {
        let answer = answer?;
        server.check(&answer.fingerprint)?;
        version = answer.languagetool_version;
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
        fingerprint: server.fingerprint(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Writes the CSV through a temporary file and a rename.
fn write_csv(
    out: &Path,
    essays: &[Essay],
    counts: &[GrammarCounts],
    categories: &[String],
) -> Result<(), CheckFileError> {
    write_atomically(out, |file| {
        let err = |e: &dyn std::fmt::Display| FileRunError::write(out, e);
        let mut w = csv::Writer::from_writer(file);
        let mut header = vec!["id", "grammar", "spelling", "punctuation"];
        header.extend(categories.iter().map(String::as_str));
        w.write_record(&header).map_err(|e| err(&e))?;
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
            w.write_record(&row).map_err(|e| err(&e))?;
        }
        w.flush().map_err(|e| err(&e))
    })
}
