//! `hemma extract` and `hemma doctor` through real servers: output files, the cache (a second run
//! computes nothing, a new fingerprint re-fetches, a damaged entry is fetched again), resuming a
//! killed run to identical files, a bad CSV row, and LanguageTool going down mid-run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hemma_e2e::fake_languagetool::{FakeLanguageTool, Fault, Settings};
use hemma_e2e::{
    TestServer, cache_entries, grammar_args, languagetool_urls, repo_root, wait_readyz,
};
use hemma_server::config::ServeArgs;
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
