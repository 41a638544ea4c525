//! LanguageTool proxy throughput against a real LanguageTool, in one run: LanguageTool asked
//! directly (the baseline), the proxy over 1, 2, ... N instances (every URL given) with a cold
//! cache, and the proxy again with a warm cache; then the same pool over 1, 2 and 4 fake
//! instances that each serve one check at a time (capacity-bound, as separate hosts would be).
//!
//! The JVMs are warmed on the same essays first (`--warmup` passes), and the direct baseline is
//! measured before and after the proxy runs (their mean is the baseline), because LanguageTool
//! keeps getting faster as the JIT compiles it.
//!
//! ```text
//! benches/grammar.sh                      # starts 2 LanguageTool JVMs (N=3: 3), runs this, stops them
//! cargo bench --bench grammar_throughput -- --urls URL1,URL2 [--essays 48] [--warmup 2] [--concurrency 4]
//! ```
//! Every mode sends one essay per request with the same number of requests in flight. On a
//! machine with few cores two JVMs share the same CPUs, so the pool's own scaling is also shown
//! on fake instances that each serve one check at a time.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use futures::StreamExt;
use hemma_client::Client;
use hemma_e2e::{TestServer, grammar_args};
use hemma_server::config::ServeArgs;

struct Args {
    urls: Vec<String>,
    essays_file: PathBuf,
    essays: usize,
    warmup: usize,
    concurrency: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let root = hemma_e2e::repo_root();
    let env_urls = std::env::var("HEMMA_BENCH_LANGUAGETOOL_URL")
        .or_else(|_| std::env::var("HEMMA_TEST_LANGUAGETOOL_URL"))
        .unwrap_or_default();
    let mut a = Args {
        urls: env_urls
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        essays_file: root.join("../shared/data/essays/ellipse_sample.jsonl"),
        essays: 48,
        warmup: 2,
        concurrency: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--urls" => a.urls = value()?.split(',').map(str::to_owned).collect(),
            "--essays-file" => a.essays_file = value()?.into(),
            "--essays" => a.essays = value()?.parse()?,
            "--warmup" => a.warmup = value()?.parse()?,
            "--concurrency" => a.concurrency = value()?.parse()?,
            "--bench" => {} // passed by `cargo bench`
            other => bail!("unknown flag {other}"),
        }
    }
    if a.urls.is_empty() {
        bail!(
            "LanguageTool instances are needed (--urls URL1,URL2,... or HEMMA_BENCH_LANGUAGETOOL_URL); benches/grammar.sh starts them"
        );
    }
    Ok(a)
}

fn read_texts(a: &Args, skip: usize, n: usize) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(&a.essays_file)
        .with_context(|| format!("reading {}", a.essays_file.display()))?;
    let texts: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .skip(skip)
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)?;
            v["text"]
                .as_str()
                .map(str::to_owned)
                .context("essay without text")
        })
        .collect::<anyhow::Result<_>>()?;
    if texts.len() < n {
        bail!(
            "{} has fewer than {} essays",
            a.essays_file.display(),
            skip + n
        );
    }
    Ok(texts)
}

/// Checks every text straight on one LanguageTool; returns checks/s and total matches.
async fn direct(url: &str, texts: &[String], concurrency: usize) -> anyhow::Result<(f64, usize)> {
    let http = reqwest::Client::new();
    let start = Instant::now();
    let counts: Vec<anyhow::Result<usize>> = futures::stream::iter(texts)
        .map(|t| {
            let http = http.clone();
            async move {
                let body: serde_json::Value = http
                    .post(format!("{url}/v2/check"))
                    .form(&[
                        ("text", t.as_str()),
                        ("language", "en-US"),
                        ("level", "default"),
                    ])
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                Ok(body["matches"].as_array().map_or(0, Vec::len))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let seconds = start.elapsed().as_secs_f64();
    let total = counts.into_iter().sum::<anyhow::Result<usize>>()?;
    Ok((texts.len() as f64 / seconds, total))
}

/// Checks every text through the proxy, one per request; returns checks/s, matches, cache hits.
async fn proxied(
    client: &Client,
    texts: &[String],
    concurrency: usize,
) -> anyhow::Result<(f64, usize, usize)> {
    let start = Instant::now();
    let answers: Vec<_> = futures::stream::iter(texts)
        .map(|t| client.check_grammar(vec![t.clone()], None))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let seconds = start.elapsed().as_secs_f64();
    let (mut matches, mut hits) = (0, 0);
    for a in answers {
        let r = &a?.results[0];
        matches += r.matches.len();
        hits += usize::from(r.cached);
    }
    Ok((texts.len() as f64 / seconds, matches, hits))
}

fn server_args(urls: &[String], concurrency: usize) -> ServeArgs {
    ServeArgs {
        languagetool_timeout_secs: Some(120.0),
        // Enough slots that the pool, not the bound, limits throughput.
        languagetool_max_in_flight: Some(concurrency.max(4 * urls.len())),
        ..grammar_args(urls)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    let texts = read_texts(&a, 0, a.essays)?;

    let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
    println!(
        "LanguageTool proxy benchmark: {} ELLIPSE essays ({:.0} chars each on average), {} requests in flight, {} cores",
        texts.len(),
        chars as f64 / texts.len() as f64,
        a.concurrency,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // JIT warm-up: each JVM checks the essays `--warmup` times first (LanguageTool keeps no
    // result cache by default, so later checks of the same texts are real work).
    for _ in 0..a.warmup {
        for url in &a.urls {
            direct(url, &texts, a.concurrency).await?;
        }
    }

    let (direct_before, direct_matches) = direct(&a.urls[0], &texts, a.concurrency).await?;
    println!(
        "direct LanguageTool (1 instance)   {direct_before:7.2} checks/s  ({direct_matches} matches)"
    );

    // The pool over the first k instances, k = 1..N, each with a fresh (cold) cache.
    let mut cold = Vec::new();
    let mut warm = (0.0, 0, 0);
    let mut matches = Vec::new();
    for k in 1..=a.urls.len() {
        let server = TestServer::start(server_args(&a.urls[..k], a.concurrency)).await;
        let (rate, m, _) = proxied(&server.client, &texts, a.concurrency).await?;
        println!(
            "proxy, {k} instance{}, cold cache{} {rate:7.2} checks/s  ({m} matches)",
            if k == 1 { " " } else { "s" },
            " ".repeat(5usize.saturating_sub(k.to_string().len()))
        );
        if k == 1 {
            warm = proxied(&server.client, &texts, a.concurrency).await?;
            println!(
                "proxy, warm cache                  {:7.2} checks/s  ({} matches, {}/{} cache hits)",
                warm.0,
                warm.1,
                warm.2,
                texts.len()
            );
            matches.push(warm.1);
        }
        server.stop().await?;
        cold.push(rate);
        matches.push(m);
    }

    // The baseline again: the JVMs keep speeding up for a while, so average before and after.
    let (direct_after, _) = direct(&a.urls[0], &texts, a.concurrency).await?;
    println!("direct LanguageTool, again         {direct_after:7.2} checks/s");
    let direct_cps = (direct_before + direct_after) / 2.0;

    if matches.iter().any(|&m| m != direct_matches) {
        bail!(
            "match counts differ between modes: direct {direct_matches}, proxy {matches:?} (1, warm, 2, ...)"
        );
    }
    let fakes = fake_scaling(&texts, a.concurrency).await?;
    for (k, rate) in &fakes {
        println!(
            "proxy, {k} capacity-1 fake instance{} {rate:7.2} checks/s  (50 ms per check, one at a time)",
            if *k == 1 { " " } else { "s" }
        );
    }

    println!("ratio proxy-1/direct       = {:.2}", cold[0] / direct_cps);
    for (k, rate) in cold.iter().enumerate().skip(1) {
        println!(
            "ratio proxy-{}/proxy-1      = {:.2}  (pool scaling, real LanguageTool on this machine's {} cores)",
            k + 1,
            rate / cold[0],
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
    }
    for (k, rate) in fakes.iter().skip(1) {
        println!(
            "ratio fake-{k}/fake-1        = {:.2}  (pool scaling when each instance has its own capacity)",
            rate / fakes[0].1
        );
    }
    println!("ratio warm/cold (1 inst.)  = {:.1}", warm.0 / cold[0]);
    Ok(())
}

/// The pool's spread of load, apart from the CPU: 1, 2 and 4 instances that each serve one
/// 50 ms check at a time (as separate LanguageTool hosts would), behind a proxy with a cold
/// cache; checks/s per instance count.
async fn fake_scaling(texts: &[String], concurrency: usize) -> anyhow::Result<Vec<(usize, f64)>> {
    use hemma_e2e::fake_languagetool::{FakeLanguageTool, Settings};
    let settings = || Settings {
        latency: std::time::Duration::from_millis(50),
        one_at_a_time: true,
        ..Settings::default()
    };
    let mut fakes = Vec::new();
    for _ in 0..4 {
        fakes.push(FakeLanguageTool::start_with(settings()).await);
    }
    let mut rates = Vec::new();
    for k in [1, 2, 4] {
        let urls: Vec<String> = fakes[..k].iter().map(FakeLanguageTool::url).collect();
        // At least two requests per instance in flight, so every instance can be kept busy.
        let in_flight = concurrency.max(2 * k);
        let server = TestServer::start(server_args(&urls, in_flight)).await;
        let before: Vec<usize> = fakes[..k].iter().map(|f| f.checks().len()).collect();
        let (rate, _, _) = proxied(&server.client, texts, in_flight).await?;
        server.stop().await?;
        let spread: Vec<usize> = fakes[..k]
            .iter()
            .zip(&before)
            .map(|(f, b)| f.checks().len() - b)
            .collect();
        println!("  (the {k}-instance pool sent {spread:?} checks to the fakes)");
        rates.push((k, rate));
    }
    Ok(rates)
}
