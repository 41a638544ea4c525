//! ONNX Runtime engine (`ort` 2.x, library loaded at run time).
//!
//! ONNX Runtime allows one library and one environment per process, so both are created once
//! and kept in a `OnceLock` (the only process-wide state of the server; ONNX Runtime imposes it).
//! An execution provider other than CPU is registered with `error_on_failure`: a provider that
//! cannot start is a start-up error naming it and the library, never a silent CPU fallback.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ndarray::Array2;
use ort::environment::Environment;
use ort::ep::{self, ExecutionProviderDispatch};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use super::{Engine, EngineError, EngineInfo, TokenBatch, pooling};
use crate::settings::{Precision, Provider};

/// Everything needed to open an ONNX Runtime session.
#[derive(Debug, Clone)]
pub struct OrtOptions {
    /// The `.onnx` file (fp32 or fp16 export).
    pub model: PathBuf,
    /// Its sha256, reported in `Info`.
    pub model_sha256: String,
    /// libonnxruntime.so; None lets the system loader search for `libonnxruntime.so`.
    pub dylib: Option<PathBuf>,
    /// Execution provider.
    pub provider: Provider,
    /// GPU device id.
    pub device_id: i32,
    /// Precision of the model file (reported, and fp16 for MIGraphX).
    pub precision: Precision,
    /// Intra-op threads; 0 = ONNX Runtime's default.
    pub threads: usize,
    /// Expected embedding width (from the manifest).
    pub dim: usize,
}

/// The library path that was loaded, and the environment built on it.
static ENVIRONMENT: OnceLock<Mutex<Option<(String, Environment)>>> = OnceLock::new();

fn describe_dylib(dylib: &Option<PathBuf>) -> String {
    match dylib {
        Some(p) => p.display().to_string(),
        None => "libonnxruntime.so (system search path; set --ort-dylib or ORT_DYLIB_PATH)".into(),
    }
}

/// Loads the library once per process and returns the shared environment.
fn environment(dylib: &Option<PathBuf>) -> Result<Environment, EngineError> {
    let wanted = describe_dylib(dylib);
    let cell = ENVIRONMENT.get_or_init(|| Mutex::new(None));
    let mut slot = cell
        .lock()
        .map_err(|_| EngineError::Load("ONNX Runtime environment lock poisoned".into()))?;
    if let Some((loaded, env)) = slot.as_ref() {
        if *loaded != wanted {
            return Err(EngineError::Load(format!(
                "ONNX Runtime is already loaded from {loaded} in this process; cannot also load {wanted}"
            )));
        }
        return Ok(env.clone());
    }
    let path: &Path = dylib
        .as_deref()
        .unwrap_or_else(|| Path::new("libonnxruntime.so"));
    if dylib.is_some() && !path.is_file() {
        return Err(EngineError::Load(format!(
            "ONNX Runtime library {} does not exist (scripts/setup-ort.sh fetches one)",
            path.display()
        )));
    }
    let builder = ort::init_from(path)
        .map_err(|e| EngineError::Load(format!("cannot load ONNX Runtime from {wanted}: {e}")))?;
    let env = builder.with_name("hemma-offload").build().map_err(|e| {
        EngineError::Load(format!("cannot create the ONNX Runtime environment: {e}"))
    })?;
    *slot = Some((wanted, env.clone()));
    Ok(env)
}

fn provider_dispatch(o: &OrtOptions) -> Option<ExecutionProviderDispatch> {
    let ep = match o.provider {
        Provider::Cpu => return None,
        Provider::Cuda => ep::CUDA::default().with_device_id(o.device_id).build(),
        Provider::Rocm => ep::ROCm::default().with_device_id(o.device_id).build(),
        Provider::Migraphx => ep::MIGraphX::default()
            .with_device_id(o.device_id)
            .with_fp16(o.precision == Precision::Fp16)
            .build(),
    };
    Some(ep.error_on_failure())
}

/// An ONNX Runtime session over a DeBERTa export with inputs `input_ids`, `attention_mask`.
pub struct OrtEngine {
    session: Session,
    info: EngineInfo,
}

impl OrtEngine {
    /// Opens the session; every failure names the provider and the library.
    pub fn load(o: &OrtOptions) -> Result<OrtEngine, EngineError> {
        let env = environment(&o.dylib)?;
        let lib = describe_dylib(&o.dylib);
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            EngineError::Load(format!(
                "{what} (provider {}, ONNX Runtime library {lib}): {e}",
                o.provider.name()
            ))
        };
        let mut builder = Session::builder(&env)
            .map_err(|e| fail("cannot create a session builder", &e))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| fail("cannot set the optimisation level", &e))?;
        if o.threads > 0 {
            builder = builder
                .with_intra_threads(o.threads)
                .map_err(|e| fail("cannot set intra-op threads", &e))?;
        }
        if let Some(ep) = provider_dispatch(o) {
            builder = builder.with_execution_providers([ep]).map_err(|e| {
                fail(
                    &format!(
                        "execution provider `{}` failed to register; is this library built with it and is the device visible?",
                        o.provider.name()
                    ),
                    &e,
                )
            })?;
        }
        let session = builder
            .commit_from_file(&o.model)
            .map_err(|e| fail(&format!("cannot load {}", o.model.display()), &e))?;
        for name in ["input_ids", "attention_mask"] {
            if !session.inputs().iter().any(|i| i.name() == name) {
                return Err(EngineError::Load(format!(
                    "{} has no input `{name}`; export it with models/export_deberta.py",
                    o.model.display()
                )));
            }
        }
        Ok(OrtEngine {
            session,
            info: EngineInfo {
                engine: "ort".into(),
                provider: o.provider.name(),
                precision: o.precision.name(),
                dim: o.dim,
                weights_sha256: o.model_sha256.clone(),
            },
        })
    }
}

impl Engine for OrtEngine {
    fn info(&self) -> EngineInfo {
        self.info.clone()
    }

    fn embed(&mut self, batch: &TokenBatch) -> Result<Array2<f32>, EngineError> {
        let run = |e: ort::Error| EngineError::Run(e.to_string());
        let ids = TensorRef::from_array_view(&batch.ids).map_err(run)?;
        let mask = TensorRef::from_array_view(&batch.mask).map_err(run)?;
        let outputs = self
            .session
            .run(ort::inputs!["input_ids" => ids, "attention_mask" => mask])
            .map_err(run)?;
        let hidden = outputs[0].try_extract_array::<f32>().map_err(run)?;
        let hidden = hidden
            .into_dimensionality::<ndarray::Ix3>()
            .map_err(|e| EngineError::Run(format!("last hidden state is not 3-D: {e}")))?;
        if hidden.shape()[2] != self.info.dim {
            return Err(EngineError::Run(format!(
                "model returns width {} but the manifest says {}",
                hidden.shape()[2],
                self.info.dim
            )));
        }
        Ok(pooling::cls(hidden))
    }
}
