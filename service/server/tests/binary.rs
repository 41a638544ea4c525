//! The `hemma-offload` binary: starts on the fixture, stops cleanly on SIGTERM, and explains
//! bad settings.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny-deberta")
}

#[test]
fn sigterm_stops_the_server_with_exit_0() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hemma-offload"))
        .args([
            "serve",
            "--engine",
            "candle",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
        ])
        .arg("--model-dir")
        .arg(fixture())
        .arg("--nlp-models-dir")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Logs go to stdout; wait for the ready line.
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains(" ready"));
    assert!(ready, "the server logged that it is ready");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}; log tail: {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("server stopped")),
        "{rest:?}"
    );
}

#[test]
fn a_bad_setting_exits_non_zero_with_a_sentence() {
    let out = Command::new(env!("CARGO_BIN_EXE_hemma-offload"))
        .args([
            "serve",
            "--model-dir",
            "/nonexistent/model",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/model/manifest.json"), "{err}");
}

#[test]
fn an_unknown_config_file_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hemma.toml");
    std::fs::write(&file, "batch_rows = 4\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hemma-offload"))
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("batch_rows"), "{err}");
}

#[test]
fn selftest_compares_the_engine_with_the_cpu_reference() {
    let out = Command::new(env!("CARGO_BIN_EXE_hemma-offload"))
        .args(["selftest", "--precision", "fp16", "--model-dir"])
        .arg(fixture())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["provider_in_use"], "cpu");
    assert_eq!(report["precision"], "fp16");
    assert_eq!(report["reference"], "ort cpu fp32");
    assert_eq!(report["pass"], true);
    let diff = report["max_abs_diff"].as_f64().unwrap();
    assert!(
        diff > 0.0 && diff < 5e-2,
        "fp16 differs from fp32, within tolerance: {diff}"
    );

    // A provider this library lacks is an error naming it, never a silent CPU run.
    let out = Command::new(env!("CARGO_BIN_EXE_hemma-offload"))
        .args(["selftest", "--provider", "cuda", "--model-dir"])
        .arg(fixture())
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`cuda` failed to register"), "{err}");
}

#[test]
fn models_fetch_builds_a_loadable_folder_from_the_hugging_face_cache_offline() {
    use hemma_embed::tokenize::TextTokenizer;
    // A Hugging Face cache holding the fixture's checkpoint files, as hf-hub lays it out.
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("hub/models--hemma--tiny-deberta");
    let snapshot = repo.join("snapshots/0123456789abcdef");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123456789abcdef").unwrap();
    for f in ["config.json", "spm.model", "model.safetensors"] {
        std::fs::copy(fixture().join(f), snapshot.join(f)).unwrap();
    }
    let out = dir.path().join("model");
    let run = |id: &str| {
        Command::new(env!("CARGO_BIN_EXE_hemma-offload"))
            .args(["models", "fetch", id, "--offline", "--hf-cache"])
            .arg(dir.path().join("hub"))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let o = run("hemma/tiny-deberta");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["dim"], 32);
    assert_eq!(report["weights_from"], "model.safetensors");

    // The folder passes the server's own checks (manifest hashes, tokenizer, weights) ...
    let args = hemma_server::config::ServeArgs {
        model_dir: Some(out.clone()),
        engine: Some(hemma_server::config::EngineKind::Candle),
        nlp_models_dir: Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")),
        ..Default::default()
    };
    let config = hemma_server::config::Config::resolve(args, None, None).unwrap();
    hemma_server::server::Prepared::new(config).expect("the fetched folder loads");
    // ... and its tokenizer, converted in Rust from spm.model, gives the fixture's ids.
    let ours = TextTokenizer::from_file(&out.join("tokenizer.json"), 512).unwrap();
    let theirs = TextTokenizer::from_file(&fixture().join("tokenizer.json"), 512).unwrap();
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("reference.json")).unwrap())
            .unwrap();
    let texts: Vec<&str> = reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert!(texts.len() >= 5);
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(
            ours.encode(i, t).unwrap().ids,
            theirs.encode(i, t).unwrap().ids,
            "{t:?}"
        );
    }

    // A model the cache does not hold is named, and nothing is downloaded.
    let o = run("hemma/not-cached");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("config.json") && err.contains("offline"),
        "{err}"
    );
}
