//! Embeds a file of essays into a `.npy` matrix plus an ids file, in input order.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;
use ndarray::Array2;
use ndarray_npy::WriteNpyExt;

use crate::file_run::{FileRunError, SameServer, progress_bar, write_atomically};
use crate::input::Essay;
use hemma_client::Client;

/// Why embedding a file failed.
pub type EmbedFileError = FileRunError;

/// How to split and send the essays.
#[derive(Debug, Clone, Copy)]
pub struct EmbedFileOptions {
    /// Essays per request.
    pub batch_size: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Ask for float16 on the wire.
    pub f16: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct EmbedFileReport {
    /// Essays embedded.
    pub essays: usize,
    /// Embedding width.
    pub dim: usize,
    /// Essays cut to the server's max_length.
    pub truncated: usize,
    /// Server fingerprint of every row.
    pub fingerprint: String,
    /// Wall time of the run in seconds.
    pub seconds: f64,
    /// Where the ids went.
    pub ids_path: PathBuf,
}

/// The ids file written beside `out` (`emb.npy` -> `emb.ids.txt`): one id per line, as
/// `hemma extract`'s `ids.txt`.
pub fn ids_path(out: &Path) -> PathBuf {
    out.with_extension("ids.txt")
}

/// The meta file written beside `out` (`emb.npy` -> `emb.meta.json`), written last, as
/// `hemma extract`'s `meta.json`.
pub fn meta_path(out: &Path) -> PathBuf {
    out.with_extension("meta.json")
}

/// Embeds `essays` and writes `out` (float32 [essays, dim]), `<stem>.ids.txt` (one id per line)
/// and `<stem>.meta.json` (fingerprint, counts), only once every request has succeeded; the meta
/// file is written last, so its presence means the other two are complete.
pub async fn embed_file(
    client: &Client,
    essays: &[Essay],
    out: &Path,
    options: EmbedFileOptions,
) -> Result<EmbedFileReport, EmbedFileError> {
    let n = essays.len();
    let bar = progress_bar(n, options.progress);
    let started = Instant::now();
    let batch_size = options.batch_size.max(1);
    let mut results = futures::stream::iter(essays.chunks(batch_size).enumerate())
        .map(|(k, chunk)| async move {
            let texts = chunk.iter().map(|e| e.text.clone()).collect();
            let first = k * batch_size;
            client
                .embed(texts, options.f16)
                .await
                .map_err(|source| EmbedFileError::Request {
                    first,
                    end: first + chunk.len(),
                    source,
                })
        })
        .buffered(options.concurrency.max(1));
    let mut rows: Vec<f32> = Vec::with_capacity(n * 768);
    let mut dim = 0;
    let mut server = SameServer::default();
    let mut truncated = 0usize;
    while let Some(res) = results.next().await {
        let emb = res?;
        server.check(&emb.fingerprint)?;
        dim = emb.vectors.ncols();
        truncated += emb.truncated.iter().filter(|t| **t).count();
        bar.inc(emb.vectors.nrows() as u64);
        rows.extend(emb.vectors.iter());
    }
    bar.finish_and_clear();
    let fingerprint = server.fingerprint();
    let matrix =
        Array2::from_shape_vec((n, dim), rows).map_err(|e| FileRunError::write(out, &e))?;
    let ids: Vec<&str> = essays.iter().map(|e| e.id.as_str()).collect();
    write_outputs(out, &matrix, &ids, &fingerprint)?;
    Ok(EmbedFileReport {
        essays: n,
        dim,
        truncated,
        fingerprint,
        seconds: started.elapsed().as_secs_f64(),
        ids_path: ids_path(out),
    })
}

/// Writes the matrix through a temporary file and a rename, then the ids file.
fn write_outputs(
    out: &Path,
    matrix: &Array2<f32>,
    ids: &[&str],
    fingerprint: &str,
) -> Result<(), EmbedFileError> {
    let _ = std::fs::remove_file(meta_path(out));
    write_atomically(out, |w| {
        matrix
            .as_standard_layout()
            .write_npy(w)
            .map_err(|e| FileRunError::write(out, &e))
    })?;
    let ids_file = ids_path(out);
    write_atomically(&ids_file, |w| {
        for id in ids {
            writeln!(w, "{id}").map_err(|e| FileRunError::write(&ids_file, &e))?;
        }
        Ok(())
    })?;
    let meta = serde_json::json!({
        "fingerprint": fingerprint,
        "essays": ids.len(),
        "embedding_dim": matrix.ncols(),
        "matrix": out.file_name().map(|n| n.to_string_lossy().into_owned()),
        "ids": ids_file.file_name().map(|n| n.to_string_lossy().into_owned()),
    });
    let meta_file = meta_path(out);
    write_atomically(&meta_file, |w| {
        serde_json::to_writer_pretty(&mut *w, &meta)
            .map_err(|e| FileRunError::write(&meta_file, &e))?;
        writeln!(w).map_err(|e| FileRunError::write(&meta_file, &e))
    })
}
