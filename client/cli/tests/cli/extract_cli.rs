//! `hemma extract` and `hemma doctor` through real servers: output files, the cache (a second run
//! computes nothing, a new fingerprint re-fetches, a damaged entry is fetched again), resuming a
//! killed run to identical files, a bad CSV row, LanguageTool going down mid-run, an essay over
//! the analyser's limits (listed, `--strict`), `--no-cache` over `$HEMMA_CACHE`, and a server
//! whose fingerprint cannot name a cache folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hemma_e2e::fake_languagetool::{FakeLanguageTool, Fault, Settings};
use hemma_e2e::{
    TestServer, cache_entries, fixture_args, grammar_args, languagetool_urls, repo_root,
    wait_readyz,
};
use hemma_server::config::{EngineKind, ServeArgs};
use ndarray::Array2;
use ndarray_npy::ReadNpyExt;

fn sample() -> PathBuf {
    repo_root().join("tests/fixtures/essays/ellipse50.jsonl")
}

/// A server on the fixture model over `urls`, with room for whole essays; `deterministic` embeds
/// one string per batch, so every value is independent of how essays were grouped.
async fn server(urls: &[String], deterministic: bool, max_length: Option<usize>) -> TestServer {
    TestServer::start(ServeArgs {
        languagetool_timeout_secs: Some(60.0),
        batch_max_rows: deterministic.then_some(1),
        max_length,
        ..grammar_args(urls)
    })
    .await
}

/// `hemma --server URL extract --quiet --input INPUT --out OUT --cache CACHE ARGS...`.
fn extract_command(server: &TestServer, input: &Path, out: &Path, cache: &Path) -> Command {
    let mut c = Command::new(crate::hemma_bin());
    c.args(["--server", &server.http(""), "extract", "--quiet"])
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .arg("--cache")
        .arg(cache);
    c
}

/// Runs a command off the runtime (the server answers on it).
async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn meta(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("meta.json")).expect("meta.json written");
    serde_json::from_str(&text).unwrap()
}

fn npy(path: &Path) -> Array2<f32> {
    Array2::<f32>::read_npy(std::fs::File::open(path).expect("npy written")).unwrap()
}

/// Feature calls (every Offload method but Info) the server has answered.
async fn work_calls(server: &TestServer) -> u64 {
    server
        .metrics()
        .await
        .lines()
        .filter(|l| {
            l.starts_with("hemma_requests_total{method=\"/hemma.offload.v1.Offload/")
                && !l.contains("/Info\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test]
async fn a_second_run_computes_nothing_and_a_new_fingerprint_refetches() {
    let urls = languagetool_urls();
    let server = server(&urls[..1], false, None).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));

    let mut c = extract_command(&server, &sample(), &first, &cache);
    c.args(["--chunk-size", "8"]);
    let o = run(c).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("extracted 50 essays"), "{}", stderr(&o));
    let info = server.client.info().await.unwrap();
    let dim = info.model.as_ref().unwrap().dim as usize;
    let ids = std::fs::read_to_string(first.join("ids.txt")).unwrap();
    let want_ids: Vec<String> = std::fs::read_to_string(sample())
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.lines().collect::<Vec<_>>(), want_ids);
    assert_eq!(npy(&first.join("embeddings.npy")).dim(), (50, dim));
    let hc = npy(&first.join("handcrafted.npy"));
    assert_eq!(hc.dim(), (50, essay_features::COLUMNS.len()));
    let m = meta(&first);
    assert_eq!(m["fingerprint"], info.fingerprint.as_str());
    assert_eq!(m["schema_version"], info.schema_version);
    assert_eq!(
        (
            m["essays"].as_u64(),
            m["cache_hits"].as_u64(),
            m["fetched"].as_u64()
        ),
        (Some(50), Some(0), Some(50))
    );
    assert_eq!(m["chunks"], 7);
    assert!(
        m["timings"]["server_stage_seconds"]["parse_seconds"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // The same corpus again: every row from the cache, no extraction call, identical files.
    let calls = work_calls(&server).await;
    assert!(calls >= 1);
    let o = run(extract_command(&server, &sample(), &second, &cache)).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("50 from the cache, 0 computed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        work_calls(&server).await,
        calls,
        "the second run sent work to the server"
    );
    for f in ["embeddings.npy", "handcrafted.npy", "ids.txt"] {
        assert_eq!(
            std::fs::read(first.join(f)).unwrap(),
            std::fs::read(second.join(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(meta(&second)["cache_hits"], 50);

    // doctor sees the server, LanguageTool and what the cache holds for this fingerprint.
    let mut doctor = Command::new(crate::hemma_bin());
    doctor
        .args(["--server", &server.http(""), "doctor", "--cache"])
        .arg(&cache);
    let o = run(doctor).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains(&format!("fingerprint: {}", info.fingerprint)),
        "{out}"
    );
    assert!(out.contains("languagetool: ready"), "{out}");
    assert!(out.contains("combined: 50 essays"), "{out}");

    // A damaged entry is detected and fetched again; the result does not change.
    let entries = cache_entries(&cache);
    assert_eq!(entries.len(), 50);
    let mut bytes = std::fs::read(&entries[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&entries[0], bytes).unwrap();
    let third = dir.path().join("third");
    let o = run(extract_command(&server, &sample(), &third, &cache)).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let m = meta(&third);
    assert_eq!(
        (m["cache_damaged"].as_u64(), m["fetched"].as_u64()),
        (Some(1), Some(1))
    );
    let (a, b) = (
        npy(&first.join("handcrafted.npy")),
        npy(&third.join("handcrafted.npy")),
    );
    for (x, y) in a.iter().zip(b.iter()) {
        assert!(
            (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
            "{x} vs {y}"
        );
    }

    // A server whose features could differ (another max_length) never gets the old rows.
    let other = self::server(&urls[..1], false, Some(64)).await;
    let other_info = other.client.info().await.unwrap();
    assert_ne!(other_info.fingerprint, info.fingerprint);
    let fourth = dir.path().join("fourth");
    let o = run(extract_command(&other, &sample(), &fourth, &cache)).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let m = meta(&fourth);
    assert_eq!(
        (m["cache_hits"].as_u64(), m["fetched"].as_u64()),
        (Some(0), Some(50))
    );
    assert_eq!(m["fingerprint"], other_info.fingerprint.as_str());
}

#[tokio::test]
async fn a_killed_run_resumes_to_identical_files() {
    let urls = languagetool_urls();
    let server = server(&urls[..1], true, None).await;
    let dir = tempfile::tempdir().unwrap();
    let (whole, resumed) = (dir.path().join("whole"), dir.path().join("resumed"));
    let o = run(extract_command(
        &server,
        &sample(),
        &whole,
        &dir.path().join("cache-a"),
    ))
    .await;
    assert!(o.status.success(), "{}", stderr(&o));

    let cache = dir.path().join("cache-b");
    let mut c = extract_command(&server, &sample(), &resumed, &cache);
    c.args(["--chunk-size", "2", "--concurrency", "1", "--format", "npy"]);
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while cache_entries(&cache).len() < 6 {
        assert!(Instant::now() < deadline, "the run never got going");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = cache_entries(&cache).len();
    assert!(kept < 50, "the run finished before the kill");
    assert!(
        !resumed.join("meta.json").exists(),
        "a killed run left a complete-looking folder"
    );

    let o = run(extract_command(&server, &sample(), &resumed, &cache)).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let m = meta(&resumed);
    assert_eq!(m["cache_hits"].as_u64(), Some(kept as u64), "{m}");
    assert_eq!(m["fetched"].as_u64(), Some(50 - kept as u64));
    for f in ["embeddings.npy", "handcrafted.npy", "ids.txt"] {
        assert_eq!(
            std::fs::read(whole.join(f)).unwrap(),
            std::fs::read(resumed.join(f)).unwrap(),
            "{f} differs between the whole run and the resumed one"
        );
    }
}

#[tokio::test]
async fn bad_input_is_named_before_anything_is_sent() {
    let lt = FakeLanguageTool::start().await;
    let server = server(&[lt.url()], false, None).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "id,prompt,text\na,P,\"one\ntwo\"\nb,P,fine\nc,P,too,many\n",
    )
    .unwrap();
    let o = run(extract_command(
        &server,
        &bad,
        &dir.path().join("out"),
        &cache,
    ))
    .await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bad.csv:5"), "{}", stderr(&o));
    let no_prompt = dir.path().join("np.csv");
    std::fs::write(&no_prompt, "id,text\na,An essay.\n").unwrap();
    let o = run(extract_command(
        &server,
        &no_prompt,
        &dir.path().join("out"),
        &cache,
    ))
    .await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no column `prompt`") && stderr(&o).contains("--prompt"),
        "{}",
        stderr(&o)
    );
    // One prompt for all works with the same file.
    let mut c = extract_command(&server, &no_prompt, &dir.path().join("out"), &cache);
    c.args(["--prompt", "Anything", "--format", "parquet"]);
    let o = run(c).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.path().join("out/features.parquet").exists());
    assert_eq!(
        work_calls(&server).await,
        1,
        "only the good run reached the server"
    );
}

#[tokio::test]
async fn languagetool_down_mid_run_fails_cleanly_and_a_rerun_completes() {
    let lt = FakeLanguageTool::start_with(Settings {
        latency: Duration::from_millis(40),
        ..Settings::default()
    })
    .await;
    let server = server(&[lt.url()], false, None).await;
    let dir = tempfile::tempdir().unwrap();
    let (cache, out) = (dir.path().join("cache"), dir.path().join("out"));
    let args = [
        "--chunk-size",
        "5",
        "--concurrency",
        "1",
        "--retries",
        "1",
        "--retry-wait",
        "0.1",
    ];
    let mut c = extract_command(&server, &sample(), &out, &cache);
    c.args(args);
    let child = c.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while cache_entries(&cache).len() < 10 {
        assert!(Instant::now() < deadline, "the run never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    lt.set_fault(Some(Fault::Reset), None);
    let o = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "the run succeeded without LanguageTool: {err}"
    );
    assert!(
        err.contains("Unavailable")
            && err.contains("giving up after 2 attempts")
            && err.contains("resume"),
        "{err}"
    );
    assert!(
        !out.join("meta.json").exists(),
        "a failed run left a complete-looking folder"
    );
    let kept = cache_entries(&cache).len();
    assert!((10..50).contains(&kept), "{kept}");

    lt.set_fault(None, None);
    wait_readyz(&server, |code, _| code == 200).await;
    let mut c = extract_command(&server, &sample(), &out, &cache);
    c.args(args);
    let o = run(c).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let m = meta(&out);
    assert_eq!(
        (m["cache_hits"].as_u64(), m["fetched"].as_u64()),
        (Some(kept as u64), Some(50 - kept as u64))
    );
    assert_eq!(npy(&out.join("handcrafted.npy")).nrows(), 50);
}

/// The first `n` essays of the sample, as JSON objects.
fn sample_essays(n: usize) -> Vec<serde_json::Value> {
    std::fs::read_to_string(sample())
        .unwrap()
        .lines()
        .take(n)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write_jsonl(path: &Path, essays: &[serde_json::Value]) {
    let lines: String = essays.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(path, lines).unwrap();
}

#[tokio::test]
async fn an_essay_over_the_analysers_limits_is_listed_and_strict_fails_after_writing() {
    let lt = FakeLanguageTool::start().await;
    let server = server(&[lt.url()], false, None).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // One 5,000-character word: over the analyser's 2,000 per word. The same essay twice
    // (same text and prompt) is one distinct row with one status.
    let hostile = format!(
        "This essay has one very long word: {} and then it ends.",
        "a".repeat(5000)
    );
    let good = sample_essays(2);
    let bad = |id: &str| serde_json::json!({"id": id, "prompt": "A prompt", "text": hostile});
    let input = dir.path().join("essays.jsonl");
    write_jsonl(
        &input,
        &[
            good[0].clone(),
            bad("hostile"),
            good[1].clone(),
            bad("hostile-again"),
        ],
    );

    let first = dir.path().join("first");
    let mut c = extract_command(&server, &input, &first, &cache);
    c.args(["--chunk-size", "2"]);
    let o = run(c).await;
    let err = stderr(&o);
    assert!(o.status.success(), "a limited essay failed the run: {err}");
    let hc = npy(&first.join("handcrafted.npy"));
    assert_eq!(hc.nrows(), 4);
    for (row, limited) in [(0, false), (1, true), (2, false), (3, true)] {
        let nan = hc.row(row).iter().filter(|v| v.is_nan()).count();
        match limited {
            true => assert_eq!(nan, hc.ncols(), "row {row} is limited: all NaN"),
            false => assert!(nan < hc.ncols(), "row {row} is complete: {nan} NaN"),
        }
    }
    let emb = npy(&first.join("embeddings.npy"));
    assert!(
        emb.iter().all(|v| v.is_finite()),
        "every essay keeps its embedding"
    );
    let m = meta(&first);
    assert_eq!(m["limited"], 2, "{m}");
    let rows = m["limited_rows"].as_array().expect("limited_rows listed");
    let listed: Vec<(u64, &str, &str)> = rows
        .iter()
        .map(|r| {
            assert!(!r["message"].as_str().unwrap_or_default().is_empty(), "{r}");
            (
                r["index"].as_u64().unwrap(),
                r["id"].as_str().unwrap(),
                r["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (1, "hostile", "word_too_long"),
            (3, "hostile-again", "word_too_long")
        ]
    );
    assert_eq!(rows[0]["message"], rows[1]["message"]);
    assert!(
        err.contains("2 of 4 essays")
            && err.contains("  hostile: word_too_long: ")
            && err.contains("  hostile-again: word_too_long: ")
            && err.contains("meta.json"),
        "{err}"
    );

    // From the cache, with --strict: the same status, no extraction call, every file written,
    // and a failing exit that says how many rows and where they are listed.
    let calls = work_calls(&server).await;
    let second = dir.path().join("second");
    let mut c = extract_command(&server, &input, &second, &cache);
    c.arg("--strict");
    let o = run(c).await;
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "--strict passed with limited rows: {err}"
    );
    assert!(
        err.contains("--strict: 2 of 4 rows are limited")
            && err.contains(&second.join("meta.json").display().to_string()),
        "{err}"
    );
    assert_eq!(work_calls(&server).await, calls, "the re-run sent work");
    let m2 = meta(&second);
    assert_eq!(
        (m2["cache_hits"].as_u64(), m2["fetched"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(m2["limited_rows"], m["limited_rows"]);
    for f in ["embeddings.npy", "handcrafted.npy", "ids.txt"] {
        assert_eq!(
            std::fs::read(first.join(f)).unwrap(),
            std::fs::read(second.join(f)).unwrap(),
            "{f}"
        );
    }

    // --strict with nothing limited passes.
    let clean = dir.path().join("clean.jsonl");
    write_jsonl(&clean, &good);
    let mut c = extract_command(&server, &clean, &dir.path().join("third"), &cache);
    c.arg("--strict");
    let o = run(c).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(meta(&dir.path().join("third"))["limited"], 0);
}

#[tokio::test]
async fn no_cache_wins_over_hemma_cache() {
    let server = TestServer::start(fixture_args(EngineKind::Candle)).await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("essays.jsonl");
    write_jsonl(&input, &sample_essays(2));
    let env_cache = dir.path().join("env-cache");
    let command = |out: &str, no_cache: bool| {
        let mut c = Command::new(crate::hemma_bin());
        c.env("HEMMA_CACHE", &env_cache)
            .args(["--server", &server.http(""), "extract", "--quiet"])
            .args(["--feature-set", "embeddings", "--input"])
            .arg(&input)
            .arg("--out")
            .arg(dir.path().join(out));
        if no_cache {
            c.arg("--no-cache");
        }
        c
    };
    let o = run(command("uncached", true)).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.path().join("uncached/meta.json").exists());
    assert!(!env_cache.exists(), "--no-cache wrote to $HEMMA_CACHE");
    // Without the flag the variable is used.
    let o = run(command("cached", false)).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(cache_entries(&env_cache).len(), 2);
}

#[tokio::test]
async fn a_fingerprint_that_is_not_a_sha256_never_becomes_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("sandbox/cache");
    let input = dir.path().join("essays.jsonl");
    write_jsonl(&input, &sample_essays(1));
    let hostile = "../../escaped";
    let fake = crate::fake_offload::FakeOffload::start(hostile).await;
    let mut c = Command::new(crate::hemma_bin());
    c.args([
        "--server",
        &fake.url(),
        "extract",
        "--quiet",
        "--retries",
        "0",
    ])
    .arg("--input")
    .arg(&input)
    .arg("--out")
    .arg(dir.path().join("out"))
    .arg("--cache")
    .arg(&cache);
    let o = run(c).await;
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("\"../../escaped\"")
            && err.contains("not 64 lowercase hex characters")
            && err.contains("was not used"),
        "{err}"
    );
    assert!(
        !dir.path().join("escaped").exists(),
        "wrote outside the cache"
    );
    assert!(!cache.exists() && !dir.path().join("out/meta.json").exists());

    let mut doctor = Command::new(crate::hemma_bin());
    doctor
        .args(["--server", &fake.url(), "doctor", "--cache"])
        .arg(&cache);
    let o = run(doctor).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("FAIL  fingerprint: \"../../escaped\" is not a sha256")
            && out.contains("FAIL  cache: the server sent the fingerprint"),
        "{out}"
    );
}
