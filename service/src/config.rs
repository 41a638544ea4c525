//! The server's one typed configuration: flags, `HEMMA_*` environment and an optional TOML file.
//!
//! Precedence is flag > environment > file > default. [`ServeArgs`] is the raw layer (every field
//! optional, shared by clap and the TOML file); [`Config::resolve`] merges the layers, applies
//! defaults and validates once at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML file is not valid for this server.
    #[error("config file {path} is invalid: {message}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A setting is missing or out of range.
    #[error("invalid setting `{field}`: {message}")]
    Invalid {
        /// The setting, as spelled in the TOML file.
        field: &'static str,
        /// What is wrong and what would be right.
        message: String,
    },
}

/// Which inference engine runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// ONNX Runtime through `ort` (needs `libonnxruntime.so`).
    Ort,
    /// candle, pure Rust, CPU.
    Candle,
}

/// ONNX Runtime execution provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats (`model.onnx`, `model.safetensors`).
    Fp32,
    /// 16-bit floats (`model.fp16.onnx`); for GPUs, slower on CPU.
    Fp16,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

macro_rules! name_of {
    ($e:expr) => {
        $e.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    };
}

impl EngineKind {
    /// The name used in flags, config and `Info`.
    pub fn name(self) -> String {
        use clap::ValueEnum;
        name_of!(self)
    }
}

impl Provider {
    /// The name used in flags, config and `Info`.
    pub fn name(self) -> String {
        use clap::ValueEnum;
        name_of!(self)
    }
}

impl Precision {
    /// The name used in flags, config and `Info`.
    pub fn name(self) -> String {
        use clap::ValueEnum;
        name_of!(self)
    }
}

/// One layer of settings: command-line flags (with `HEMMA_*` env) or the TOML file.
///
/// Every field is optional so that layers can be merged; defaults live in [`Config::resolve`].
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeArgs {
    /// Address of the one port serving gRPC and HTTP (/healthz, /readyz, /metrics) [default: 127.0.0.1:9000].
    #[arg(long, env = "HEMMA_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Model folder with manifest.json, tokenizer.json, config.json and the weights.
    #[arg(long, env = "HEMMA_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// Inference engine [default: ort].
    #[arg(long, env = "HEMMA_ENGINE", value_enum)]
    pub engine: Option<EngineKind>,
    /// ONNX Runtime execution provider [default: cpu].
    #[arg(long, env = "HEMMA_PROVIDER", value_enum)]
    pub provider: Option<Provider>,
    /// GPU device id for CUDA/MIGraphX/ROCm [default: 0].
    #[arg(long, env = "HEMMA_DEVICE_ID")]
    pub device_id: Option<i32>,
    /// Weight precision [default: fp32].
    #[arg(long, env = "HEMMA_PRECISION", value_enum)]
    pub precision: Option<Precision>,
    /// Path of libonnxruntime.so [default: $ORT_DYLIB_PATH, else the system loader's search].
    #[arg(long, env = "HEMMA_ORT_DYLIB")]
    pub ort_dylib: Option<PathBuf>,
    /// Threads used inside one inference (0: the engine's default, all cores) [default: 0].
    #[arg(long, env = "HEMMA_THREADS")]
    pub threads: Option<usize>,
    /// Tokens per text, special tokens included; at most the model's [default: the manifest's].
    #[arg(long, env = "HEMMA_MAX_LENGTH")]
    pub max_length: Option<usize>,
    /// Token budget of one batch, counted as rows x longest row [default: 8192].
    #[arg(long, env = "HEMMA_BATCH_MAX_TOKENS")]
    pub batch_max_tokens: Option<usize>,
    /// Rows of one batch at most [default: 32].
    #[arg(long, env = "HEMMA_BATCH_MAX_ROWS")]
    pub batch_max_rows: Option<usize>,
    /// Texts waiting for the engine at most; more answer RESOURCE_EXHAUSTED [default: 2048].
    #[arg(long, env = "HEMMA_QUEUE_CAPACITY")]
    pub queue_capacity: Option<usize>,
    /// Texts in one request at most [default: 256].
    #[arg(long, env = "HEMMA_MAX_ITEMS_PER_REQUEST")]
    pub max_items_per_request: Option<usize>,
    /// UTF-8 bytes of one text at most [default: 200000].
    #[arg(long, env = "HEMMA_MAX_BYTES_PER_TEXT")]
    pub max_bytes_per_text: Option<usize>,
    /// UTF-8 bytes of all texts of one request at most [default: 8388608].
    #[arg(long, env = "HEMMA_MAX_BYTES_PER_REQUEST")]
    pub max_bytes_per_request: Option<usize>,
    /// gRPC message size limit, both directions [default: 67108864].
    #[arg(long, env = "HEMMA_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Static batch row counts, comma-separated; batches are padded up to one [default: none, or 1,4,16 and batch_max_rows with migraphx].
    #[arg(long, env = "HEMMA_SHAPE_ROWS", value_delimiter = ',')]
    pub shape_rows: Option<Vec<usize>>,
    /// Static sequence lengths, comma-separated; max_length is always added [default: none, or 128,256 with migraphx].
    #[arg(long, env = "HEMMA_SHAPE_SEQ", value_delimiter = ',')]
    pub shape_seq: Option<Vec<usize>>,
    /// Log format [default: text].
    #[arg(long, env = "HEMMA_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

impl ServeArgs {
    /// Reads a TOML file whose keys are the flag names with underscores.
    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::ParseFile {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Fills every unset field of `self` from `lower` (self wins).
    pub fn or(self, lower: ServeArgs) -> ServeArgs {
        ServeArgs {
            listen: self.listen.or(lower.listen),
            model_dir: self.model_dir.or(lower.model_dir),
            engine: self.engine.or(lower.engine),
            provider: self.provider.or(lower.provider),
            device_id: self.device_id.or(lower.device_id),
            precision: self.precision.or(lower.precision),
            ort_dylib: self.ort_dylib.or(lower.ort_dylib),
            threads: self.threads.or(lower.threads),
            max_length: self.max_length.or(lower.max_length),
            batch_max_tokens: self.batch_max_tokens.or(lower.batch_max_tokens),
            batch_max_rows: self.batch_max_rows.or(lower.batch_max_rows),
            queue_capacity: self.queue_capacity.or(lower.queue_capacity),
            max_items_per_request: self.max_items_per_request.or(lower.max_items_per_request),
            max_bytes_per_text: self.max_bytes_per_text.or(lower.max_bytes_per_text),
            max_bytes_per_request: self.max_bytes_per_request.or(lower.max_bytes_per_request),
            max_message_bytes: self.max_message_bytes.or(lower.max_message_bytes),
            shape_rows: self.shape_rows.or(lower.shape_rows),
            shape_seq: self.shape_seq.or(lower.shape_seq),
            log_format: self.log_format.or(lower.log_format),
        }
    }
}

/// Per-request limits; larger requests get INVALID_ARGUMENT.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RequestLimits {
    /// Texts in one request.
    pub max_items_per_request: usize,
    /// UTF-8 bytes of one text.
    pub max_bytes_per_text: usize,
    /// UTF-8 bytes of all texts in one request.
    pub max_bytes_per_request: usize,
    /// gRPC message size, both directions.
    pub max_message_bytes: usize,
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

/// The validated server configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Listen address of gRPC + HTTP.
    pub listen: SocketAddr,
    /// Model folder.
    pub model_dir: PathBuf,
    /// Token limit override (None: the manifest's max_length).
    pub max_length: Option<usize>,
    /// Engine selection.
    pub engine: EngineConfig,
    /// Batching and queueing.
    pub batch: BatchConfig,
    /// Request limits.
    pub limits: RequestLimits,
    /// Static batch shapes.
    pub shapes: ShapeConfig,
    /// Log format.
    pub log_format: LogFormat,
}

fn positive(field: &'static str, value: usize) -> Result<usize, ConfigError> {
    if value == 0 {
        return Err(ConfigError::Invalid {
            field,
            message: "must be at least 1".into(),
        });
    }
    Ok(value)
}

impl Config {
    /// Merges the layers (flags+env over file), applies defaults and validates.
    ///
    /// `ort_dylib_env` is `$ORT_DYLIB_PATH`, the variable ONNX Runtime users already know.
    pub fn resolve(
        args: ServeArgs,
        file: Option<ServeArgs>,
        ort_dylib_env: Option<PathBuf>,
    ) -> Result<Config, ConfigError> {
        let a = match file {
            Some(file) => args.or(file),
            None => args,
        };
        let model_dir = a.model_dir.ok_or(ConfigError::Invalid {
            field: "model_dir",
            message: "no model folder given: pass --model-dir DIR (or HEMMA_MODEL_DIR)".into(),
        })?;
        let engine = EngineConfig {
            kind: a.engine.unwrap_or(EngineKind::Ort),
            provider: a.provider.unwrap_or(Provider::Cpu),
            device_id: a.device_id.unwrap_or(0),
            precision: a.precision.unwrap_or(Precision::Fp32),
            ort_dylib: a.ort_dylib.or(ort_dylib_env),
            threads: a.threads.unwrap_or(0),
        };
        if engine.kind == EngineKind::Candle && engine.provider != Provider::Cpu {
            return Err(ConfigError::Invalid {
                field: "provider",
                message: format!(
                    "the candle engine runs on the CPU only; `{}` needs --engine ort",
                    engine.provider.name()
                ),
            });
        }
        if engine.kind == EngineKind::Candle && engine.precision == Precision::Fp16 {
            return Err(ConfigError::Invalid {
                field: "precision",
                message: "the candle engine runs fp32 only; fp16 needs --engine ort".into(),
            });
        }
        let batch = BatchConfig {
            max_tokens: positive("batch_max_tokens", a.batch_max_tokens.unwrap_or(8192))?,
            max_rows: positive("batch_max_rows", a.batch_max_rows.unwrap_or(32))?,
            queue_capacity: positive("queue_capacity", a.queue_capacity.unwrap_or(2048))?,
        };
        let limits = RequestLimits {
            max_items_per_request: positive(
                "max_items_per_request",
                a.max_items_per_request.unwrap_or(256),
            )?,
            max_bytes_per_text: positive(
                "max_bytes_per_text",
                a.max_bytes_per_text.unwrap_or(200_000),
            )?,
            max_bytes_per_request: positive(
                "max_bytes_per_request",
                a.max_bytes_per_request.unwrap_or(8 << 20),
            )?,
            max_message_bytes: positive(
                "max_message_bytes",
                a.max_message_bytes.unwrap_or(64 << 20),
            )?,
        };
        if limits.max_items_per_request > batch.queue_capacity {
            return Err(ConfigError::Invalid {
                field: "queue_capacity",
                message: format!(
                    "{} is below max_items_per_request ({}): one full request could never be queued",
                    batch.queue_capacity, limits.max_items_per_request
                ),
            });
        }
        if limits.max_bytes_per_request + (1 << 20) > limits.max_message_bytes {
            return Err(ConfigError::Invalid {
                field: "max_message_bytes",
                message: format!(
                    "{} leaves no room for a request of max_bytes_per_request ({}) plus 1 MiB of framing",
                    limits.max_message_bytes, limits.max_bytes_per_request
                ),
            });
        }
        if let Some(0) = a.max_length {
            return Err(ConfigError::Invalid {
                field: "max_length",
                message: "must be at least 3 ([CLS] text [SEP])".into(),
            });
        }
        let migraphx = engine.kind == EngineKind::Ort && engine.provider == Provider::Migraphx;
        let shapes = ShapeConfig {
            rows: a.shape_rows.unwrap_or_else(|| {
                if migraphx {
                    let mut rows: Vec<usize> = [1, 4, 16]
                        .into_iter()
                        .filter(|&r| r < batch.max_rows)
                        .collect();
                    rows.push(batch.max_rows);
                    rows
                } else {
                    Vec::new()
                }
            }),
            seq: a
                .shape_seq
                .unwrap_or_else(|| if migraphx { vec![128, 256] } else { Vec::new() }),
        };
        if shapes.rows.contains(&0) || shapes.seq.contains(&0) {
            return Err(ConfigError::Invalid {
                field: "shape_rows",
                message: "static shapes must be at least 1 (rows and sequence lengths)".into(),
            });
        }
        Ok(Config {
            listen: a
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9000))),
            model_dir,
            max_length: a.max_length,
            engine,
            batch,
            limits,
            shapes,
            log_format: a.log_format.unwrap_or(LogFormat::Text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_model() -> ServeArgs {
        ServeArgs {
            model_dir: Some("m".into()),
            ..Default::default()
        }
    }

    #[test]
    fn flag_beats_file_and_file_beats_default() {
        let file: ServeArgs =
            toml::from_str("batch_max_rows = 7\nthreads = 3\nlisten = \"127.0.0.1:9100\"").unwrap();
        let flags = ServeArgs {
            threads: Some(1),
            ..with_model()
        };
        let c = Config::resolve(flags, Some(file), None).unwrap();
        assert_eq!(c.engine.threads, 1);
        assert_eq!(c.batch.max_rows, 7);
        assert_eq!(c.listen.port(), 9100);
        assert_eq!(c.batch.max_tokens, 8192);
    }

    #[test]
    fn missing_model_dir_says_which_flag() {
        let err = Config::resolve(ServeArgs::default(), None, None).unwrap_err();
        assert!(err.to_string().contains("--model-dir"), "{err}");
    }

    #[test]
    fn unknown_file_key_is_rejected() {
        assert!(toml::from_str::<ServeArgs>("batch_rows = 3").is_err());
    }

    #[test]
    fn candle_on_gpu_is_rejected() {
        let args = ServeArgs {
            engine: Some(EngineKind::Candle),
            provider: Some(Provider::Cuda),
            ..with_model()
        };
        let err = Config::resolve(args, None, None).unwrap_err();
        assert!(err.to_string().contains("candle"), "{err}");
    }

    #[test]
    fn migraphx_gets_static_shapes_and_cpu_does_not() {
        let cpu = Config::resolve(with_model(), None, None).unwrap();
        assert!(cpu.shapes.rows.is_empty() && cpu.shapes.seq.is_empty());
        let args = ServeArgs {
            provider: Some(Provider::Migraphx),
            ..with_model()
        };
        let gpu = Config::resolve(args, None, None).unwrap();
        assert_eq!(gpu.shapes.rows, vec![1, 4, 16, 32]);
        assert_eq!(gpu.shapes.seq, vec![128, 256]);
    }

    #[test]
    fn zero_budget_is_rejected() {
        let args = ServeArgs {
            batch_max_tokens: Some(0),
            ..with_model()
        };
        assert!(Config::resolve(args, None, None).is_err());
    }
}
