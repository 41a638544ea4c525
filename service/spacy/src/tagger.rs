//! The tagger (PORT.md): a linear layer over the token vectors; the tag is the arg-max of the
//! raw logits (ties to the first), no softmax.

use std::path::Path;

use ndarray::{Array2, ArrayView2};

use super::NlpError;
use super::gemm::Dense;
use super::thinc::ThincModel;
use super::tok2vec::WIDTH;

/// The tagger model and its labels.
#[derive(Debug)]
pub struct Tagger {
    w: Dense,
    b: Vec<f32>,
    labels: Vec<String>,
}

impl Tagger {
    /// Loads `<model_dir>/tagger/{model,cfg}`.
    pub fn load(model_dir: &Path) -> Result<Tagger, NlpError> {
        let cfg_path = model_dir.join("tagger/cfg");
        let cfg: serde_json::Value = std::fs::read(&cfg_path)
            .map_err(|source| NlpError::Read {
                path: cfg_path.clone(),
                source,
            })
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| NlpError::Format {
                    path: cfg_path.clone(),
                    message: e.to_string(),
                })
            })?;
        let labels: Vec<String> = cfg["labels"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let model = ThincModel::load(&model_dir.join("tagger/model"))?;
        model.expect_node(3, "softmax")?;
        let n = labels.len();
        let w = model.param(3, "W", &[n, WIDTH])?;
        Ok(Tagger {
            w: Dense::new(
                Array2::from_shape_vec((n, WIDTH), w.data)
                    .expect("the shape was checked against the parameter"),
            ),
            b: model.param(3, "b", &[n])?.data,
            labels,
        })
    }

    /// The tag of each token vector (`logits` is scratch).
    pub fn tag(&self, vectors: ArrayView2<f32>, logits: &mut Vec<f32>) -> Vec<&str> {
        self.w
            .apply_into(vectors, logits)
            .rows()
            .into_iter()
            .map(|row| {
                let mut best = 0;
                let mut best_v = f32::NEG_INFINITY;
                for (k, v) in row.iter().enumerate() {
                    let v = v + self.b[k];
                    if v > best_v {
                        best_v = v;
                        best = k;
                    }
                }
                self.labels[best].as_str()
            })
            .collect()
    }
}
