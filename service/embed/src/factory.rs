//! Engine selection: verifies the files the configured engine reads and returns a loader that
//! creates the engine on the engine thread.

use crate::model::{ModelDir, ModelDirError, VerifiedFile};
#[cfg(feature = "ort")]
use crate::settings::Precision;
use crate::settings::{EngineConfig, EngineKind};
use crate::{Engine, EngineError};

/// Creates the engine on the engine thread.
pub type EngineLoader = Box<dyn FnOnce() -> Result<Box<dyn Engine>, EngineError> + Send>;

/// Why the configured engine cannot be prepared.
#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    /// A file the engine needs is missing or does not match the manifest.
    #[error(transparent)]
    Model(#[from] ModelDirError),
    /// The engine was compiled out of this binary.
    #[error("this binary was built without the `{0}` engine (cargo feature `{0}`)")]
    NotBuilt(String),
}

/// The ONNX file ONNX Runtime loads: fp16 or fp32, and for fp32 on the CPU the CLS-only CPU graph
/// (`model.cpu.onnx`, docs/architecture.md "The CPU graph") where the manifest lists one.
#[cfg(feature = "ort")]
pub fn onnx_file(engine: &EngineConfig, model: &ModelDir) -> &'static str {
    use crate::settings::Provider;
    match (engine.precision, engine.provider) {
        (Precision::Fp16, _) => "model.fp16.onnx",
        (Precision::Fp32, Provider::Cpu) if model.manifest().files.contains_key(CPU_GRAPH) => {
            CPU_GRAPH
        }
        (Precision::Fp32, _) => "model.onnx",
    }
}

/// The CLS-only graph for ONNX Runtime on the CPU, written by models/export_deberta.py.
#[cfg(feature = "ort")]
pub const CPU_GRAPH: &str = "model.cpu.onnx";

/// Verifies the files the configured engine reads and returns its loader.
pub fn engine_loader(
    engine: &EngineConfig,
    model: &ModelDir,
) -> Result<(EngineLoader, VerifiedFile), FactoryError> {
    let dim = model.manifest().dim;
    match engine.kind {
        EngineKind::Ort => {
            #[cfg(feature = "ort")]
            {
                let file = onnx_file(engine, model);
                let weights = model.verify(file, "ONNX Runtime engine")?;
                let options = crate::ort::OrtOptions {
                    model: weights.path.clone(),
                    model_sha256: weights.sha256.clone(),
                    dylib: engine.ort_dylib.clone(),
                    provider: engine.provider,
                    device_id: engine.device_id,
                    precision: engine.precision,
                    threads: engine.threads,
                    dim,
                };
                let loader: EngineLoader = Box::new(move || {
                    crate::ort::OrtEngine::load(&options).map(|e| Box::new(e) as Box<dyn Engine>)
                });
                Ok((loader, weights))
            }
            #[cfg(not(feature = "ort"))]
            {
                let _ = dim;
                Err(FactoryError::NotBuilt("ort".into()))
            }
        }
        EngineKind::Candle => {
            #[cfg(feature = "candle")]
            {
                let weights = model.verify("model.safetensors", "candle engine")?;
                let config_file = model.verify("config.json", "candle engine")?;
                let options = crate::candle::CandleOptions {
                    weights: weights.path.clone(),
                    weights_sha256: weights.sha256.clone(),
                    config: config_file.path,
                    threads: engine.threads,
                    dim,
                };
                let loader: EngineLoader = Box::new(move || {
                    crate::candle::CandleEngine::load(&options)
                        .map(|e| Box::new(e) as Box<dyn Engine>)
                });
                Ok((loader, weights))
            }
            #[cfg(not(feature = "candle"))]
            {
                let _ = dim;
                Err(FactoryError::NotBuilt("candle".into()))
            }
        }
    }
}
