//! The server's one typed configuration: flags, `HEMMA_*` environment and an optional TOML file.
//!
//! Precedence is flag > environment > file > default. [`ServeArgs`] is the raw layer (every field
//! optional, shared by clap and the TOML file); [`Config::resolve`] merges the layers, applies
//! defaults and validates once at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use hemma_embed::settings::{
    BatchConfig, EngineConfig, EngineKind, Precision, Provider, ShapeConfig,
};
pub use languagetool_pool::settings::{Flavour, LanguageToolConfig};

/// `upper` over `lower`, key by key: a setting `upper` leaves unset comes from `lower`.
///
/// Both layers go through their serde form (every unset `Option` is `null`), so the merge
/// needs no list of fields that could fall out of step with [`ServeArgs`]; `None` only if a
/// layer does not round-trip, which the unit tests rule out.
fn layered<T: Serialize + serde::de::DeserializeOwned>(upper: &T, lower: &T) -> Option<T> {
    let (serde_json::Value::Object(mut merged), serde_json::Value::Object(lower)) = (
        serde_json::to_value(upper).ok()?,
        serde_json::to_value(lower).ok()?,
    ) else {
        return None;
    };
    for (key, value) in lower {
        let entry = merged.entry(key).or_insert(serde_json::Value::Null);
        if entry.is_null() {
            *entry = value;
        }
    }
    serde_json::from_value(serde_json::Value::Object(merged)).ok()
}

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

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// One layer of settings: command-line flags (with `HEMMA_*` env) or the TOML file.
///
/// Every field is optional so that layers can be merged; defaults live in [`Config::resolve`].
#[derive(Debug, Clone, Default, clap::Args, Serialize, Deserialize)]
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
    /// Distinct strings (essays, prompts, sentences, paragraphs) one extraction may embed; more answer RESOURCE_EXHAUSTED [default: 131072].
    #[arg(long, env = "HEMMA_MAX_STRINGS_PER_REQUEST")]
    pub max_strings_per_request: Option<usize>,
    /// Listen on a non-loopback address (anyone who reaches the port can use the server) [default: false].
    #[arg(long, env = "HEMMA_ALLOW_REMOTE", num_args = 0..=1, default_missing_value = "true")]
    pub allow_remote: Option<bool>,
    /// Open connections at most; more wait in the listen backlog [default: 256].
    #[arg(long, env = "HEMMA_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Concurrent HTTP/2 streams (calls) per connection [default: 64].
    #[arg(long, env = "HEMMA_MAX_CONCURRENT_STREAMS")]
    pub max_concurrent_streams: Option<u32>,
    /// Seconds a client has to send a request's headers (HTTP/1) [default: 10].
    #[arg(long, env = "HEMMA_HEADER_READ_TIMEOUT_SECS")]
    pub header_read_timeout_secs: Option<f64>,
    /// Seconds between HTTP/2 keepalive pings; a peer that does not answer within the same time is dropped [default: 30].
    #[arg(long, env = "HEMMA_KEEPALIVE_SECS")]
    pub keepalive_secs: Option<f64>,
    /// Seconds in-flight requests get to finish after a shutdown signal before their connections are cut [default: 30].
    #[arg(long, env = "HEMMA_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<f64>,
    /// Static batch row counts, comma-separated; batches are padded up to one [default: none, or 1,4,16 and batch_max_rows with migraphx].
    #[arg(long, env = "HEMMA_SHAPE_ROWS", value_delimiter = ',')]
    pub shape_rows: Option<Vec<usize>>,
    /// Static sequence lengths, comma-separated; max_length is always added [default: none, or 128,256 with migraphx].
    #[arg(long, env = "HEMMA_SHAPE_SEQ", value_delimiter = ',')]
    pub shape_seq: Option<Vec<usize>>,
    /// Folder of the native NLP models: `spacy/` and `hyphenation/` (the repository's `models/`) [default: models].
    #[arg(long, env = "HEMMA_NLP_MODELS_DIR")]
    pub nlp_models_dir: Option<PathBuf>,
    /// Essays parsed at once on the blocking pool [default: the number of cores].
    #[arg(long, env = "HEMMA_NLP_THREADS")]
    pub nlp_threads: Option<usize>,
    /// Chunks of one ExtractStream worked on at once; later ones wait (HTTP/2 flow control) [default: 4].
    #[arg(long, env = "HEMMA_STREAM_CHUNKS_IN_FLIGHT")]
    pub stream_chunks_in_flight: Option<usize>,
    /// Log format [default: text].
    #[arg(long, env = "HEMMA_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// LanguageTool base URLs, comma-separated (one per instance); unset: no LanguageTool.
    #[arg(long, env = "HEMMA_LANGUAGETOOL_URL", value_delimiter = ',')]
    pub languagetool_url: Option<Vec<String>>,
    /// API of the LanguageTool upstreams [default: languagetool].
    #[arg(long, env = "HEMMA_LANGUAGETOOL_FLAVOUR", value_enum)]
    pub languagetool_flavour: Option<Flavour>,
    /// The LanguageTool version behind the wrapper flavour, which does not report it (required with `--languagetool-flavour wrapper`; it is part of the fingerprint).
    #[arg(long, env = "HEMMA_LANGUAGETOOL_VERSION")]
    pub languagetool_version: Option<String>,
    /// Language code of checks [default: en-US].
    #[arg(long, env = "HEMMA_LANGUAGETOOL_LANGUAGE")]
    pub languagetool_language: Option<String>,
    /// LanguageTool level, `default` or `picky` [default: default].
    #[arg(long, env = "HEMMA_LANGUAGETOOL_LEVEL")]
    pub languagetool_level: Option<String>,
    /// Rule ids to enable, comma-separated.
    #[arg(long, env = "HEMMA_LANGUAGETOOL_ENABLED_RULES", value_delimiter = ',')]
    pub languagetool_enabled_rules: Option<Vec<String>>,
    /// Rule ids to disable, comma-separated.
    #[arg(long, env = "HEMMA_LANGUAGETOOL_DISABLED_RULES", value_delimiter = ',')]
    pub languagetool_disabled_rules: Option<Vec<String>>,
    /// Category ids to enable, comma-separated.
    #[arg(
        long,
        env = "HEMMA_LANGUAGETOOL_ENABLED_CATEGORIES",
        value_delimiter = ','
    )]
    pub languagetool_enabled_categories: Option<Vec<String>>,
    /// Category ids to disable, comma-separated.
    #[arg(
        long,
        env = "HEMMA_LANGUAGETOOL_DISABLED_CATEGORIES",
        value_delimiter = ','
    )]
    pub languagetool_disabled_categories: Option<Vec<String>>,
    /// Run only the enabled rules and categories [default: false].
    #[arg(long, env = "HEMMA_LANGUAGETOOL_ENABLED_ONLY", num_args = 0..=1, default_missing_value = "true")]
    pub languagetool_enabled_only: Option<bool>,
    /// LanguageTool checks in flight across all instances at most [default: 4 per instance].
    #[arg(long, env = "HEMMA_LANGUAGETOOL_MAX_IN_FLIGHT")]
    pub languagetool_max_in_flight: Option<usize>,
    /// Seconds to wait for one LanguageTool answer [default: 60].
    #[arg(long, env = "HEMMA_LANGUAGETOOL_TIMEOUT_SECS")]
    pub languagetool_timeout_secs: Option<f64>,
    /// Seconds between probes of a healthy instance [default: 5].
    #[arg(long, env = "HEMMA_LANGUAGETOOL_PROBE_SECS")]
    pub languagetool_probe_secs: Option<f64>,
    /// Memory budget of the check-result cache in bytes; 0 disables it [default: 268435456].
    #[arg(long, env = "HEMMA_LANGUAGETOOL_CACHE_BYTES")]
    pub languagetool_cache_bytes: Option<usize>,
    /// Folder for a disk cache of check results that survives restarts [default: none].
    #[arg(long, env = "HEMMA_LANGUAGETOOL_CACHE_DIR")]
    pub languagetool_cache_dir: Option<PathBuf>,
    /// Size cap of the disk cache in bytes; past it the least recently used results go first [default: 1073741824].
    #[arg(long, env = "HEMMA_LANGUAGETOOL_DISK_CACHE_MAX_BYTES")]
    pub languagetool_disk_cache_max_bytes: Option<u64>,
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
        layered(&self, &lower).unwrap_or(self)
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
    /// Distinct strings one extraction may embed.
    pub max_strings_per_request: usize,
}

/// How the listener treats connections.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TransportConfig {
    /// Open connections at most.
    pub max_connections: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Time to send a request's headers (HTTP/1).
    pub header_read_timeout: std::time::Duration,
    /// HTTP/2 keepalive ping interval (and the time to answer one).
    pub keepalive: std::time::Duration,
    /// Time in-flight requests get after a shutdown signal.
    pub shutdown_grace: std::time::Duration,
}

/// The native NLP pipeline (handcrafted features).
#[derive(Debug, Clone, Serialize)]
pub struct NlpConfig {
    /// Folder holding `spacy/` and `hyphenation/`.
    pub models_dir: PathBuf,
    /// Essays parsed at once.
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
    /// Connection handling.
    pub transport: TransportConfig,
    /// The native NLP pipeline.
    pub nlp: NlpConfig,
    /// Chunks of one ExtractStream in progress at once.
    pub stream_chunks_in_flight: usize,
    /// Log format.
    pub log_format: LogFormat,
    /// LanguageTool, when configured.
    pub languagetool: Option<LanguageToolConfig>,
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
        let languagetool = languagetool(&a)?;
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
            max_strings_per_request: positive(
                "max_strings_per_request",
                a.max_strings_per_request.unwrap_or(131_072),
            )?,
        };
        let listen = a
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9000)));
        if !listen.ip().is_loopback() && !a.allow_remote.unwrap_or(false) {
            return Err(ConfigError::Invalid {
                field: "listen",
                message: format!(
                    "{listen} is not a loopback address: anyone who reaches it could use the \
                     server. Pass --allow-remote (HEMMA_ALLOW_REMOTE=true) to mean it, and \
                     publish the port on 127.0.0.1 only (docker: -p 127.0.0.1:9000:9000)"
                ),
            });
        }
        let transport = TransportConfig {
            max_connections: positive("max_connections", a.max_connections.unwrap_or(256))?,
            max_concurrent_streams: u32::try_from(positive(
                "max_concurrent_streams",
                a.max_concurrent_streams.unwrap_or(64) as usize,
            )?)
            .unwrap_or(u32::MAX),
            header_read_timeout: seconds(
                "header_read_timeout_secs",
                a.header_read_timeout_secs.unwrap_or(10.0),
            )?,
            keepalive: seconds("keepalive_secs", a.keepalive_secs.unwrap_or(30.0))?,
            shutdown_grace: seconds("shutdown_grace_secs", a.shutdown_grace_secs.unwrap_or(30.0))?,
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
            listen,
            transport,
            model_dir,
            max_length: a.max_length,
            engine,
            batch,
            limits,
            shapes,
            nlp: NlpConfig {
                models_dir: a.nlp_models_dir.unwrap_or_else(|| PathBuf::from("models")),
                threads: positive(
                    "nlp_threads",
                    a.nlp_threads.unwrap_or_else(|| {
                        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
                    }),
                )?,
            },
            stream_chunks_in_flight: positive(
                "stream_chunks_in_flight",
                a.stream_chunks_in_flight.unwrap_or(4),
            )?,
            log_format: a.log_format.unwrap_or(LogFormat::Text),
            languagetool,
        })
    }
}

fn seconds(field: &'static str, value: f64) -> Result<std::time::Duration, ConfigError> {
    if !(value.is_finite() && value > 0.0 && value < 86_400.0) {
        return Err(ConfigError::Invalid {
            field,
            message: format!("{value} must be a number of seconds above 0 and below a day"),
        });
    }
    Ok(std::time::Duration::from_secs_f64(value))
}

/// The LanguageTool settings, or None when no URL is given (the other settings are then ignored).
fn languagetool(a: &ServeArgs) -> Result<Option<LanguageToolConfig>, ConfigError> {
    let Some(urls) = a.languagetool_url.clone() else {
        return Ok(None);
    };
    let urls: Vec<String> = urls
        .into_iter()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        return Ok(None);
    }
    for url in &urls {
        let ok = (url.starts_with("http://") || url.starts_with("https://"))
            && url.parse::<http::Uri>().is_ok();
        if !ok {
            return Err(ConfigError::Invalid {
                field: "languagetool_url",
                message: format!(
                    "{:?} is not an http:// or https:// URL",
                    languagetool_pool::upstream::redact(url)
                ),
            });
        }
    }
    let flavour = a.languagetool_flavour.unwrap_or(Flavour::Languagetool);
    let version = a
        .languagetool_version
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let invalid = |field, message: &str| ConfigError::Invalid {
        field,
        message: message.to_owned(),
    };
    match flavour {
        Flavour::Wrapper if version.is_none() => {
            return Err(invalid(
                "languagetool_version",
                "the wrapper flavour does not report its LanguageTool version: set \
                 --languagetool-version to the version it runs (e.g. 6.7); it is part of the fingerprint",
            ));
        }
        Flavour::Wrapper if a.languagetool_level.is_some() => {
            return Err(invalid(
                "languagetool_level",
                "the wrapper flavour takes no level: remove --languagetool-level",
            ));
        }
        Flavour::Languagetool if version.is_some() => {
            return Err(invalid(
                "languagetool_version",
                "LanguageTool's own API reports its version: --languagetool-version is for the \
                 wrapper flavour only",
            ));
        }
        _ => {}
    }
    let defaults = languagetool_pool::CheckOptions::default();
    let options = languagetool_pool::CheckOptions {
        language: a.languagetool_language.clone().unwrap_or(defaults.language),
        level: a.languagetool_level.clone().unwrap_or(defaults.level),
        enabled_rules: a.languagetool_enabled_rules.clone().unwrap_or_default(),
        disabled_rules: a.languagetool_disabled_rules.clone().unwrap_or_default(),
        enabled_categories: a
            .languagetool_enabled_categories
            .clone()
            .unwrap_or_default(),
        disabled_categories: a
            .languagetool_disabled_categories
            .clone()
            .unwrap_or_default(),
        enabled_only: a.languagetool_enabled_only.unwrap_or(false),
    };
    options.validate().map_err(|e| ConfigError::Invalid {
        field: "languagetool_*",
        message: e.to_string(),
    })?;
    let pool = languagetool_pool::pool::PoolConfig {
        timeout: seconds(
            "languagetool_timeout_secs",
            a.languagetool_timeout_secs.unwrap_or(60.0),
        )?,
        max_in_flight: positive(
            "languagetool_max_in_flight",
            a.languagetool_max_in_flight.unwrap_or(4 * urls.len()),
        )?,
        probe_interval: seconds(
            "languagetool_probe_secs",
            a.languagetool_probe_secs.unwrap_or(5.0),
        )?,
        ..Default::default()
    };
    let disk_cache_max_bytes = a
        .languagetool_disk_cache_max_bytes
        .unwrap_or(languagetool_pool::settings::DEFAULT_DISK_CACHE_MAX_BYTES);
    if disk_cache_max_bytes == 0 {
        return Err(invalid(
            "languagetool_disk_cache_max_bytes",
            "must be at least 1 (leave --languagetool-cache-dir unset for no disk cache)",
        ));
    }
    Ok(Some(LanguageToolConfig {
        urls,
        flavour,
        version,
        options,
        pool,
        cache_bytes: a.languagetool_cache_bytes.unwrap_or(256 << 20),
        cache_dir: a.languagetool_cache_dir.clone(),
        disk_cache_max_bytes,
    }))
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
    fn every_setting_survives_the_layer_merge_in_both_directions() {
        // Every field set, of every kind (addresses, paths, enums, lists, floats, booleans).
        let full: ServeArgs = toml::from_str(
            r#"
            listen = "127.0.0.1:9100"
            model_dir = "/m"
            engine = "candle"
            provider = "cuda"
            device_id = 1
            precision = "fp16"
            ort_dylib = "/lib.so"
            threads = 3
            max_length = 128
            batch_max_tokens = 100
            batch_max_rows = 7
            queue_capacity = 9
            max_items_per_request = 5
            max_bytes_per_text = 10
            max_bytes_per_request = 20
            max_message_bytes = 30
            shape_rows = [1, 4]
            shape_seq = [64]
            nlp_models_dir = "/n"
            nlp_threads = 2
            stream_chunks_in_flight = 3
            log_format = "json"
            languagetool_url = ["http://a", "http://b"]
            languagetool_flavour = "wrapper"
            languagetool_version = "6.7"
            languagetool_language = "en-GB"
            languagetool_level = "picky"
            languagetool_enabled_rules = ["R1"]
            languagetool_disabled_rules = ["R2"]
            languagetool_enabled_categories = ["C1"]
            languagetool_disabled_categories = ["C2"]
            languagetool_enabled_only = true
            languagetool_max_in_flight = 8
            languagetool_timeout_secs = 2.5
            languagetool_probe_secs = 1.5
            languagetool_cache_bytes = 11
            languagetool_cache_dir = "/c"
            languagetool_disk_cache_max_bytes = 12
            max_strings_per_request = 13
            allow_remote = true
            max_connections = 14
            max_concurrent_streams = 15
            header_read_timeout_secs = 1.25
            keepalive_secs = 16.0
            shutdown_grace_secs = 17.0
            "#,
        )
        .unwrap();
        let debug = |a: &ServeArgs| format!("{a:?}");
        assert!(!debug(&full).contains("None"), "the test sets every field");
        assert_eq!(debug(&ServeArgs::default().or(full.clone())), debug(&full));
        assert_eq!(debug(&full.clone().or(ServeArgs::default())), debug(&full));
        let upper = ServeArgs {
            threads: Some(1),
            ..Default::default()
        };
        let merged = upper.or(full.clone());
        assert_eq!(merged.threads, Some(1));
        assert_eq!(merged.languagetool_timeout_secs, Some(2.5));
    }

    #[test]
    fn a_non_loopback_listen_address_needs_allow_remote() {
        let remote = ServeArgs {
            listen: Some("0.0.0.0:9000".parse().unwrap()),
            ..with_model()
        };
        let err = Config::resolve(remote.clone(), None, None).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("--allow-remote"), "{text}");
        assert!(text.contains("127.0.0.1:9000:9000"), "{text}");
        let allowed = ServeArgs {
            allow_remote: Some(true),
            ..remote
        };
        assert_eq!(
            Config::resolve(allowed, None, None)
                .unwrap()
                .listen
                .to_string(),
            "0.0.0.0:9000"
        );
        let loopback = ServeArgs {
            listen: Some("[::1]:9000".parse().unwrap()),
            ..with_model()
        };
        assert!(Config::resolve(loopback, None, None).is_ok());
    }

    #[test]
    fn transport_settings_have_defaults_and_refuse_zero() {
        let c = Config::resolve(with_model(), None, None).unwrap();
        assert_eq!(c.transport.max_connections, 256);
        assert_eq!(c.transport.max_concurrent_streams, 64);
        assert_eq!(c.transport.header_read_timeout.as_secs(), 10);
        assert_eq!(c.limits.max_strings_per_request, 131_072);
        let zero = ServeArgs {
            header_read_timeout_secs: Some(0.0),
            ..with_model()
        };
        let err = Config::resolve(zero, None, None).unwrap_err().to_string();
        assert!(err.contains("header_read_timeout_secs"), "{err}");
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
    fn languagetool_is_off_without_a_url_and_validated_with_one() {
        assert!(
            Config::resolve(with_model(), None, None)
                .unwrap()
                .languagetool
                .is_none()
        );
        let args = ServeArgs {
            languagetool_url: Some(vec![
                "http://127.0.0.1:8081".into(),
                "http://127.0.0.1:8082/".into(),
            ]),
            ..with_model()
        };
        let lt = Config::resolve(args, None, None)
            .unwrap()
            .languagetool
            .unwrap();
        assert_eq!(lt.urls.len(), 2);
        assert_eq!(lt.options.language, "en-US");
        assert_eq!(lt.pool.max_in_flight, 8);
        assert_eq!(lt.flavour, Flavour::Languagetool);
        assert_eq!(lt.disk_cache_max_bytes, 1 << 30);
        let bad = |f: fn(&mut ServeArgs)| {
            let mut a = ServeArgs {
                languagetool_url: Some(vec!["http://127.0.0.1:8081".into()]),
                ..with_model()
            };
            f(&mut a);
            Config::resolve(a, None, None).unwrap_err().to_string()
        };
        assert!(bad(|a| a.languagetool_url = Some(vec!["localhost:8081".into()])).contains("URL"));
        assert!(bad(|a| a.languagetool_level = Some("strict".into())).contains("level"));
        assert!(bad(|a| a.languagetool_timeout_secs = Some(0.0)).contains("timeout"));
        assert!(
            bad(|a| a.languagetool_disk_cache_max_bytes = Some(0))
                .contains("languagetool_disk_cache_max_bytes")
        );
        let leaky = bad(|a| {
            a.languagetool_url = Some(vec!["user:secret@127.0.0.1:8081".into()]);
        });
        assert!(
            leaky.contains("URL") && !leaky.contains("secret"),
            "{leaky}"
        );
        // The wrapper flavour: a configured version, no level; the version only there.
        let wrapper = |a: &mut ServeArgs| a.languagetool_flavour = Some(Flavour::Wrapper);
        assert!(bad(wrapper).contains("--languagetool-version"));
        assert!(
            bad(|a| {
                a.languagetool_flavour = Some(Flavour::Wrapper);
                a.languagetool_version = Some("6.7".into());
                a.languagetool_level = Some("picky".into());
            })
            .contains("takes no level")
        );
        assert!(
            bad(|a| a.languagetool_version = Some("6.7".into())).contains("wrapper flavour only")
        );
        let lt = Config::resolve(
            ServeArgs {
                languagetool_url: Some(vec!["http://127.0.0.1:8010".into()]),
                languagetool_flavour: Some(Flavour::Wrapper),
                languagetool_version: Some(" 6.7 ".into()),
                ..with_model()
            },
            None,
            None,
        )
        .unwrap()
        .languagetool
        .unwrap();
        assert_eq!(lt.version.as_deref(), Some("6.7"));
    }

    #[test]
    fn languagetool_settings_come_from_the_file_too() {
        let file: ServeArgs = toml::from_str(
            "languagetool_url = [\"http://127.0.0.1:8081\"]\nlanguagetool_flavour = \"wrapper\"\nlanguagetool_version = \"6.7\"\nlanguagetool_disabled_rules = [\"WHITESPACE_RULE\"]",
        )
        .unwrap();
        let lt = Config::resolve(with_model(), Some(file), None)
            .unwrap()
            .languagetool
            .unwrap();
        assert_eq!(lt.flavour, Flavour::Wrapper);
        assert_eq!(lt.options.disabled_rules, vec!["WHITESPACE_RULE"]);
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
