//! The `hemma-offload` binary: starts on the fixture, stops cleanly on SIGTERM, and explains
//! bad settings.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-deberta")
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
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"))
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
