//! The ONNX Runtime backend of the embedder.
//!
//! ONNX Runtime is not linked at build time: its shared library is loaded
//! when the backend is first used, from `$ORT_DYLIB_PATH` or from the PyPI
//! `onnxruntime` wheel (`onnxruntime/capi/libonnxruntime.so.*`). The graph is
//! an ONNX export of the encoder with inputs `input_ids`, `attention_mask`
//! (and optionally `token_type_ids`), int64 `[batch, seq]`, and output
//! `last_hidden_state` `[batch, seq, hidden]` (an already pooled
//! `[batch, hidden]` output is accepted too). `scripts/export_onnx.py` writes
//! one from `model.safetensors` into `MODEL_DIR/onnx/model.onnx`, where it is
//! found by default; exports made by other tools with those names work too.
//!
//! Batches are padded to their longest text (the embedder sorts texts by
//! length first), pooled over the attention mask and L2-normalised here, as
//! sentence-transformers does.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;

use crate::error::{Error, Result};

/// Environment variable naming the ONNX Runtime shared library (the one the
/// `ort` crate reads).
pub const RUNTIME_ENV: &str = "ORT_DYLIB_PATH";
/// Environment variable naming an ONNX export of the model (overridden by
/// `--onnx`).
pub const ONNX_ENV: &str = "LANCEFLOW_ONNX_MODEL";

/// How to get the ONNX backend running.
pub fn install_hint() -> String {
    "install ONNX Runtime with `python3 -m pip install onnxruntime` (or set ORT_DYLIB_PATH to \
     libonnxruntime.so) and export the model with `python3 scripts/export_onnx.py` (needs \
     `pip install onnx`; scripts/setup.sh does both), or use --backend native"
        .to_string()
}

/// The ONNX file to run: `explicit`, else `$LANCEFLOW_ONNX_MODEL`, else
/// `model_dir/onnx/model.onnx`, else `model_dir/model.onnx`.
pub fn find_onnx_model(explicit: Option<&Path>, model_dir: &Path) -> Result<PathBuf> {
    let given = explicit.map(Path::to_path_buf).or_else(|| {
        std::env::var_os(ONNX_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    if let Some(path) = given {
        if path.is_file() {
            return Ok(path);
        }
        return Err(Error::NotFound(format!(
            "ONNX model {} does not exist: {}",
            path.display(),
            install_hint()
        )));
    }
    for candidate in [
        model_dir.join("onnx/model.onnx"),
        model_dir.join("model.onnx"),
    ] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(Error::NotFound(format!(
        "no ONNX export of the model in {} (looked for onnx/model.onnx and model.onnx): {}",
        model_dir.display(),
        install_hint()
    )))
}

/// The ONNX Runtime shared library: `$ORT_DYLIB_PATH`, else the one in the
/// `onnxruntime` Python package.
pub fn find_runtime() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(RUNTIME_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(Error::NotFound(format!(
            "{RUNTIME_ENV}={} does not exist: {}",
            path.display(),
            install_hint()
        )));
    }
    for dir in python_package_dirs() {
        let Ok(entries) = std::fs::read_dir(dir.join("capi")) else {
            continue;
        };
        let mut libs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libonnxruntime.so"))
            })
            .collect();
        // `libonnxruntime.so.1.31.1` over a bare `libonnxruntime.so` link.
        libs.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        if let Some(lib) = libs.into_iter().next() {
            return Ok(lib);
        }
    }
    Err(Error::NotFound(format!(
        "ONNX Runtime library not found: {}",
        install_hint()
    )))
}

/// Directories of the `onnxruntime` Python package: ask the Python on PATH.
fn python_package_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for python in ["python3", "python"] {
        let out = std::process::Command::new(python)
            .args([
                "-c",
                "import importlib.util as u, os; s = u.find_spec('onnxruntime'); \
                 print(os.path.dirname(s.origin) if s and s.origin else '')",
            ])
            .stderr(std::process::Stdio::null())
            .output();
        if let Ok(out) = out {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !path.is_empty() {
                dirs.push(PathBuf::from(path));
                break;
            }
        }
    }
    dirs
}

/// The process-wide ONNX Runtime environment (the library loads once).
fn environment(runtime: &Path) -> Result<ort::environment::Environment> {
    static ENV: OnceLock<std::result::Result<ort::environment::Environment, String>> =
        OnceLock::new();
    ENV.get_or_init(|| {
        ort::init_from(runtime)
            .map_err(|e| format!("cannot load {}: {e}", runtime.display()))?
            .with_name("lanceflow")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
    })
    .clone()
    .map_err(|e| Error::NotFound(format!("{e}; {}", install_hint())))
}

/// ONNX Runtime sessions of the encoder: one single-threaded session per
/// compute thread, so that batches run side by side without intra-operator
/// synchronisation (two one-thread sessions embed short texts ~18% faster
/// than one two-thread session on two cores).
pub(crate) struct OrtEncoder {
    sessions: Vec<Mutex<Session>>,
    inputs: Vec<String>,
    output: String,
    hidden: usize,
    path: PathBuf,
}

impl OrtEncoder {
    /// Load `onnx` with the runtime library `runtime`, one session per
    /// compute thread (`threads`); `hidden` is the embedding dimension the
    /// model must produce.
    pub(crate) fn load(onnx: &Path, runtime: &Path, threads: usize, hidden: usize) -> Result<Self> {
        let env = environment(runtime)?;
        let bad = |what: String| {
            Error::InvalidInput(format!(
                "ONNX model {} cannot be used: {what}; {}",
                onnx.display(),
                install_hint()
            ))
        };
        let open = || {
            Session::builder(&env)
                .and_then(|b| {
                    b.with_optimization_level(GraphOptimizationLevel::All)
                        .map_err(Into::into)
                })
                .and_then(|b| b.with_intra_threads(1).map_err(Into::into))
                .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
                .and_then(|mut b| b.commit_from_file(onnx))
                .map_err(|e| bad(e.to_string()))
        };
        let session = open()?;
        let names: Vec<String> = session
            .inputs()
            .iter()
            .map(|i| i.name().to_string())
            .collect();
        for required in ["input_ids", "attention_mask"] {
            if !names.iter().any(|n| n == required) {
                return Err(bad(format!(
                    "it has no input '{required}' (inputs: {})",
                    names.join(", ")
                )));
            }
        }
        if let Some(other) = names.iter().find(|n| {
            !matches!(
                n.as_str(),
                "input_ids" | "attention_mask" | "token_type_ids"
            )
        }) {
            return Err(bad(format!(
                "unexpected input '{other}' (expected input_ids, attention_mask, token_type_ids)"
            )));
        }
        let outputs: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let output = outputs
            .iter()
            .find(|n| *n == "last_hidden_state")
            .or_else(|| outputs.first())
            .cloned()
            .ok_or_else(|| bad("it has no outputs".into()))?;
        let mut sessions = vec![Mutex::new(session)];
        for _ in 1..threads.max(1) {
            sessions.push(Mutex::new(open()?));
        }
        tracing::debug!(path = %onnx.display(), threads, "ONNX Runtime sessions ready");
        Ok(Self {
            sessions,
            inputs: names,
            output,
            hidden,
            path: onnx.to_path_buf(),
        })
    }

    /// The ONNX file in use.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Sessions, hence batches that can run at once.
    pub(crate) fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// A free session, starting from the calling pool thread's own; that one
    /// if all are busy.
    fn session(&self) -> Result<MutexGuard<'_, Session>> {
        let n = self.sessions.len();
        let own = rayon::current_thread_index().unwrap_or(0) % n;
        for k in 0..n {
            if let Ok(guard) = self.sessions[(own + k) % n].try_lock() {
                return Ok(guard);
            }
        }
        self.sessions[own]
            .lock()
            .map_err(|_| Error::Internal("ONNX session poisoned".into()))
    }

    /// Embed one batch of token id sequences: `batch.len() × hidden` unit
    /// vectors, row-major.
    pub(crate) fn embed_batch(&self, batch: &[&[u32]]) -> Result<Vec<f32>> {
        let b = batch.len();
        let s = batch.iter().map(|x| x.len()).max().unwrap_or(0).max(1);
        let h = self.hidden;
        let mut ids = vec![0i64; b * s];
        let mut mask = vec![0i64; b * s];
        for (r, seq) in batch.iter().enumerate() {
            for (c, &id) in seq.iter().enumerate() {
                ids[r * s + c] = i64::from(id);
                mask[r * s + c] = 1;
            }
        }
        let shape = [b as i64, s as i64];
        let fail = |e: ort::Error| Error::Internal(format!("ONNX Runtime forward pass: {e}"));
        let mut feeds: Vec<(String, Tensor<i64>)> = Vec::with_capacity(self.inputs.len());
        for name in &self.inputs {
            let data = match name.as_str() {
                "input_ids" => ids.clone(),
                "attention_mask" => mask.clone(),
                _ => vec![0i64; b * s],
            };
            feeds.push((
                name.clone(),
                Tensor::from_array((shape, data)).map_err(fail)?,
            ));
        }
        let mut session = self.session()?;
        let outputs = session.run(feeds).map_err(fail)?;
        let value = outputs
            .get(&self.output)
            .ok_or_else(|| Error::Internal(format!("ONNX output '{}' missing", self.output)))?;
        let (out_shape, data) = value.try_extract_tensor::<f32>().map_err(fail)?;
        let dims: Vec<i64> = out_shape.iter().copied().collect();
        let mismatch = || {
            Error::InvalidInput(format!(
                "ONNX model {} returns shape {dims:?} for {b} texts of {s} tokens; expected \
                 [{b}, {s}, {h}] (last_hidden_state) or [{b}, {h}]; {}",
                self.path.display(),
                install_hint()
            ))
        };
        let mut pooled = vec![0f32; b * h];
        match dims.as_slice() {
            [db, ds, dh] if *db == b as i64 && *ds == s as i64 && *dh == h as i64 => {
                for (r, seq) in batch.iter().enumerate() {
                    let n = seq.len().max(1);
                    let out = &mut pooled[r * h..(r + 1) * h];
                    for t in 0..seq.len() {
                        let row = &data[(r * s + t) * h..(r * s + t + 1) * h];
                        for (o, x) in out.iter_mut().zip(row) {
                            *o += x;
                        }
                    }
                    let inv = 1.0 / n as f32;
                    out.iter_mut().for_each(|o| *o *= inv);
                }
            }
            [db, dh] if *db == b as i64 && *dh == h as i64 => pooled.copy_from_slice(data),
            _ => return Err(mismatch()),
        }
        for row in pooled.chunks_mut(h) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            row.iter_mut().for_each(|x| *x /= norm);
        }
        Ok(pooled)
    }
}
