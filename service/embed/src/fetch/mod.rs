//! `hemma-offload models fetch`: a model folder the server loads, from the Hugging Face Hub (or
//! its local cache, or a plain checkpoint folder): `config.json`, `tokenizer.json` converted from
//! `spm.model` in Rust, `model.safetensors` (copied, or converted from `pytorch_model.bin` with
//! candle), and `manifest.json` with every file's sha256. That folder serves with the candle
//! engine; ONNX Runtime also needs `model.onnx`, which only the Python export
//! (`models/export_deberta.py --source <this folder>`) can produce.

pub mod spm_tokenizer;

use std::path::{Path, PathBuf};

use hf_hub::{Repo, RepoType};
use serde_json::json;

use crate::model::sha256_file;

/// Where the checkpoint comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A Hugging Face model id (`microsoft/deberta-v3-base`) at a revision; `offline` reads the
    /// local Hugging Face cache only.
    Hub {
        /// Model id.
        repo_id: String,
        /// Branch, tag or commit.
        revision: String,
        /// Cache root (default: `$HF_HOME/hub`, else `~/.cache/huggingface/hub`).
        cache: Option<PathBuf>,
        /// Never touch the network.
        offline: bool,
    },
    /// A folder holding `config.json`, `spm.model` and the weights.
    Folder(PathBuf),
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A file is not in the source.
    #[error("{file}: {why}")]
    Missing {
        /// The file.
        file: String,
        /// Where it was looked for.
        why: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `config.json` lacks what the manifest needs.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The tokenizer conversion failed.
    #[error("spm.model: {0}")]
    Spm(#[from] spm_tokenizer::SpmError),
    /// Converting PyTorch weights failed.
    #[error("pytorch_model.bin -> model.safetensors: {0}")]
    Weights(String),
    /// Hashing a written file failed.
    #[error(transparent)]
    Hash(#[from] crate::model::ModelDirError),
}

/// What a fetch wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FetchReport {
    /// The model folder.
    pub out: PathBuf,
    /// Model id written to the manifest.
    pub model_id: String,
    /// Embedding width.
    pub dim: usize,
    /// Files written with their sha256.
    pub files: std::collections::BTreeMap<String, String>,
    /// Which weight file the checkpoint had.
    pub weights_from: String,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Resolves one file of the source to a local path (downloading it unless offline).
fn resolve(source: &Source, file: &str) -> Result<PathBuf, FetchError> {
    let missing = |why: String| FetchError::Missing {
        file: file.to_owned(),
        why,
    };
    match source {
        Source::Folder(dir) => {
            let p = dir.join(file);
            match p.exists() {
                true => Ok(p),
                false => Err(missing(format!("not in {}", dir.display()))),
            }
        }
        Source::Hub {
            repo_id,
            revision,
            cache,
            offline,
        } => {
            let repo = Repo::with_revision(repo_id.clone(), RepoType::Model, revision.clone());
            let cache_dir = cache
                .clone()
                .unwrap_or_else(|| hf_hub::Cache::from_env().path().clone());
            if *offline {
                return hf_hub::Cache::new(cache_dir.clone())
                    .repo(repo)
                    .get(file)
                    .ok_or_else(|| {
                        missing(format!(
                            "not in the Hugging Face cache {} for {repo_id}@{revision} (offline)",
                            cache_dir.display()
                        ))
                    });
            }
            let api = hf_hub::api::sync::ApiBuilder::from_env()
                .with_cache_dir(cache_dir)
                .with_progress(true)
                .build()
                .map_err(|e| missing(format!("Hugging Face Hub client: {e}")))?;
            api.repo(repo)
                .get(file)
                .map_err(|e| missing(format!("{repo_id}@{revision} on the Hugging Face Hub: {e}")))
        }
    }
}

/// Builds the model folder `out` from `source`; `max_length` goes to the manifest.
pub fn fetch(
    source: &Source,
    model_id: &str,
    out: &Path,
    max_length: usize,
) -> Result<FetchReport, FetchError> {
    let config_path = resolve(source, "config.json")?;
    let spm_path = resolve(source, "spm.model")?;
    let (weights_path, weights_from) = match resolve(source, "model.safetensors") {
        Ok(p) => (p, "model.safetensors"),
        Err(first) => match resolve(source, "pytorch_model.bin") {
            Ok(p) => (p, "pytorch_model.bin"),
            Err(_) => return Err(first),
        },
    };
    let config_text = std::fs::read_to_string(&config_path).map_err(io(&config_path))?;
    let config: serde_json::Value =
        serde_json::from_str(&config_text).map_err(|e| FetchError::Config {
            path: config_path.clone(),
            message: e.to_string(),
        })?;
    let field = |k: &str| {
        config[k]
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| FetchError::Config {
                path: config_path.clone(),
                message: format!("no integer `{k}`"),
            })
    };
    let (dim, vocab_size, num_layers) = (
        field("hidden_size")?,
        field("vocab_size")?,
        field("num_hidden_layers")?,
    );
    let spm = std::fs::read(&spm_path).map_err(io(&spm_path))?;
    let tokenizer = spm_tokenizer::tokenizer_json(&spm)?;

    std::fs::create_dir_all(out).map_err(io(out))?;
    let write = |name: &str, bytes: &[u8]| -> Result<(), FetchError> {
        let tmp = out.join(format!("{name}.partial"));
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, out.join(name)).map_err(io(out))
    };
    write("config.json", config_text.as_bytes())?;
    write("spm.model", &spm)?;
    write("tokenizer.json", tokenizer.to_string().as_bytes())?;
    let weights_out = out.join("model.safetensors");
    match weights_from {
        "model.safetensors" => {
            let tmp = out.join("model.safetensors.partial");
            std::fs::copy(&weights_path, &tmp).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &weights_out).map_err(io(&weights_out))?;
        }
        _ => convert_pytorch(&weights_path, &weights_out)?,
    }
    let mut files = std::collections::BTreeMap::new();
    for name in [
        "config.json",
        "spm.model",
        "tokenizer.json",
        "model.safetensors",
    ] {
        files.insert(name.to_owned(), sha256_file(&out.join(name))?);
    }
    // Files of an earlier fetch or export that this one did not write would fail the manifest.
    for stale in ["model.onnx", "model.fp16.onnx"] {
        let p = out.join(stale);
        if p.exists() {
            std::fs::remove_file(&p).map_err(io(&p))?;
        }
    }
    let manifest = json!({
        "format": 1,
        "model_id": model_id,
        "architecture": "deberta-v2",
        "random_init": false,
        "dim": dim,
        "max_length": max_length,
        "vocab_size": vocab_size,
        "num_layers": num_layers,
        "pooling": "cls",
        "created_with": {"hemma-offload": env!("CARGO_PKG_VERSION"), "weights_from": weights_from},
        "files": files,
    });
    let text =
        serde_json::to_string_pretty(&manifest).map_err(|e| FetchError::Weights(e.to_string()))?;
    write("manifest.json", text.as_bytes())?;
    Ok(FetchReport {
        out: out.to_owned(),
        model_id: model_id.to_owned(),
        dim,
        files,
        weights_from: weights_from.to_owned(),
    })
}

#[cfg(feature = "candle")]
fn convert_pytorch(from: &Path, to: &Path) -> Result<(), FetchError> {
    let tensors =
        candle_core::pickle::read_all(from).map_err(|e| FetchError::Weights(e.to_string()))?;
    let map: std::collections::HashMap<String, candle_core::Tensor> = tensors.into_iter().collect();
    let tmp = to.with_extension("safetensors.partial");
    candle_core::safetensors::save(&map, &tmp).map_err(|e| FetchError::Weights(e.to_string()))?;
    std::fs::rename(&tmp, to).map_err(io(to))
}

#[cfg(not(feature = "candle"))]
fn convert_pytorch(_from: &Path, _to: &Path) -> Result<(), FetchError> {
    Err(FetchError::Weights(
        "this build has no candle (feature `candle`), which reads PyTorch files; use a checkpoint with model.safetensors".into(),
    ))
}
