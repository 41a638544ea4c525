//! The model's tokenizer (`tokenizer.json`), truncating to `max_length` with [CLS]/[SEP] kept.

use std::path::Path;

use tokenizers::{
    PaddingParams, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

/// Why tokenisation failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    /// tokenizer.json could not be loaded or configured.
    #[error("cannot load tokenizer {path}: {message}")]
    Load {
        /// The file.
        path: String,
        /// What the tokenizers crate said.
        message: String,
    },
    /// A text could not be encoded.
    #[error("cannot tokenise text {index}: {message}")]
    Encode {
        /// Index of the text in its request.
        index: usize,
        /// What the tokenizers crate said.
        message: String,
    },
}

/// One tokenised text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Token ids, special tokens included, at most `max_length`.
    pub ids: Vec<u32>,
    /// Whether the text was cut to fit `max_length`.
    pub truncated: bool,
}

/// A `tokenizers` tokenizer set up for embedding: truncation on, padding off (the batcher pads).
#[derive(Debug)]
pub struct TextTokenizer {
    inner: Tokenizer,
    max_length: usize,
}

impl TextTokenizer {
    /// Loads `tokenizer.json` and sets truncation to `max_length` tokens.
    pub fn from_file(path: &Path, max_length: usize) -> Result<Self, TokenizeError> {
        let load_err = |message: String| TokenizeError::Load {
            path: path.display().to_string(),
            message,
        };
        let mut inner = Tokenizer::from_file(path).map_err(|e| load_err(e.to_string()))?;
        inner
            .with_truncation(Some(TruncationParams {
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| load_err(e.to_string()))?;
        inner.with_padding(None::<PaddingParams>);
        Ok(TextTokenizer { inner, max_length })
    }

    /// Longest output, special tokens included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Encodes one text; `index` names it in errors.
    pub fn encode(&self, index: usize, text: &str) -> Result<Encoded, TokenizeError> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| TokenizeError::Encode {
                index,
                message: e.to_string(),
            })?;
        Ok(Encoded {
            ids: enc.get_ids().to_vec(),
            truncated: !enc.get_overflowing().is_empty(),
        })
    }
}
