//! Embedding throughput: ONNX Runtime (CPU) and candle against a Python torch baseline, on the
//! same weights, the same token batches and the same thread count, in one run.
//!
//! ```text
//! benches/run.sh                          # builds the random-init base model once, then runs this
//! cargo bench --bench embed_throughput -- --model-dir DIR [--essays 24] [--batch-size 8]
//!     [--threads 2] [--python python3] [--skip-candle] [--rounds 3]
//! ```
//! Each round runs torch, then ONNX Runtime on `model.onnx` and on the CLS-only CPU graph
//! `model.cpu.onnx` (where the folder has it); candle runs in the first round. Prints essays/s,
//! the ratio to that round's torch and the CLS max abs difference against torch per round, then
//! the median ratio of each ONNX file over the rounds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use hemma_embed::candle::{CandleEngine, CandleOptions};
use hemma_embed::factory::CPU_GRAPH;
use hemma_embed::model::ModelDir;
use hemma_embed::ort::{OrtEngine, OrtOptions};
use hemma_embed::tokenize::TextTokenizer;
use hemma_embed::{Engine, TokenBatch};
use hemma_server::config::{Precision, Provider};
use ndarray::{Array2, Axis, concatenate};
use ndarray_npy::ReadNpyExt;

struct Args {
    model_dir: PathBuf,
    essays_file: PathBuf,
    essays: usize,
    batch_size: usize,
    threads: usize,
    python: String,
    skip_candle: bool,
    rounds: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let root = hemma_e2e::repo_root();
    let mut a = Args {
        model_dir: root.join(".cache/models/deberta-v3-base-random"),
        essays_file: root.join("../shared/data/essays/ellipse_sample.jsonl"),
        essays: 24,
        batch_size: 8,
        threads: 2,
        python: std::env::var("HEMMA_BENCH_PYTHON").unwrap_or_else(|_| "python3".into()),
        skip_candle: false,
        rounds: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model-dir" => a.model_dir = value()?.into(),
            "--essays-file" => a.essays_file = value()?.into(),
            "--essays" => a.essays = value()?.parse()?,
            "--batch-size" => a.batch_size = value()?.parse()?,
            "--threads" => a.threads = value()?.parse()?,
            "--python" => a.python = value()?,
            "--skip-candle" => a.skip_candle = true,
            "--rounds" => a.rounds = value()?.parse::<usize>()?.max(1),
            "--bench" => {} // passed by `cargo bench`
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

fn read_texts(path: &Path, n: usize) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)?;
            v["text"]
                .as_str()
                .map(str::to_owned)
                .context("essay without text")
        })
        .collect()
}

struct Run {
    seconds: f64,
    cls: Array2<f32>,
}

fn time_engine(engine: &mut dyn Engine, batches: &[Vec<Vec<u32>>]) -> anyhow::Result<Run> {
    let pad =
        |b: &Vec<Vec<u32>>| TokenBatch::pad(&b.iter().map(|r| r.as_slice()).collect::<Vec<_>>());
    engine.embed(&pad(&batches[0]))?; // warm-up, untimed
    let start = Instant::now();
    let mut outs = Vec::new();
    for b in batches {
        outs.push(engine.embed(&pad(b))?);
    }
    let seconds = start.elapsed().as_secs_f64();
    let views: Vec<_> = outs.iter().map(|o| o.view()).collect();
    Ok(Run {
        seconds,
        cls: concatenate(Axis(0), &views)?,
    })
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn max_abs(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let model = ModelDir::open(&args.model_dir).with_context(|| {
        format!(
            "no benchmark model in {} (benches/run.sh builds one)",
            args.model_dir.display()
        )
    })?;
    let m = model.manifest().clone();
    let tokenizer = TextTokenizer::from_file(&args.model_dir.join("tokenizer.json"), m.max_length)?;
    let texts = read_texts(&args.essays_file, args.essays)?;
    let ids: Vec<Vec<u32>> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| tokenizer.encode(i, t).map(|e| e.ids))
        .collect::<Result<_, _>>()?;
    let batches: Vec<Vec<Vec<u32>>> = ids.chunks(args.batch_size).map(|c| c.to_vec()).collect();
    let n = ids.len();
    let mean_tokens = ids.iter().map(Vec::len).sum::<usize>() as f64 / n as f64;
    let at_max = ids.iter().filter(|i| i.len() == m.max_length).count();
    println!(
        "model {} (dim {}, random_init {}), {n} essays, {} batches of <= {}, mean {mean_tokens:.0} tokens, {at_max} at max_length {}, {} threads",
        m.model_id,
        m.dim,
        m.random_init,
        batches.len(),
        args.batch_size,
        m.max_length,
        args.threads
    );

    let tmp = tempfile::tempdir()?;
    let tokens_file = tmp.path().join("tokens.json");
    std::fs::write(
        &tokens_file,
        serde_json::json!({ "batches": batches }).to_string(),
    )?;
    let dylib = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from);
    let ort_load = |file: &str| -> anyhow::Result<OrtEngine> {
        let onnx = model.verify(file, "benchmark")?;
        Ok(OrtEngine::load(&OrtOptions {
            model: onnx.path,
            model_sha256: onnx.sha256,
            dylib: dylib.clone(),
            provider: Provider::Cpu,
            device_id: 0,
            precision: Precision::Fp32,
            threads: args.threads,
            dim: m.dim,
        })?)
    };
    // The ONNX files ONNX Runtime runs: the full export and, where the folder has it, the
    // CLS-only CPU graph the server uses on the CPU (docs/architecture.md, "The CPU graph").
    let mut graphs = vec![("ort-cpu fp32 model.onnx", "model.onnx")];
    if m.files.contains_key(CPU_GRAPH) {
        graphs.push(("ort-cpu fp32 model.cpu.onnx", CPU_GRAPH));
    }

    // Rounds alternate the engines so a slow minute of this machine hits all of them.
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); graphs.len()];
    let mut torch_version = String::new();
    let mut torch_rss = f64::NAN;
    for round in 1..=args.rounds {
        let torch = torch_round(&args, &tokens_file, tmp.path())?;
        torch_version = torch.version.clone();
        torch_rss = torch.rss_mb;
        println!(
            "round {round}: {:<30} {:>8.3} essays/s",
            format!("torch {}", torch.version),
            torch.essays_per_s
        );
        for (k, (name, file)) in graphs.iter().enumerate() {
            let mut engine = ort_load(file)?;
            let run = time_engine(&mut engine, &batches)?;
            let eps = n as f64 / run.seconds;
            ratios[k].push(eps / torch.essays_per_s);
            println!(
                "round {round}: {name:<30} {eps:>8.3} essays/s  {:>5.2}x torch  CLS max diff vs torch {:.2e}",
                eps / torch.essays_per_s,
                max_abs(&run.cls, &torch.cls)
            );
        }
        if round == 1 && !args.skip_candle {
            let w = model.verify("model.safetensors", "benchmark")?;
            let mut engine = CandleEngine::load(&CandleOptions {
                weights: w.path,
                weights_sha256: w.sha256,
                config: args.model_dir.join("config.json"),
                threads: args.threads,
                dim: m.dim,
            })?;
            let c = time_engine(&mut engine, &batches)?;
            let eps = n as f64 / c.seconds;
            println!(
                "round {round}: {:<30} {eps:>8.3} essays/s  {:>5.2}x torch  CLS max diff vs torch {:.2e}",
                "candle-cpu fp32",
                eps / torch.essays_per_s,
                max_abs(&c.cls, &torch.cls)
            );
        }
    }
    println!();
    for ((name, _), r) in graphs.iter().zip(&ratios) {
        let list: Vec<String> = r.iter().map(|x| format!("{x:.2}")).collect();
        println!(
            "ratio {name}/torch {torch_version}: median {:.2} of {} rounds ({})",
            median(r),
            r.len(),
            list.join(", ")
        );
    }
    if let Some(r) = ratios.last() {
        // What the server runs on the CPU: the CPU graph where the folder has one.
        println!("ratio ort-cpu/torch-cpu = {:.2}", median(r));
    }
    println!(
        "peak RSS: bench process {:.0} MB (ort and candle), torch process {torch_rss:.0} MB",
        rss_mb(),
    );
    Ok(())
}

/// Median of a non-empty list.
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One torch pass over the batches.
struct TorchRound {
    essays_per_s: f64,
    cls: Array2<f32>,
    version: String,
    rss_mb: f64,
}

/// Runs `benches/baselines/torch_embed.py` once over `tokens_file`.
fn torch_round(args: &Args, tokens_file: &Path, tmp: &Path) -> anyhow::Result<TorchRound> {
    let torch_cls = tmp.join("torch_cls.npy");
    let out = Command::new(&args.python)
        .arg(hemma_e2e::repo_root().join("benches/baselines/torch_embed.py"))
        .arg("--model-dir")
        .arg(&args.model_dir)
        .arg("--tokens")
        .arg(tokens_file)
        .args([
            "--threads",
            &args.threads.to_string(),
            "--warmup",
            "1",
            "--repeats",
            "1",
        ])
        .arg("--dump-cls")
        .arg(&torch_cls)
        .output()
        .with_context(|| format!("running the torch baseline with {}", args.python))?;
    if !out.status.success() {
        bail!(
            "torch baseline failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let torch: serde_json::Value = serde_json::from_slice(
        out.stdout
            .split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .unwrap_or_default(),
    )?;
    Ok(TorchRound {
        essays_per_s: torch["essays_per_s"]
            .as_f64()
            .context("torch essays_per_s")?,
        cls: Array2::<f32>::read_npy(std::fs::File::open(&torch_cls)?)?,
        version: torch["torch"].as_str().unwrap_or("").to_owned(),
        rss_mb: torch["rss_mb"].as_f64().unwrap_or(f64::NAN),
    })
}
