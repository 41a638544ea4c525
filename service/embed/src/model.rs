//! The model folder: `manifest.json` and the files it vouches for.
//!
//! The server reads only files whose sha256 the manifest lists and that match it, so a half-copied
//! or swapped weight file is a start-up error rather than silently different features.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Why a model folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelDirError {
    /// manifest.json is missing or unreadable.
    #[error(
        "cannot read {path}: {source} (every model folder needs a manifest.json; see models/README.md)"
    )]
    ReadManifest {
        /// The manifest path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// manifest.json is not valid.
    #[error("{path} is not a valid manifest: {message}")]
    ParseManifest {
        /// The manifest path.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// The manifest does not list a file the server needs.
    #[error("the manifest in {dir} does not list {file}, which the {purpose} needs")]
    NotListed {
        /// The model folder.
        dir: PathBuf,
        /// The file name.
        file: String,
        /// What needs it.
        purpose: String,
    },
    /// A listed file is not in the folder.
    #[error("{path} is missing (listed in the manifest, needed by the {purpose})")]
    Missing {
        /// The absent file.
        path: PathBuf,
        /// What needs it.
        purpose: String,
    },
    /// A file's content does not match its manifest hash.
    #[error("{path} does not match the manifest: sha256 is {actual}, the manifest says {expected}")]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// From the manifest.
        expected: String,
        /// Computed now.
        actual: String,
    },
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The contents of `manifest.json` (written by `models/export_deberta.py`).
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// Manifest format version.
    pub format: u32,
    /// Model id, e.g. `microsoft/deberta-v3-base`.
    pub model_id: String,
    /// Hidden size (embedding width).
    pub dim: usize,
    /// Longest input the model was exported for, special tokens included.
    pub max_length: usize,
    /// Whether the weights are random (benchmarks and fixtures only).
    #[serde(default)]
    pub random_init: bool,
    /// sha256 (hex) of every file in the folder, by file name.
    pub files: BTreeMap<String, String>,
}

/// A model folder whose manifest was read.
#[derive(Debug, Clone)]
pub struct ModelDir {
    dir: PathBuf,
    manifest: Manifest,
}

/// A file of the folder, checked against the manifest.
#[derive(Debug, Clone)]
pub struct VerifiedFile {
    /// Absolute or folder-relative path.
    pub path: PathBuf,
    /// Its sha256 (hex), equal to the manifest's.
    pub sha256: String,
}

impl ModelDir {
    /// Reads `dir/manifest.json`.
    pub fn open(dir: &Path) -> Result<Self, ModelDirError> {
        let path = dir.join("manifest.json");
        let text =
            std::fs::read_to_string(&path).map_err(|source| ModelDirError::ReadManifest {
                path: path.clone(),
                source,
            })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| ModelDirError::ParseManifest {
                path: path.clone(),
                message: e.to_string(),
            })?;
        if manifest.format != 1 {
            return Err(ModelDirError::ParseManifest {
                path,
                message: format!(
                    "format {} is not supported (this server reads format 1)",
                    manifest.format
                ),
            });
        }
        Ok(ModelDir {
            dir: dir.to_owned(),
            manifest,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Checks that `file` is listed, present and matches its hash; `purpose` names who needs it.
    pub fn verify(&self, file: &str, purpose: &str) -> Result<VerifiedFile, ModelDirError> {
        let expected = self
            .manifest
            .files
            .get(file)
            .ok_or_else(|| ModelDirError::NotListed {
                dir: self.dir.clone(),
                file: file.to_owned(),
                purpose: purpose.to_owned(),
            })?;
        let path = self.dir.join(file);
        if !path.is_file() {
            return Err(ModelDirError::Missing {
                path,
                purpose: purpose.to_owned(),
            });
        }
        let actual = sha256_file(&path)?;
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(ModelDirError::HashMismatch {
                path,
                expected: expected.clone(),
                actual,
            });
        }
        Ok(VerifiedFile {
            path,
            sha256: actual,
        })
    }
}

/// sha256 of a file's bytes, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String, ModelDirError> {
    let read_err = |source| ModelDirError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &[u8])], listed: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let files: BTreeMap<_, _> = listed.iter().cloned().collect();
        let manifest = serde_json::json!({
            "format": 1, "model_id": "t", "dim": 4, "max_length": 16, "files": files
        });
        std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();
        dir
    }

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn matching_file_verifies() {
        let d = folder(&[("a.bin", b"abc")], &[("a.bin", ABC)]);
        let f = ModelDir::open(d.path())
            .unwrap()
            .verify("a.bin", "test")
            .unwrap();
        assert_eq!(f.sha256, ABC);
    }

    #[test]
    fn changed_file_names_file_and_both_hashes() {
        let d = folder(&[("a.bin", b"abd")], &[("a.bin", ABC)]);
        let err = ModelDir::open(d.path())
            .unwrap()
            .verify("a.bin", "test")
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("a.bin") && msg.contains(ABC), "{msg}");
    }

    #[test]
    fn missing_and_unlisted_files_are_named() {
        let d = folder(&[], &[("a.bin", ABC)]);
        let dir = ModelDir::open(d.path()).unwrap();
        assert!(
            dir.verify("a.bin", "ONNX Runtime engine")
                .unwrap_err()
                .to_string()
                .contains("a.bin is missing")
        );
        assert!(
            dir.verify("b.bin", "tokenizer")
                .unwrap_err()
                .to_string()
                .contains("does not list b.bin")
        );
    }

    #[test]
    fn missing_manifest_is_explained() {
        let d = tempfile::tempdir().unwrap();
        let err = ModelDir::open(d.path()).unwrap_err();
        assert!(err.to_string().contains("manifest.json"), "{err}");
    }
}
