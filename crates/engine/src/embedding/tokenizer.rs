//! The model's WordPiece tokenizer (`tokenizer.json`) with
//! sentence-transformers' settings: truncated at the model's sequence length
//! and never padded (the packaged file pads and truncates to a fixed 128;
//! batches here are padded to their longest text by the encoder, or packed).

use std::path::Path;

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::embedding::models::model_error;
use crate::error::{Error, Result};

/// Texts to token ids.
pub(crate) struct WordPiece(Tokenizer);

impl WordPiece {
    /// `dir/tokenizer.json`, truncating at `max_tokens` (with `[CLS]` and
    /// `[SEP]`), without padding.
    pub(crate) fn load(dir: &Path, max_tokens: usize) -> Result<Self> {
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| model_error(dir, format!("tokenizer.json: {e}")))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| model_error(dir, format!("tokenizer.json: {e}")))?;
        tokenizer.with_padding(None);
        Ok(Self(tokenizer))
    }

    /// Token ids of each text (truncated, with `[CLS]`/`[SEP]`).
    pub(crate) fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let encodings = self
            .0
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::Internal(format!("tokenizer: {e}")))?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }
}
