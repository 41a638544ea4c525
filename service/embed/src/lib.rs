//! Text embeddings: tokenizer, batching queue, engines and pooling.
//!
//! Data flows one way: [`tokenize`] turns texts into ids on arrival, [`queue`] holds them and
//! forms batches under a token budget ([`plan`]), one engine thread runs each batch through an
//! [`Engine`] (`ort` or `candle`), and [`pooling`] takes the [CLS] row of each sequence.
#![deny(missing_docs)]

pub mod factory;
pub mod metrics;
pub mod model;
pub mod plan;
pub mod pooling;
pub mod queue;
pub mod settings;
pub mod shapes;
pub mod tokenize;

#[cfg(feature = "candle")]
pub mod candle;
#[cfg(feature = "fetch")]
pub mod fetch;
#[cfg(feature = "ort")]
pub mod ort;

use ndarray::Array2;

/// A padded batch of token ids, ready for an engine.
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// [rows, longest] ids, padded with the pad id 0.
    pub ids: Array2<i64>,
    /// [rows, longest] 1 for real tokens, 0 for padding.
    pub mask: Array2<i64>,
}

impl TokenBatch {
    /// Pads `rows` to their longest and builds the attention mask.
    pub fn pad(rows: &[&[u32]]) -> TokenBatch {
        let longest = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        Self::pad_to(rows, (rows.len(), longest))
    }

    /// Pads `rows` into a `shape` = (rows, length) batch; extra rows are all padding (mask 0).
    ///
    /// `shape` must hold every row: at least `rows.len()` rows and the longest row's length.
    pub fn pad_to(rows: &[&[u32]], shape: (usize, usize)) -> TokenBatch {
        debug_assert!(shape.0 >= rows.len() && rows.iter().all(|r| r.len() <= shape.1));
        let mut ids = Array2::<i64>::zeros(shape);
        let mut mask = Array2::<i64>::zeros(shape);
        for (i, row) in rows.iter().enumerate() {
            for (j, id) in row.iter().enumerate() {
                ids[[i, j]] = i64::from(*id);
                mask[[i, j]] = 1;
            }
        }
        TokenBatch { ids, mask }
    }

    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.ids.nrows()
    }

    /// Padded tokens (rows x longest): what the batch costs the engine.
    pub fn padded_tokens(&self) -> usize {
        self.ids.len()
    }
}

/// What an engine reports about itself for `Info` and the fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// `ort` or `candle`.
    pub engine: String,
    /// Execution provider (`cpu`, `cuda`, `migraphx`, `rocm`).
    pub provider: String,
    /// `fp32` or `fp16`.
    pub precision: String,
    /// Width of one embedding.
    pub dim: usize,
    /// sha256 of the weight file loaded.
    pub weights_sha256: String,
}

/// Why an engine failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The engine could not be created (library, provider, weights).
    #[error("{0}")]
    Load(String),
    /// Inference on a batch failed.
    #[error("inference failed: {0}")]
    Run(String),
    /// The engine panicked on a batch; that batch failed, the engine goes on.
    #[error("the engine panicked on this batch: {0}")]
    Panicked(String),
    /// The engine cannot run any more batches (e.g. the device was lost): the engine thread
    /// stops and the server reports itself failed so that it is restarted.
    #[error("the engine is lost and stops: {0}")]
    Lost(String),
}

/// A loaded model that turns token batches into [CLS] embeddings; owned by one thread.
pub trait Engine: Send {
    /// Describes the engine for `Info` and the fingerprint.
    fn info(&self) -> EngineInfo;

    /// Returns the [CLS] embedding of each row: [rows, dim], f32.
    fn embed(&mut self, batch: &TokenBatch) -> Result<Array2<f32>, EngineError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_right_pads_with_zero_and_masks() {
        let b = TokenBatch::pad(&[&[1, 5, 2], &[1, 2]]);
        assert_eq!(b.ids.row(1).to_vec(), vec![1, 2, 0]);
        assert_eq!(b.mask.row(1).to_vec(), vec![1, 1, 0]);
        assert_eq!(b.padded_tokens(), 6);
    }

    #[test]
    fn pad_to_adds_masked_rows_and_columns() {
        let b = TokenBatch::pad_to(&[&[1, 2]], (2, 4));
        assert_eq!(b.ids.row(0).to_vec(), vec![1, 2, 0, 0]);
        assert_eq!(b.mask.row(1).to_vec(), vec![0, 0, 0, 0]);
    }
}
