//! `hemma-offload selftest`: proves which execution provider the configured engine really uses,
//! and that it computes what ONNX Runtime on the CPU (fp32, the reference) computes on a fixed
//! set of texts. An operator runs it after a deploy or a driver update (docs/operations).

use std::time::Instant;

use serde::Serialize;

use crate::config::{Config, EngineKind, Precision, Provider};
use crate::server::ServeError;
use hemma_embed::TokenBatch;
use hemma_embed::factory::engine_loader;
use hemma_embed::model::ModelDir;
use hemma_embed::tokenize::TextTokenizer;

/// The texts embedded by both engines: short, long, non-ASCII, and an empty one.
pub const TEXTS: [&str; 6] = [
    "I think students should be allowed to use their phones at school.",
    "Technology has changed how people communicate. Some say it brings us closer; others say it \
     keeps us apart, because we look at screens instead of each other. In my opinion both are \
     true, and it depends on how we use it every day.",
    "Café, naïve, 東京, emoji 🙂 and a long-hyphenated-compound word.",
    "",
    "Summer projects help students learn on their own.\n\nTeachers should design them.",
    "The the the the the the the the the the the the the the the the the the the the.",
];

/// What the self-check found.
#[derive(Debug, Clone, Serialize)]
pub struct SelftestReport {
    /// The engine under test (`ort` or `candle`).
    pub engine: String,
    /// The execution provider the configuration asks for.
    pub provider_requested: String,
    /// The provider the loaded engine reports.
    pub provider_in_use: String,
    /// Precision under test.
    pub precision: String,
    /// The engine the vectors are compared with.
    pub reference: String,
    /// Texts embedded.
    pub texts: usize,
    /// Embedding width.
    pub dim: usize,
    /// Largest absolute difference between the two engines' vectors.
    pub max_abs_diff: f32,
    /// Smallest cosine between the two engines' vectors of the same text.
    pub min_cosine: f32,
    /// Largest difference accepted.
    pub tolerance: f32,
    /// Seconds the engine under test took for the batch (after loading).
    pub seconds: f64,
    /// Seconds the reference took.
    pub reference_seconds: f64,
    /// Provider as asked, and vectors within tolerance.
    pub pass: bool,
}

/// Loads the configured engine and the reference, embeds [`TEXTS`] with both, compares.
pub fn run(config: &Config) -> Result<SelftestReport, ServeError> {
    let model = ModelDir::open(&config.model_dir)?;
    let max_length = config.max_length.unwrap_or(model.manifest().max_length);
    let tokenizer_file = model.verify("tokenizer.json", "tokenizer")?;
    let tokenizer = TextTokenizer::from_file(&tokenizer_file.path, max_length)?;
    let ids = TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| tokenizer.encode(i, t).map(|e| e.ids))
        .collect::<Result<Vec<_>, _>>()?;
    let rows: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let batch = TokenBatch::pad(&rows);

    let engine = &config.engine;
    let (got, info, seconds) = embed_with(config, &model, &batch)?;
    // The reference is ONNX Runtime fp32 on the CPU; when that is what is under test, candle
    // (an independent implementation) checks it instead.
    let mut reference = config.clone();
    let ort_cpu_fp32 = engine.kind == EngineKind::Ort
        && engine.provider == Provider::Cpu
        && engine.precision == Precision::Fp32;
    reference.engine.kind = if ort_cpu_fp32 {
        EngineKind::Candle
    } else {
        EngineKind::Ort
    };
    reference.engine.provider = Provider::Cpu;
    reference.engine.precision = Precision::Fp32;
    let (want, reference_info, reference_seconds) = embed_with(&reference, &model, &batch)?;

    let mut max_abs_diff = 0f32;
    let mut min_cosine = 1f32;
    for (a, b) in got.rows().into_iter().zip(want.rows()) {
        let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
        for (x, y) in a.iter().zip(b.iter()) {
            max_abs_diff = max_abs_diff.max((x - y).abs());
            dot += f64::from(*x) * f64::from(*y);
            na += f64::from(*x) * f64::from(*x);
            nb += f64::from(*y) * f64::from(*y);
        }
        min_cosine = min_cosine.min((dot / (na.sqrt() * nb.sqrt()).max(1e-30)) as f32);
    }
    let tolerance = match engine.precision {
        Precision::Fp32 => 1e-3,
        Precision::Fp16 => 5e-2,
    };
    let provider_requested = match engine.kind {
        EngineKind::Ort => engine.provider.name(),
        EngineKind::Candle => "cpu".to_owned(),
    };
    let pass = info.provider == provider_requested
        && max_abs_diff.is_finite()
        && max_abs_diff <= tolerance;
    Ok(SelftestReport {
        engine: info.engine,
        provider_requested,
        provider_in_use: info.provider,
        precision: info.precision,
        reference: format!(
            "{} {} {}",
            reference_info.engine, reference_info.provider, reference_info.precision
        ),
        texts: TEXTS.len(),
        dim: got.ncols(),
        max_abs_diff,
        min_cosine,
        tolerance,
        seconds,
        reference_seconds,
        pass,
    })
}

/// Loads the engine `config` describes and embeds `batch` once.
fn embed_with(
    config: &Config,
    model: &ModelDir,
    batch: &TokenBatch,
) -> Result<(ndarray::Array2<f32>, hemma_embed::EngineInfo, f64), ServeError> {
    let name = config.engine.kind.name();
    let engine_err = |source| ServeError::Engine {
        engine: name.clone(),
        source,
    };
    let (loader, _) = engine_loader(&config.engine, model)?;
    let mut engine = loader().map_err(engine_err)?;
    let info = engine.info();
    let started = Instant::now();
    let vectors = engine.embed(batch).map_err(engine_err)?;
    Ok((vectors, info, started.elapsed().as_secs_f64()))
}
