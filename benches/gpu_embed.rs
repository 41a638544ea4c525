//! ONNX Runtime embedding throughput at a fixed sequence length, the way a GPU should be driven:
//! inputs bound per batch, only the CLS rows copied back (the `cls` graph written by
//! `benches/gpu/cls_graph.py`). Part of the one-shot GPU check, `benches/gpu.sh`, which also runs
//! it on the CPU (`--cpu-dry-run`) so the path is tested where no GPU is.
//!
//! ```text
//! gpu_embed --model-dir DIR [--provider cuda|cpu] [--precisions fp32,fp16] [--seq 512]
//!     [--batch 16] [--batches 8] [--warmup 2] [--threads 0] [--out DIR] [--ort-dylib PATH]
//! ```
//! Synthetic inputs: `--batches` batches of `--batch` rows of exactly `--seq` tokens (`[CLS]`,
//! ids drawn from the vocabulary, `[SEP]`), the same for every precision; written to
//! `OUT/tokens.json` for the torch side. Prints one JSON line per precision (essays/s, seconds
//! per batch) and one comparing fp16 with fp32 (cosine), and writes `OUT/cls_<precision>.npy`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use ndarray::{Array2, Axis};
use ort::environment::Environment;
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use serde_json::json;

/// Command line (see the module comment).
#[derive(clap::Parser)]
struct Args {
    /// Model folder with model.cls.onnx / model.fp16.cls.onnx and manifest.json.
    #[arg(long)]
    model_dir: PathBuf,
    /// Execution provider: cuda or cpu.
    #[arg(long, default_value = "cuda", value_parser = ["cuda", "cpu"])]
    provider: String,
    /// Precisions to run, comma-separated.
    #[arg(long, default_value = "fp32,fp16", value_delimiter = ',', value_parser = ["fp32", "fp16"])]
    precisions: Vec<String>,
    /// Tokens per row (every row is full).
    #[arg(long, default_value_t = 512, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(2..), usize::from))]
    seq: usize,
    /// Rows per batch.
    #[arg(long, default_value_t = 16, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(1..), usize::from))]
    batch: usize,
    /// Timed batches.
    #[arg(long, default_value_t = 8, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(1..), usize::from))]
    batches: usize,
    /// Untimed batches first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Intra-op threads; 0 = ONNX Runtime's default.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Where tokens.json and cls_ort_<precision>.npy go.
    #[arg(long, env = "OUT", default_value = ".")]
    out: PathBuf,
    /// libonnxruntime.so (the CUDA build for --provider cuda).
    #[arg(long, env = "ORT_DYLIB_PATH")]
    ort_dylib: PathBuf,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The vocabulary size from the model folder's manifest.
fn vocab_size(model_dir: &Path) -> anyhow::Result<i64> {
    let path = model_dir.join("manifest.json");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))?;
    manifest["vocab_size"]
        .as_i64()
        .filter(|&v| v > 3)
        .with_context(|| format!("{}: no vocab_size", path.display()))
}

/// `batches` full-length id matrices: `[CLS]` (1), ids in `3..vocab` from a fixed-seed
/// generator, `[SEP]` (2). Every row is `seq` long, so no padding and every row costs the same.
fn synthetic_batches(batches: usize, batch: usize, seq: usize, vocab: i64) -> Vec<Array2<i64>> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*: deterministic and good enough to spread ids over the vocabulary.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    (0..batches)
        .map(|_| {
            Array2::from_shape_fn((batch, seq), |(_, j)| match j {
                0 => 1,
                j if j == seq - 1 => 2,
                _ => 3 + (next() % (vocab as u64 - 3)) as i64,
            })
        })
        .collect()
}

/// One precision's timing and CLS rows.
struct Measured {
    seconds_per_batch: f64,
    cls: Array2<f32>,
}

fn measure(
    env: &Environment,
    a: &Args,
    model: &Path,
    inputs: &[Array2<i64>],
) -> anyhow::Result<Measured> {
    // Builder errors carry the builder, which is not `Send`: keep only their sentence.
    let said = |e: ort::Error<ort::session::builder::SessionBuilder>| anyhow::anyhow!("{e}");
    let mut builder = Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(said)?;
    if a.threads > 0 {
        builder = builder.with_intra_threads(a.threads).map_err(said)?;
    }
    match a.provider.as_str() {
        "cpu" => {}
        "cuda" => {
            builder = builder
                .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
                .map_err(said)
                .context("the CUDA execution provider failed to register")?;
        }
        other => bail!("--provider {other}: use cuda or cpu"),
    }
    let mut session = builder
        .commit_from_file(model)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("loading {}", model.display()))?;
    // Outputs land in host memory; the graph's only output is `cls`, so only CLS rows move.
    let host = MemoryInfo::new(
        AllocationDevice::CPU,
        0,
        AllocatorType::Device,
        MemoryType::Default,
    )?;
    let mask = Array2::<i64>::ones(inputs[0].dim());
    let mask = Tensor::from_array(mask)?;
    let mut run = |ids: &Array2<i64>| -> anyhow::Result<Array2<f32>> {
        let mut binding = session.create_binding()?;
        binding.bind_input("input_ids", &Tensor::from_array(ids.clone())?)?;
        binding.bind_input("attention_mask", &mask)?;
        binding.bind_output_to_device("cls", &host)?;
        let outputs = session.run_binding(&binding)?;
        let cls = outputs["cls"].try_extract_array::<f32>()?;
        Ok(cls.into_dimensionality::<ndarray::Ix2>()?.to_owned())
    };
    for ids in inputs.iter().cycle().take(a.warmup) {
        run(ids)?;
    }
    let started = Instant::now();
    let mut rows = Vec::with_capacity(inputs.len());
    for ids in inputs {
        rows.push(run(ids)?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
    Ok(Measured {
        seconds_per_batch: seconds / inputs.len() as f64,
        cls: ndarray::concatenate(Axis(0), &views)?,
    })
}

/// Smallest and mean cosine between rows of `a` and `b`.
fn cosines(a: &Array2<f32>, b: &Array2<f32>) -> (f64, f64) {
    let values: Vec<f64> = a
        .outer_iter()
        .zip(b.outer_iter())
        .map(|(x, y)| {
            let dot: f64 = x
                .iter()
                .zip(y)
                .map(|(p, q)| f64::from(*p) * f64::from(*q))
                .sum();
            let nx: f64 = x.iter().map(|p| f64::from(*p).powi(2)).sum::<f64>().sqrt();
            let ny: f64 = y.iter().map(|q| f64::from(*q).powi(2)).sum::<f64>().sqrt();
            dot / (nx * ny)
        })
        .collect();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    (min, values.iter().sum::<f64>() / values.len() as f64)
}

fn main() -> anyhow::Result<()> {
    let a = <Args as clap::Parser>::parse();
    let env = ort::init_from(&a.ort_dylib)
        .with_context(|| format!("loading ONNX Runtime from {}", a.ort_dylib.display()))?
        .with_name("gpu_embed")
        .build()?;
    std::fs::create_dir_all(&a.out)?;
    let inputs = synthetic_batches(a.batches, a.batch, a.seq, vocab_size(&a.model_dir)?);
    let tokens: Vec<Vec<Vec<i64>>> = inputs
        .iter()
        .map(|b| b.outer_iter().map(|r| r.to_vec()).collect())
        .collect();
    std::fs::write(
        a.out.join("tokens.json"),
        json!({ "batches": tokens }).to_string(),
    )?;
    let mut cls = std::collections::BTreeMap::new();
    for precision in &a.precisions {
        let file = match precision.as_str() {
            "fp32" => "model.cls.onnx",
            "fp16" => "model.fp16.cls.onnx",
            other => bail!("--precisions: {other} is not fp32 or fp16"), // clap checked
        };
        let m = measure(&env, &a, &a.model_dir.join(file), &inputs)?;
        let essays = (a.batch * a.batches) as f64;
        println!(
            "{}",
            json!({
                "engine": "ort", "provider": a.provider, "precision": precision,
                "seq": a.seq, "batch": a.batch, "batches": a.batches,
                "seconds_per_batch": m.seconds_per_batch,
                "essays_per_s": essays / (m.seconds_per_batch * a.batches as f64),
                "dim": m.cls.ncols(),
            })
        );
        let path = a.out.join(format!("cls_ort_{precision}.npy"));
        ndarray_npy::write_npy(&path, &m.cls)
            .with_context(|| format!("writing {}", path.display()))?;
        cls.insert(precision.clone(), m.cls);
    }
    if let (Some(full), Some(half)) = (cls.get("fp32"), cls.get("fp16")) {
        let (min, mean) = cosines(full, half);
        println!(
            "{}",
            json!({ "engine": "ort", "compare": "fp16 vs fp32", "min_cosine": min, "mean_cosine": mean })
        );
    }
    Ok(())
}
