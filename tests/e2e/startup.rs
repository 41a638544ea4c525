//! Start-up refuses a broken model folder or an unusable execution provider, saying which.

use std::path::Path;

use hemma_e2e::{config, fixture_args, fixture_dir};
use hemma_server::config::{EngineKind, Provider, ServeArgs};
use hemma_server::server::Prepared;

/// A copy of the fixture folder that a test may damage.
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

fn prepare_in(dir: &Path, engine: EngineKind) -> String {
    let args = ServeArgs {
        model_dir: Some(dir.to_owned()),
        ..fixture_args(engine)
    };
    Prepared::new(config(args)).unwrap_err().to_string()
}

#[test]
fn a_changed_file_is_refused_naming_it() {
    let dir = fixture_copy();
    let tok = dir.path().join("tokenizer.json");
    let mut bytes = std::fs::read(&tok).unwrap();
    bytes.push(b'\n');
    std::fs::write(&tok, bytes).unwrap();
    let msg = prepare_in(dir.path(), EngineKind::Ort);
    assert!(
        msg.contains("tokenizer.json does not match the manifest"),
        "{msg}"
    );
}

#[test]
fn a_missing_weight_file_is_refused_naming_it() {
    let dir = fixture_copy();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let msg = prepare_in(dir.path(), EngineKind::Candle);
    assert!(msg.contains("model.safetensors is missing"), "{msg}");
    // The ONNX engine does not read that file, so it still starts.
    let args = ServeArgs {
        model_dir: Some(dir.path().to_owned()),
        ..fixture_args(EngineKind::Ort)
    };
    assert!(Prepared::new(config(args)).is_ok());
}

#[test]
fn a_folder_without_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let msg = prepare_in(dir.path(), EngineKind::Ort);
    assert!(msg.contains("manifest.json"), "{msg}");
}

#[tokio::test]
async fn a_provider_that_cannot_register_is_a_startup_error_not_a_cpu_fallback() {
    // The CPU build of ONNX Runtime used in tests has no CUDA provider.
    let args = ServeArgs {
        provider: Some(Provider::Cuda),
        ..fixture_args(EngineKind::Ort)
    };
    let prepared = Prepared::new(config(args)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = prepared
        .serve(listener, std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cuda"), "{err}");
    assert!(err.contains("libonnxruntime"), "names the library: {err}");
}
