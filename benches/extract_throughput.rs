//! End-to-end `combined` extraction: essays/s of `hemma extract` (library path: cache, stream,
//! outputs) against an in-process server and the real LanguageTool, cold and warm cache, with the
//! server's per-stage split; and two baselines in the same run, both
//! `benches/baselines/reference_pipeline.py` (spaCy + TextDescriptives + torch embeddings of the
//! same strings + the same LanguageTool, stages one after another, requests of 64 essays):
//! - **python optimised**: the strings of a request sorted by token length, batches of 16;
//! - **python old**: the old pipeline as it ran (`--old-pipeline`: insertion order, batches of
//!   32, each padded to its longest string), on the first `--old-essays` essays only, because at
//!   base size it takes tens of seconds per essay.
//!
//! ```text
//! eval "$(scripts/languagetool.sh start 18081)"
//! cargo bench --bench extract_throughput -- [--model-dir tests/fixtures/tiny-deberta]
//!     [--essays 100] [--essays-file ../shared/data/essays/ellipse_sample.jsonl]
//!     [--old-essays 8] [--python python3] [--threads 2] [--chunk-size 32] [--concurrency 4]
//!     [--engine ort|candle]
//! ```
//! The Python needs `benches/baselines/requirements-reference.txt`; `--python none` skips the
//! baselines and `--old-essays 0` the old one. Prints one table: essays/s per configuration, the
//! stage seconds, and the ratio of the Rust cold run to each baseline.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hemma_cli::extract_file::{ExtractFileOptions, extract_file};
use hemma_cli::input::{Columns, read_essays};
use hemma_cli::outputs::OutputFormat;
use hemma_client::v1::FeatureSet;
use hemma_e2e::{TestServer, fixture_args, repo_root};
use hemma_runs::ExtractReport;
use hemma_server::config::{EngineKind, ServeArgs};

struct Args {
    model_dir: PathBuf,
    essays_file: PathBuf,
    essays: usize,
    old_essays: usize,
    python: String,
    threads: usize,
    chunk_size: usize,
    concurrency: usize,
    engine: EngineKind,
    languagetool_url: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let root = repo_root();
    let shared = root.join("../shared/data/essays/ellipse_sample.jsonl");
    let mut a = Args {
        model_dir: root.join("tests/fixtures/tiny-deberta"),
        essays_file: if shared.exists() {
            shared
        } else {
            root.join("tests/fixtures/essays/ellipse50.jsonl")
        },
        essays: 100,
        old_essays: 8,
        python: std::env::var("HEMMA_BENCH_PYTHON").unwrap_or_else(|_| "python3".into()),
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        chunk_size: 32,
        concurrency: 4,
        engine: EngineKind::Ort,
        languagetool_url: std::env::var("HEMMA_TEST_LANGUAGETOOL_URL")
            .ok()
            .and_then(|u| u.split(',').next().map(str::to_owned))
            .unwrap_or_default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model-dir" => a.model_dir = value()?.into(),
            "--essays-file" => a.essays_file = value()?.into(),
            "--essays" => a.essays = value()?.parse()?,
            "--old-essays" => a.old_essays = value()?.parse()?,
            "--python" => a.python = value()?,
            "--threads" => a.threads = value()?.parse()?,
            "--chunk-size" => a.chunk_size = value()?.parse()?,
            "--concurrency" => a.concurrency = value()?.parse()?,
            "--languagetool-url" => a.languagetool_url = value()?,
            "--engine" => {
                a.engine = match value()?.as_str() {
                    "ort" => EngineKind::Ort,
                    "candle" => EngineKind::Candle,
                    other => bail!("--engine {other}: use ort or candle"),
                }
            }
            "--bench" => {} // passed by `cargo bench`
            other => bail!("unknown flag {other}"),
        }
    }
    if a.languagetool_url.is_empty() {
        bail!(
            "no LanguageTool: run `eval \"$(scripts/languagetool.sh start 18081)\"` or pass --languagetool-url"
        );
    }
    Ok(a)
}

/// The Python baseline's JSON line.
#[derive(serde::Deserialize)]
struct Baseline {
    essays: usize,
    seconds: f64,
    essays_per_s: f64,
    stages: std::collections::BTreeMap<String, f64>,
    strings_embedded: usize,
}

/// Runs the Python baseline on the first `limit` essays; `old`: as the old pipeline embedded.
fn baseline(a: &Args, essays_file: &Path, limit: usize, old: bool) -> anyhow::Result<Baseline> {
    let script = repo_root().join("benches/baselines/reference_pipeline.py");
    let mut command = Command::new(&a.python);
    command
        .arg(&script)
        .arg("--essays")
        .arg(essays_file)
        .args(["--limit", &limit.to_string()])
        .arg("--model-dir")
        .arg(&a.model_dir)
        .args(["--languagetool-url", &a.languagetool_url])
        .args(["--threads", &a.threads.to_string()]);
    if old {
        command.arg("--old-pipeline");
    }
    let out = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {} {}", a.python, script.display()))?;
    if !out.status.success() {
        bail!("the Python baseline failed ({})", out.status);
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let line = line
        .lines()
        .last()
        .context("the baseline printed nothing")?;
    serde_json::from_str(line).with_context(|| format!("baseline output: {line}"))
}

fn print_run(name: &str, r: &ExtractReport) {
    let s = &r.stages;
    println!(
        "{name:<22} {:>5} essays {:>8.2} s {:>8.2} essays/s   parse {:>7.2}  embed {:>7.2} ({:>5} strings)  languagetool {:>7.2}  assembly {:>6.3}  (cache hits {})",
        r.essays,
        r.seconds,
        r.essays as f64 / r.seconds,
        s.parse_seconds,
        s.embed_seconds,
        s.strings_embedded,
        s.languagetool_seconds,
        s.assembly_seconds,
        r.cache_hits
    );
}

/// One baseline's row of the table, with the stage that bounds it.
fn print_baseline(name: &str, b: &Baseline) {
    let st = |k: &str| b.stages.get(k).copied().unwrap_or(f64::NAN);
    let bound = b
        .stages
        .iter()
        .max_by(|x, y| x.1.total_cmp(y.1))
        .map_or("?", |(k, _)| k.as_str());
    println!(
        "{name:<22} {:>5} essays {:>8.2} s {:>8.2} essays/s   parse {:>7.2}  embed {:>7.2} ({:>5} strings)  languagetool {:>7.2}  assembly {:>6.3}  (bound by {bound})",
        b.essays,
        b.seconds,
        b.essays_per_s,
        st("parse"),
        st("embed"),
        b.strings_embedded,
        st("languagetool"),
        st("assembly")
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    let columns = Columns {
        prompt: Some("prompt".into()),
        ..Columns::new("text", "id")
    };
    let mut essays = read_essays(&a.essays_file, &columns)?;
    essays.truncate(a.essays);
    let n = essays.len();
    let work = tempfile::tempdir()?;
    // The baseline reads the same essays from the same kind of file.
    let subset = work.path().join("essays.jsonl");
    let lines: Vec<String> = essays
        .iter()
        .map(|e| serde_json::json!({"id": e.id, "prompt": e.prompt, "text": e.text}).to_string())
        .collect();
    std::fs::write(&subset, lines.join("\n") + "\n")?;
    println!(
        "extract_throughput: {n} essays ({} words) from {}, model {}, engine {:?}, {} threads, LanguageTool {}",
        essays
            .iter()
            .map(|e| e.text.split_whitespace().count())
            .sum::<usize>(),
        a.essays_file.display(),
        a.model_dir.display(),
        a.engine,
        a.threads,
        a.languagetool_url
    );

    let (optimised, old) = match a.python.as_str() {
        "none" => (None, None),
        _ => (
            Some(baseline(&a, &subset, n, false)?),
            match a.old_essays.min(n) {
                0 => None,
                m => Some(baseline(&a, &subset, m, true)?),
            },
        ),
    };

    let server = TestServer::start(ServeArgs {
        model_dir: Some(a.model_dir.clone()),
        threads: Some(a.threads),
        languagetool_url: Some(vec![a.languagetool_url.clone()]),
        languagetool_timeout_secs: Some(300.0),
        ..fixture_args(a.engine)
    })
    .await;
    // Untimed warm-up, as the baseline's: first-call costs of the engine, parser and LanguageTool.
    server
        .client
        .extract(
            vec!["A warm-up essay. It has two sentences.".into()],
            vec!["Warm-up".into()],
            FeatureSet::Combined,
            false,
        )
        .await?;
    let options = ExtractFileOptions {
        feature_set: FeatureSet::Combined,
        format: OutputFormat::Npy,
        chunk_size: a.chunk_size,
        concurrency: a.concurrency,
        retries: 0,
        backoff: Duration::from_secs(1),
        cache: Some(work.path().join("cache")),
        progress: false,
    };
    let started = Instant::now();
    let cold = extract_file(
        std::slice::from_ref(&server.client),
        essays.clone(),
        &work.path().join("cold"),
        &options,
    )
    .await?
    .run;
    let cold_wall = started.elapsed().as_secs_f64();
    let warm = extract_file(
        std::slice::from_ref(&server.client),
        essays,
        &work.path().join("warm"),
        &options,
    )
    .await?
    .run;
    println!();
    print_run("rust cold cache", &cold);
    print_run("rust warm cache", &warm);
    let baselines = [("python optimised", &optimised), ("python old", &old)];
    for (name, b) in baselines {
        if let Some(b) = b {
            print_baseline(name, b);
        }
    }
    let rust = n as f64 / cold_wall;
    for (name, b) in baselines {
        if let Some(b) = b {
            println!(
                "ratio rust cold / {name}: {:.2}x   (warm cache: {:.0}x){}",
                rust / b.essays_per_s,
                (n as f64 / warm.seconds) / b.essays_per_s,
                match b.essays < n {
                    true => format!("   (python on the first {} essays)", b.essays),
                    false => String::new(),
                }
            );
        }
    }
    println!(
        "(rust stage seconds are summed over chunks, {} in flight, so they overlap; python's stages run one after another)",
        a.concurrency
    );
    Ok(())
}
