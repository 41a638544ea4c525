//! The research loop's file path: essays in (JSONL/CSV), `.npy` + ids out, through a real server.

use hemma_cli::embed_file::{EmbedFileOptions, embed_file, ids_path, meta_path};
use hemma_cli::input::{Columns, read_essays};
use hemma_e2e::{TestServer, fixture_args, max_abs_diff, repo_root};
use hemma_server::config::EngineKind;
use ndarray::Array2;
use ndarray_npy::ReadNpyExt;

fn columns() -> Columns {
    Columns::new("text", "id")
}

#[tokio::test]
async fn example_essays_become_an_npy_matrix_in_input_order() {
    let server = TestServer::start(fixture_args(EngineKind::Ort)).await;
    let essays = read_essays(&repo_root().join("examples/essays.jsonl"), &columns()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested/emb.npy");
    let options = EmbedFileOptions {
        batch_size: 4, // two requests, in flight together
        concurrency: 2,
        f16: false,
        progress: false,
    };
    let report = embed_file(&server.client, &essays, &out, options)
        .await
        .unwrap();
    assert_eq!((report.essays, report.dim), (6, 32));
    let matrix = Array2::<f32>::read_npy(std::fs::File::open(&out).unwrap()).unwrap();
    assert_eq!(matrix.dim(), (6, 32));
    // Row i is essay i: compare with embedding each essay alone.
    for (i, essay) in essays.iter().enumerate() {
        let alone = server
            .client
            .embed(vec![essay.text.clone()], false)
            .await
            .unwrap();
        let diff = max_abs_diff(
            matrix.row(i).as_slice().unwrap(),
            alone.vectors.row(0).as_slice().unwrap(),
        );
        assert!(
            diff < 1e-5,
            "row {i} differs from essay {i} alone by {diff}"
        );
    }
    // The same convention as `hemma extract`: one id per line, then the run's meta file.
    assert_eq!(ids_path(&out), out.with_file_name("emb.ids.txt"));
    let ids = std::fs::read_to_string(ids_path(&out)).unwrap();
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 6);
    assert_eq!((ids[0], ids[5]), ("ex-001", "ex-006"));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(meta_path(&out)).unwrap()).unwrap();
    assert_eq!(meta["fingerprint"], report.fingerprint.as_str());
    assert_eq!(meta["essays"], 6);
    assert_eq!(meta["ids"], "emb.ids.txt");
    assert_eq!(meta["matrix"], "emb.npy");
    // The CSV copy of the examples reads as the same essays.
    let csv = read_essays(&repo_root().join("examples/essays.csv"), &columns()).unwrap();
    assert_eq!(csv, essays);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_rejected_request_names_the_rows_and_writes_nothing() {
    let server = TestServer::start(hemma_server::config::ServeArgs {
        max_bytes_per_text: Some(300),
        ..fixture_args(EngineKind::Ort)
    })
    .await;
    let essays = read_essays(&repo_root().join("examples/essays.jsonl"), &columns()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("emb.npy");
    let options = EmbedFileOptions {
        batch_size: 2,
        concurrency: 1,
        f16: false,
        progress: false,
    };
    let err = embed_file(&server.client, &essays, &out, options)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("essays 0..2 of the input"), "{err}");
    assert!(
        err.contains("text 0 is 328 bytes; the limit is 300 bytes per text"),
        "{err}"
    );
    assert!(
        !out.exists() && !ids_path(&out).exists() && !meta_path(&out).exists(),
        "no partial output"
    );
    server.stop().await.unwrap();
}
