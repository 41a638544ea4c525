//! The drop-in HTTP API of the old Python offload server, through a real HTTP client against a
//! real server: `/v1/extract` zips (members, `.npy` headers, `meta.json` keys exactly as the old
//! client's models require, values equal to `Extract`), `/v1/embed`, every error case, and the
//! 404 for unknown paths.

use std::collections::BTreeSet;
use std::io::Read;

use hemma_cli::input::{Columns, Essay, read_essays};
use hemma_client::v1::FeatureSet;
use hemma_e2e::fake_languagetool::{FakeLanguageTool, Fault};
use hemma_e2e::{TestServer, grammar_args, languagetool_urls, repo_root};
use hemma_server::config::ServeArgs;
use ndarray::Array2;
use ndarray_npy::ReadNpyExt;
use serde_json::{Value, json};

/// The first `n` essays of the committed ELLIPSE sample, with prompts.
fn essays(n: usize) -> Vec<Essay> {
    let columns = Columns {
        prompt: Some("prompt".into()),
        ..Columns::new("text", "id")
    };
    let mut all = read_essays(
        &repo_root().join("tests/fixtures/essays/ellipse50.jsonl"),
        &columns,
    )
    .expect("the sample reads");
    all.truncate(n);
    all
}

/// POSTs `body` as JSON to `path` with a correlation id.
async fn post(server: &TestServer, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.http(path))
        .header("X-Correlation-ID", "run-7.chunk-3")
        .json(body)
        .send()
        .await
        .expect("the server answers")
}

/// The members of a zip answer, by name.
fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().expect("a member name").into_owned(), data)
        })
        .collect()
}

/// The header dict of a `.npy` file, checked to be version 1 float32 C-order.
fn npy_header(bytes: &[u8]) -> String {
    assert_eq!(&bytes[..6], b"\x93NUMPY", "npy magic");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8(bytes[10..10 + len].to_vec()).unwrap();
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    header
}

fn matrix(bytes: &[u8]) -> Array2<f32> {
    Array2::<f32>::read_npy(bytes).expect("a float32 npy matrix")
}

/// Every key path of a JSON object (`a`, `a.b`, ...); values of `versions` and
/// `request_options` are free-form maps and not descended into.
fn key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(map) = v {
        for (k, child) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.insert(path.clone());
            if k != "versions" && k != "request_options" {
                key_paths(child, &path, out);
            }
        }
    }
}

/// The keys the old client's `meta.json` model allows, no more and no fewer.
const META_KEYS: [&str; 19] = [
    "schema_version",
    "server_fingerprint",
    "git_sha",
    "versions",
    "embedding",
    "embedding.model_name",
    "embedding.max_length",
    "embedding.pooling",
    "embedding.dim",
    "language_tool",
    "language_tool.language",
    "language_tool.request_options",
    "language_tool.service_url",
    "language_tool.jar_version",
    "feature_schema",
    "feature_schema.tier1",
    "feature_schema.tier2",
    "feature_schema.tier3",
    "feature_schema.combined",
];

fn assert_error(body: &Value, error: &str) {
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "schema_version",
            "error",
            "detail",
            "correlation_id",
            "extra"
        ]),
        "{body}"
    );
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["correlation_id"], "run-7.chunk-3", "{body}");
    assert!(!body["detail"].as_str().unwrap().is_empty(), "{body}");
}

#[tokio::test]
async fn extract_zip_holds_what_extract_returns_with_the_old_meta_keys() {
    let urls = languagetool_urls();
    let server = TestServer::start(ServeArgs {
        languagetool_timeout_secs: Some(60.0),
        ..grammar_args(&urls[..1])
    })
    .await;
    let sample = essays(6);
    let texts: Vec<String> = sample.iter().map(|e| e.text.clone()).collect();
    let prompts: Vec<String> = sample.iter().map(|e| e.prompt.clone().unwrap()).collect();
    let resp = post(
        &server,
        "/v1/extract",
        &json!({"texts": texts, "prompts": prompts, "feature_set": "combined"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let info = server.client.info().await.unwrap();
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "application/zip");
    assert_eq!(h["x-schema-version"], "2");
    assert_eq!(h["x-server-fingerprint"], info.fingerprint.as_str());
    assert_eq!(h["x-correlation-id"], "run-7.chunk-3");
    assert_eq!(
        h["x-limited-rows"], "0",
        "no limited row: the old zip, member for member"
    );
    let members = unzip(&resp.bytes().await.unwrap());
    let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["meta.json", "embeddings.npy", "handcrafted.npy"]);

    // meta.json: exactly the old contract's keys, with this server's values.
    let meta: Value = serde_json::from_slice(&members[0].1).unwrap();
    let mut keys = BTreeSet::new();
    key_paths(&meta, "", &mut keys);
    let want: BTreeSet<String> = META_KEYS.iter().map(|k| (*k).to_owned()).collect();
    assert_eq!(keys, want, "{meta:#}");
    let model = info.model.clone().unwrap();
    assert_eq!(meta["schema_version"], 2);
    assert_eq!(meta["server_fingerprint"], info.fingerprint.as_str());
    assert!(meta["git_sha"].is_string() || meta["git_sha"].is_null());
    assert!(
        meta["versions"]
            .as_object()
            .unwrap()
            .values()
            .all(Value::is_string)
    );
    assert_eq!(meta["embedding"]["model_name"], model.model_id.as_str());
    assert_eq!(meta["embedding"]["max_length"], model.max_length);
    assert_eq!(meta["embedding"]["pooling"], "cls");
    assert_eq!(meta["embedding"]["dim"], model.dim);
    let lt = &meta["language_tool"];
    assert_eq!(lt["language"], "en-US");
    assert_eq!(lt["service_url"], urls[0].as_str());
    assert_eq!(lt["jar_version"], info.languagetool_version.as_str());
    assert!(
        lt["request_options"]
            .as_object()
            .unwrap()
            .values()
            .all(Value::is_string)
    );
    let names = |k: &str| -> Vec<String> {
        serde_json::from_value(meta["feature_schema"][k].clone()).unwrap()
    };
    let (t1, t2, t3) = (names("tier1"), names("tier2"), names("tier3"));
    assert_eq!((t1.len(), t2.len(), t3.len()), (11, 9, 5));
    let handcrafted: Vec<String> = [t1, t2, t3].concat();
    assert_eq!(handcrafted, info.handcrafted_feature_names);
    let combined = names("combined");
    assert_eq!(combined.len(), model.dim as usize + 25);
    assert_eq!(combined[0], "embedding_000");
    assert_eq!(&combined[model.dim as usize..], &handcrafted[..]);

    // The matrices: npy float32 C order, the same values as Extract.
    for (_, bytes) in &members[1..] {
        npy_header(bytes);
    }
    let (emb, hc) = (matrix(&members[1].1), matrix(&members[2].1));
    let x = server
        .client
        .extract(texts, prompts, FeatureSet::Combined, false)
        .await
        .unwrap();
    let (x_emb, x_hc) = (x.embeddings.unwrap(), x.handcrafted.unwrap());
    assert_eq!(emb.dim(), x_emb.dim());
    assert_eq!(hc.dim(), (6, 25));
    for (a, b) in emb.iter().zip(x_emb.iter()) {
        assert!((a - b).abs() <= 1e-5, "embedding {a} vs {b}");
    }
    let embedding_derived = [16, 17, 18, 19];
    for ((i, j), a) in hc.indexed_iter() {
        let b = x_hc[[i, j]];
        if embedding_derived.contains(&j) {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "[{i},{j}] {a} vs {b}"
            );
        } else {
            assert_eq!(a.to_bits(), b.to_bits(), "[{i},{j}] {a} vs {b}");
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn each_feature_set_zips_its_matrices_and_empty_prompts_are_embedded() {
    let fake = FakeLanguageTool::start().await;
    let server = TestServer::start(grammar_args(&[fake.url()])).await;
    let texts = vec!["A short essay.".to_owned(), "Another one here.".to_owned()];
    let prompts = vec![String::new(), "A prompt".to_owned()];
    for (set, want) in [
        ("embeddings", vec!["meta.json", "embeddings.npy"]),
        ("handcrafted", vec!["meta.json", "handcrafted.npy"]),
        (
            "combined",
            vec!["meta.json", "embeddings.npy", "handcrafted.npy"],
        ),
    ] {
        let resp = post(
            &server,
            "/v1/extract",
            &json!({"texts": texts, "prompts": prompts, "feature_set": set}),
        )
        .await;
        assert_eq!(resp.status(), 200, "{set}");
        let members = unzip(&resp.bytes().await.unwrap());
        let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, want, "{set}");
        for (name, bytes) in &members[1..] {
            assert_eq!(matrix(bytes).nrows(), 2, "{set} {name}");
        }
    }
    // gRPC keeps refusing the empty prompt that the drop-in API embeds as "".
    let err = server
        .client
        .extract(texts, prompts, FeatureSet::Combined, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("prompt 0 is empty"), "{err}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn refusals_are_json_errors_with_the_old_codes() {
    let fake = FakeLanguageTool::start().await;
    let server = TestServer::start(ServeArgs {
        max_items_per_request: Some(3),
        max_bytes_per_request: Some(4000),
        ..grammar_args(&[fake.url()])
    })
    .await;
    let ok = json!({"texts": ["a"], "prompts": ["p"], "feature_set": "combined"});
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            reqwest::Client::new()
                .post(server.http("/v1/extract"))
                .header("content-type", "application/json")
                .body("{not json"),
            400,
            "invalid_request",
        ),
        (
            reqwest::Client::new()
                .post(server.http("/v1/extract"))
                .json(&json!({"texts": ["a"], "prompts": ["p"], "feature_set": "combined", "x": 1})),
            400,
            "invalid_request",
        ),
        (
            reqwest::Client::new()
                .post(server.http("/v1/extract"))
                .json(&json!({"texts": ["a", "b"], "prompts": ["p"], "feature_set": "combined"})),
            400,
            "invalid_request",
        ),
        (
            reqwest::Client::new()
                .post(server.http("/v1/extract"))
                .json(&json!({"texts": ["a"], "prompts": ["p"], "feature_set": "everything"})),
            400,
            "invalid_request",
        ),
        (
            reqwest::Client::new()
                .post(server.http("/v1/extract"))
                .json(&json!({"texts": vec!["a"; 4], "prompts": vec!["p"; 4], "feature_set": "combined"})),
            413,
            "too_many_items",
        ),
        (
            reqwest::Client::new()
                .post(server.http("/v1/extract"))
                .json(&json!({"texts": ["x".repeat(5000)], "prompts": ["p"], "feature_set": "combined"})),
            413,
            "request_too_large",
        ),
        (
            reqwest::Client::new()
                .post(server.http("/v1/embed"))
                .json(&json!({"texts": ["a"], "model_name": "microsoft/deberta-v3-base"})),
            400,
            "unsupported_model",
        ),
        (
            reqwest::Client::new()
                .post(server.http("/v1/embed"))
                .json(&json!({"texts": ["a"], "max_length": 64})),
            400,
            "unsupported_max_length",
        ),
    ];
    for (request, status, error) in cases {
        let resp = request
            .header("X-Correlation-ID", "run-7.chunk-3")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{error}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_error(&resp.json().await.unwrap(), error);
    }
    // The model and max_length errors name both values.
    let body: Value = post(
        &server,
        "/v1/embed",
        &json!({"texts": ["a"], "model_name": "m"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let model = server.client.info().await.unwrap().model.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"m\"") && detail.contains(&model.model_id),
        "{detail}"
    );
    // LanguageTool down: 503, nothing partial.
    fake.set_fault(Some(Fault::Reset), None);
    let resp = post(&server, "/v1/extract", &ok).await;
    assert_eq!(resp.status(), 503);
    assert_error(&resp.json().await.unwrap(), "dependency_unavailable");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn embed_answers_one_npy_and_unknown_paths_are_404() {
    let server = TestServer::start(hemma_e2e::fixture_args(
        hemma_server::config::EngineKind::Ort,
    ))
    .await;
    let info = server.client.info().await.unwrap();
    let model = info.model.unwrap();
    let texts = ["One essay.", "Two essays, longer than the first one."];
    let resp = post(
        &server,
        "/v1/embed",
        &json!({"texts": texts, "model_name": model.model_id, "max_length": model.max_length, "batch_size": 32}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["x-embedding-model"], model.model_id.as_str());
    assert_eq!(h["x-embedding-dtype"], "float32");
    let bytes = resp.bytes().await.unwrap();
    npy_header(&bytes);
    let m = matrix(&bytes);
    let grpc = server
        .client
        .embed(texts.iter().map(|t| (*t).to_owned()).collect(), false)
        .await
        .unwrap();
    assert_eq!(m.dim(), grpc.vectors.dim());
    for (a, b) in m.iter().zip(grpc.vectors.iter()) {
        assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
    }
    // The old client only needs /healthz to answer 200.
    let health = reqwest::get(server.http("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    // A path that does not exist: 404 naming the routes, not a 200 with a gRPC status.
    let missing = reqwest::get(server.http("/v1/nothing")).await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().get("grpc-status").is_none());
    let text = missing.text().await.unwrap();
    assert!(
        text.contains("/v1/extract") && text.contains("/healthz"),
        "{text}"
    );
    // An unknown gRPC method is still UNIMPLEMENTED (over HTTP/2, as gRPC goes).
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let missing = grpc
        .unary::<(), (), _>(
            tonic::Request::new(()),
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/hemma.offload.v1.Offload/Nothing",
            ),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("no such method");
    assert_eq!(missing.code(), tonic::Code::Unimplemented, "{missing:?}");
    server.stop().await.unwrap();
}
