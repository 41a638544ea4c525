//! candle engine: candle-transformers' DeBERTa-v2 on safetensors weights, pure Rust, CPU.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::debertav2::{Config as DebertaConfig, DebertaV2Model};
use ndarray::Array2;

use super::{Engine, EngineError, EngineInfo, TokenBatch, pooling};

/// Everything needed to load the candle engine.
#[derive(Debug, Clone)]
pub struct CandleOptions {
    /// `model.safetensors`.
    pub weights: PathBuf,
    /// Its sha256, reported in `Info`.
    pub weights_sha256: String,
    /// `config.json` of the model.
    pub config: PathBuf,
    /// Threads for matrix work; 0 = all cores.
    pub threads: usize,
    /// Expected embedding width (from the manifest).
    pub dim: usize,
}

/// DeBERTa-v2/v3 in candle on the CPU.
pub struct CandleEngine {
    model: DebertaV2Model,
    device: Device,
    pool: rayon::ThreadPool,
    info: EngineInfo,
}

impl CandleEngine {
    /// Loads config and weights; accepts names with or without the `deberta.` prefix.
    pub fn load(o: &CandleOptions) -> Result<CandleEngine, EngineError> {
        let load = |what: String| EngineError::Load(what);
        let text = std::fs::read_to_string(&o.config)
            .map_err(|e| load(format!("cannot read {}: {e}", o.config.display())))?;
        let config: DebertaConfig = serde_json::from_str(&text).map_err(|e| {
            load(format!(
                "{} is not a DeBERTa-v2 config: {e}",
                o.config.display()
            ))
        })?;
        if config.hidden_size != o.dim {
            return Err(load(format!(
                "{} says hidden_size {} but the manifest says dim {}",
                o.config.display(),
                config.hidden_size,
                o.dim
            )));
        }
        let device = Device::Cpu;
        // SAFETY: the file is memory-mapped read-only; the manifest check just hashed it, and the
        // model folder is not expected to change while the server runs.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&o.weights], DType::F32, &device) }
            .map_err(|e| load(format!("cannot map {}: {e}", o.weights.display())))?;
        let vb = if vb.contains_tensor("deberta.embeddings.word_embeddings.weight") {
            vb.pp("deberta")
        } else {
            vb
        };
        let model = DebertaV2Model::load(vb, &config).map_err(|e| {
            load(format!(
                "cannot build DeBERTa from {}: {e}",
                o.weights.display()
            ))
        })?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(o.threads)
            .thread_name(|i| format!("hemma-candle-{i}"))
            .build()
            .map_err(|e| load(format!("cannot start candle's thread pool: {e}")))?;
        Ok(CandleEngine {
            model,
            device,
            pool,
            info: EngineInfo {
                engine: "candle".into(),
                provider: "cpu".into(),
                precision: "fp32".into(),
                dim: o.dim,
                weights_sha256: o.weights_sha256.clone(),
            },
        })
    }

    fn forward(&self, batch: &TokenBatch) -> candle_core::Result<Array2<f32>> {
        let shape = (batch.rows(), batch.ids.ncols());
        let to_tensor =
            |a: &Array2<i64>| Tensor::from_iter(a.iter().copied(), &self.device)?.reshape(shape);
        let ids = to_tensor(&batch.ids)?;
        let mask = to_tensor(&batch.mask)?;
        let hidden = self.model.forward(&ids, None, Some(mask))?;
        let (rows, seq, dim) = hidden.dims3()?;
        let flat: Vec<f32> = hidden.flatten_all()?.to_vec1()?;
        let hidden = ndarray::Array3::from_shape_vec((rows, seq, dim), flat)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        Ok(pooling::cls(hidden.view()))
    }
}

impl Engine for CandleEngine {
    fn info(&self) -> EngineInfo {
        self.info.clone()
    }

    fn embed(&mut self, batch: &TokenBatch) -> Result<Array2<f32>, EngineError> {
        let out = self
            .pool
            .install(|| self.forward(batch))
            .map_err(|e| EngineError::Run(e.to_string()))?;
        if out.ncols() != self.info.dim {
            return Err(EngineError::Run(format!(
                "model returns width {} but the manifest says {}",
                out.ncols(),
                self.info.dim
            )));
        }
        Ok(out)
    }
}
