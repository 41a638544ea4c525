//! The embedding subsystem's settings: which engine runs the model, and how texts are batched.
//! The server reads them from flags, environment and its file, validates them and hands them here.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which inference engine runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// ONNX Runtime through `ort` (needs `libonnxruntime.so`).
    Ort,
    /// candle, pure Rust, CPU.
    Candle,
}

/// ONNX Runtime execution provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// The default CPU provider.
    Cpu,
    /// NVIDIA CUDA.
    Cuda,
    /// AMD MIGraphX (ROCm).
    Migraphx,
    /// AMD ROCm (ONNX Runtime <= 1.22 builds only).
    Rocm,
}

/// Numeric precision of the model weights the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats (`model.onnx`, `model.safetensors`).
    Fp32,
    /// 16-bit floats (`model.fp16.onnx`); for GPUs, slower on CPU.
    Fp16,
}

impl EngineKind {
    /// The name used in flags, config and `Info`.
    pub fn name(self) -> String {
        match self {
            EngineKind::Ort => "ort",
            EngineKind::Candle => "candle",
        }
        .to_owned()
    }
}

impl Provider {
    /// The name used in flags, config and `Info`.
    pub fn name(self) -> String {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
            Provider::Migraphx => "migraphx",
            Provider::Rocm => "rocm",
        }
        .to_owned()
    }
}

impl Precision {
    /// The name used in flags, config and `Info`.
    pub fn name(self) -> String {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
        }
        .to_owned()
    }
}

/// How requests are queued and batched for the engine.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BatchConfig {
    /// Budget of one batch in padded tokens (rows x longest row).
    pub max_tokens: usize,
    /// Rows of one batch at most.
    pub max_rows: usize,
    /// Texts waiting at most before RESOURCE_EXHAUSTED.
    pub queue_capacity: usize,
}

/// Static batch shapes (empty lists: dynamic shapes).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShapeConfig {
    /// Row counts batches are padded up to.
    pub rows: Vec<usize>,
    /// Sequence lengths batches are padded up to (max_length is added at start-up).
    pub seq: Vec<usize>,
}

/// The engine to load.
#[derive(Debug, Clone, Serialize)]
pub struct EngineConfig {
    /// ort or candle.
    pub kind: EngineKind,
    /// Execution provider (ort only).
    pub provider: Provider,
    /// GPU device id.
    pub device_id: i32,
    /// fp32 or fp16 weights.
    pub precision: Precision,
    /// libonnxruntime.so to load; None lets the loader search.
    pub ort_dylib: Option<PathBuf>,
    /// Intra-op threads; 0 = engine default.
    pub threads: usize,
}
