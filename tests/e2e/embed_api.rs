//! The Embed and Info RPCs and the HTTP routes, through the real client against a real server.

use std::sync::mpsc as std_mpsc;

use hemma_client::ClientError;
use hemma_e2e::{TestServer, config, fixture_args, max_abs_diff, reference};
use hemma_embed::{Engine, EngineError, EngineInfo, TokenBatch};
use hemma_server::config::{EngineKind, ServeArgs};
use hemma_server::server::Prepared;
use ndarray::Array2;
use tonic::Code;

async fn ort_server() -> TestServer {
    TestServer::start(fixture_args(EngineKind::Ort)).await
}

#[tokio::test]
async fn embed_round_trip_matches_torch_in_request_order() {
    let server = ort_server().await;
    let r = reference();
    let texts: Vec<String> = r.cases.iter().map(|c| c.text.clone()).collect();
    let out = server.client.embed(texts, false).await.unwrap();
    assert_eq!(out.vectors.dim(), (r.cases.len(), r.dim));
    for (i, case) in r.cases.iter().enumerate() {
        let diff = max_abs_diff(out.vectors.row(i).as_slice().unwrap(), &case.cls);
        assert!(diff <= 1e-4, "case {}: {diff}", case.name);
        assert_eq!(
            out.token_counts[i] as usize,
            case.ids.len(),
            "case {}",
            case.name
        );
        assert_eq!(out.truncated[i], case.name == "long_essay");
    }
    let info = server.client.info().await.unwrap();
    assert_eq!(out.fingerprint, info.fingerprint);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn candle_server_gives_the_same_vectors_and_fingerprint_inputs() {
    let server = TestServer::start(fixture_args(EngineKind::Candle)).await;
    let r = reference();
    let out = server
        .client
        .embed(vec![r.cases[0].text.clone()], false)
        .await
        .unwrap();
    assert!(max_abs_diff(out.vectors.row(0).as_slice().unwrap(), &r.cases[0].cls) <= 1e-4);
    let info = server.client.info().await.unwrap();
    assert_eq!(info.model.unwrap().engine, "candle");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn f16_output_is_close_to_f32() {
    let server = ort_server().await;
    let texts = vec![
        "A short essay.".to_string(),
        "Another, longer essay text here.".into(),
    ];
    let f32s = server.client.embed(texts.clone(), false).await.unwrap();
    let f16s = server.client.embed(texts, true).await.unwrap();
    let diff = max_abs_diff(
        f32s.vectors.as_slice().unwrap(),
        f16s.vectors.as_slice().unwrap(),
    );
    // f16 has an 11-bit significand: relative error <= 2^-11 on values of magnitude < 4.
    assert!(diff > 0.0 && diff < 4.0 / 2048.0, "f16 diff {diff}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn info_describes_model_engine_and_limits() {
    let server = ort_server().await;
    let info = server.client.info().await.unwrap();
    let model = info.model.unwrap();
    assert_eq!(info.schema_version, hemma_proto::SCHEMA_VERSION);
    assert_eq!(
        info.schema_version, 2,
        "schema v2: whitespace matches are not counted"
    );
    assert_eq!(info.fingerprint.len(), 64);
    assert_eq!(model.model_id, "hemma/tiny-deberta-v3-random");
    assert_eq!((model.dim, model.max_length), (32, 512));
    assert_eq!(
        (model.engine.as_str(), model.execution_provider.as_str()),
        ("ort", "cpu")
    );
    assert_eq!(model.precision, "fp32");
    assert_eq!(model.pooling, "cls");
    assert_eq!(info.embedding_feature_names.len(), 32);
    assert_eq!(info.embedding_feature_names[0], "embedding_000");
    assert_eq!(info.limits.unwrap().max_items_per_request, 256);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn max_length_changes_the_fingerprint() {
    let a = ort_server().await;
    let b = TestServer::start(ServeArgs {
        max_length: Some(64),
        ..fixture_args(EngineKind::Ort)
    })
    .await;
    let (ia, ib) = (
        a.client.info().await.unwrap(),
        b.client.info().await.unwrap(),
    );
    assert_ne!(ia.fingerprint, ib.fingerprint);
    let long = reference()
        .cases
        .iter()
        .find(|c| c.name == "long_essay")
        .unwrap()
        .text
        .clone();
    let out = b.client.embed(vec![long], false).await.unwrap();
    assert_eq!((out.token_counts[0], out.truncated[0]), (64, true));
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

fn status_of(err: ClientError) -> (Code, String) {
    match err {
        ClientError::Status {
            code,
            message,
            correlation_id,
        } => {
            assert_ne!(correlation_id, "-", "errors carry a correlation id");
            (code, message)
        }
        other => panic!("expected a status, got {other}"),
    }
}

#[tokio::test]
async fn bad_requests_get_invalid_argument_and_the_server_keeps_serving() {
    let server = TestServer::start(ServeArgs {
        max_items_per_request: Some(3),
        max_bytes_per_text: Some(100),
        max_bytes_per_request: Some(150),
        ..fixture_args(EngineKind::Ort)
    })
    .await;
    let c = &server.client;
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![], "texts is empty"),
        (
            vec!["a".into(); 4],
            "the request has 4 texts; the limit is 3",
        ),
        (
            vec!["ok".into(), "x".repeat(101)],
            "text 1 is 101 bytes; the limit is 100",
        ),
        (
            vec!["x".repeat(80), "y".repeat(80)],
            "the texts total 160 bytes; the limit is 150",
        ),
    ];
    for (texts, want) in cases {
        let (code, message) = status_of(c.embed(texts, false).await.unwrap_err());
        assert_eq!(code, Code::InvalidArgument, "{message}");
        assert!(
            message.contains(want),
            "{message:?} should contain {want:?}"
        );
    }
    // An unknown dtype, sent with the raw generated client.
    let mut raw = server.raw_client().await;
    let err = raw
        .embed(hemma_proto::v1::EmbedRequest {
            texts: vec!["a".into()],
            dtype: 7,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("dtype 7"), "{}", err.message());
    // Still serving.
    assert_eq!(
        c.embed(vec!["still here".into()], false)
            .await
            .unwrap()
            .vectors
            .nrows(),
        1
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn http_routes_and_correlation_ids() {
    let server = ort_server().await;
    let http = reqwest::Client::new();
    let health = http.get(server.http("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = http.get(server.http("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let id = ready
        .headers()
        .get("x-correlation-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!id.is_empty());
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["ready"], true);
    // A caller's id is echoed back.
    let echoed = http
        .get(server.http("/healthz"))
        .header("x-correlation-id", "run-42.essay-7")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-correlation-id"], "run-42.essay-7");
    // gRPC answers carry one too.
    let mut raw = server.raw_client().await;
    let mut req = tonic::Request::new(hemma_proto::v1::InfoRequest {});
    req.metadata_mut()
        .insert("x-correlation-id", "abc-123".parse().unwrap());
    let resp = raw.info(req).await.unwrap();
    assert_eq!(resp.metadata().get("x-correlation-id").unwrap(), "abc-123");
    server
        .client
        .embed(vec!["count me".into()], false)
        .await
        .unwrap();
    let metrics = server.metrics().await;
    for needle in [
        "hemma_requests_total{method=\"/hemma.offload.v1.Offload/Embed\",code=\"Ok\"} 1",
        "hemma_request_duration_seconds_bucket",
        "hemma_queue_depth",
        "hemma_batch_rows_bucket",
        "hemma_batch_padded_tokens_bucket",
        "hemma_inference_duration_seconds_bucket",
    ] {
        assert!(
            metrics.contains(needle),
            "/metrics lacks {needle}:\n{metrics}"
        );
    }
    server.stop().await.unwrap();
}

/// Wraps an engine so the test decides when each batch may run (the warm-up runs freely).
struct Gated {
    inner: Box<dyn Engine>,
    warmed: bool,
    started: std_mpsc::Sender<usize>,
    go: std_mpsc::Receiver<()>,
}

impl Engine for Gated {
    fn info(&self) -> EngineInfo {
        self.inner.info()
    }
    fn embed(&mut self, batch: &TokenBatch) -> Result<Array2<f32>, EngineError> {
        if self.warmed {
            let _ = self.started.send(batch.rows());
            let _ = self.go.recv(); // Err (sender dropped) = run freely
        }
        self.warmed = true;
        self.inner.embed(batch)
    }
}

struct Gate {
    started: std_mpsc::Receiver<usize>,
    go: std_mpsc::Sender<()>,
}

async fn gated_server(args: ServeArgs) -> (TestServer, Gate) {
    let (started_tx, started_rx) = std_mpsc::channel();
    let (go_tx, go_rx) = std_mpsc::channel();
    let prepared = Prepared::new(config(args))
        .unwrap()
        .map_engine(move |inner| {
            Box::new(Gated {
                inner,
                warmed: false,
                started: started_tx,
                go: go_rx,
            })
        });
    let server = TestServer::start_prepared(prepared).await;
    (
        server,
        Gate {
            started: started_rx,
            go: go_tx,
        },
    )
}

impl Gate {
    /// Waits (off the runtime) until the engine has started a batch; returns its rows.
    async fn batch_started(&self) -> usize {
        tokio::task::block_in_place(|| self.started.recv().expect("engine starts a batch"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_answers_resource_exhausted() {
    let (server, gate) = gated_server(ServeArgs {
        queue_capacity: Some(4),
        max_items_per_request: Some(4),
        ..fixture_args(EngineKind::Ort)
    })
    .await;
    let first = {
        let c = server.client.clone();
        tokio::spawn(async move {
            c.embed(
                vec!["one".into(), "two".into(), "three".into(), "four".into()],
                false,
            )
            .await
        })
    };
    assert_eq!(
        gate.batch_started().await,
        4,
        "the four texts form one batch"
    );
    // The queue holds the four texts of the first request: no room for one more.
    let (code, message) = status_of(
        server
            .client
            .embed(vec!["five".into()], false)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, Code::ResourceExhausted);
    assert!(message.contains("queue is full"), "{message}");
    drop(gate.go); // let every batch run
    assert_eq!(first.await.unwrap().unwrap().vectors.nrows(), 4);
    // Room again.
    assert_eq!(
        server
            .client
            .embed(vec!["five".into()], false)
            .await
            .unwrap()
            .vectors
            .nrows(),
        1
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_the_request_in_flight() {
    let (mut server, gate) = gated_server(fixture_args(EngineKind::Ort)).await;
    let in_flight = {
        let c = server.client.clone();
        tokio::spawn(async move { c.embed(vec!["finish me".into()], false).await })
    };
    gate.batch_started().await;
    server.signal_shutdown();
    gate.go.send(()).unwrap();
    let out = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(out.vectors.nrows(), 1);
    server.join().await.expect("the server stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_batches() {
    let (server, gate) = gated_server(fixture_args(EngineKind::Ort)).await;
    let spawn = |text: &str| {
        let c = server.client.clone();
        let text = text.to_string();
        tokio::spawn(async move { c.embed(vec![text], false).await })
    };
    let a = spawn("first request");
    // While the engine holds the first batch, two more requests queue up...
    assert_eq!(gate.batch_started().await, 1);
    let b = spawn("second request");
    let c = spawn("third request");
    // ...and, once a metric shows both waiting, run as one batch of two.
    loop {
        let m = server.metrics().await;
        if m.contains("hemma_queue_depth 3") {
            break;
        }
        tokio::task::yield_now().await;
    }
    gate.go.send(()).unwrap();
    assert_eq!(
        gate.batch_started().await,
        2,
        "the two waiting requests are batched together"
    );
    gate.go.send(()).unwrap();
    for h in [a, b, c] {
        assert_eq!(h.await.unwrap().unwrap().vectors.nrows(), 1);
    }
    server.stop().await.unwrap();
}

/// Records the shape of every batch the engine runs.
struct ShapeRecorder {
    inner: Box<dyn Engine>,
    shapes: std::sync::Arc<std::sync::Mutex<Vec<(usize, usize)>>>,
}

impl Engine for ShapeRecorder {
    fn info(&self) -> EngineInfo {
        self.inner.info()
    }
    fn embed(&mut self, batch: &TokenBatch) -> Result<Array2<f32>, EngineError> {
        self.shapes.lock().unwrap().push(batch.ids.dim());
        self.inner.embed(batch)
    }
}

#[tokio::test]
async fn static_shapes_pad_batches_to_buckets_and_keep_the_vectors() {
    let shapes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = shapes.clone();
    let args = ServeArgs {
        shape_rows: Some(vec![4]),
        shape_seq: Some(vec![32, 128]),
        ..fixture_args(EngineKind::Ort)
    };
    let prepared = Prepared::new(config(args))
        .unwrap()
        .map_engine(move |inner| {
            Box::new(ShapeRecorder {
                inner,
                shapes: seen,
            })
        });
    let server = TestServer::start_prepared(prepared).await;
    let warmed: Vec<(usize, usize)> = shapes.lock().unwrap().clone();
    assert_eq!(
        warmed,
        vec![(4, 32), (4, 128), (4, 512)],
        "every bucket is warmed at start"
    );
    let r = reference();
    let picked: Vec<_> = r
        .cases
        .iter()
        .filter(|c| ["plain", "essay_crlf", "long_essay"].contains(&c.name.as_str()))
        .collect();
    let texts = picked.iter().map(|c| c.text.clone()).collect();
    let out = server.client.embed(texts, false).await.unwrap();
    for (i, case) in picked.iter().enumerate() {
        let diff = max_abs_diff(out.vectors.row(i).as_slice().unwrap(), &case.cls);
        assert!(diff <= 1e-4, "case {}: {diff}", case.name);
    }
    let ran: Vec<(usize, usize)> = shapes.lock().unwrap()[3..].to_vec();
    assert!(!ran.is_empty());
    for shape in ran {
        assert!(
            warmed.contains(&shape),
            "batch shape {shape:?} is not a bucket"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn reflection_lists_the_services_for_grpcurl() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let server = ort_server().await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("expected a service list, got {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in ["hemma.offload.v1.Offload", "grpc.health.v1.Health"] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    server.stop().await.unwrap();
}

/// Holds the warm-up batch (the last step of loading) until released.
struct SlowLoad {
    inner: Box<dyn Engine>,
    release: Option<std_mpsc::Receiver<()>>,
}

impl Engine for SlowLoad {
    fn info(&self) -> EngineInfo {
        self.inner.info()
    }
    fn embed(&mut self, batch: &TokenBatch) -> Result<Array2<f32>, EngineError> {
        if let Some(release) = self.release.take() {
            let _ = release.recv();
        }
        self.inner.embed(batch)
    }
}

#[tokio::test]
async fn readyz_says_loading_and_shutdown_does_not_wait_for_the_load() {
    let (release_tx, release_rx) = std_mpsc::channel();
    let prepared = Prepared::new(config(fixture_args(EngineKind::Ort)))
        .unwrap()
        .map_engine(move |inner| {
            Box::new(SlowLoad {
                inner,
                release: Some(release_rx),
            })
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(prepared.serve(listener, async move {
        let _ = stop_rx.await;
    }));
    let ready = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("loading"));
    let healthz = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(
        healthz.status(),
        200,
        "the process is up while the model loads"
    );
    stop_tx.send(()).unwrap();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(30), serving).await;
    let _ = release_tx.send(()); // let the engine thread finish
    stopped
        .expect("shutdown does not wait for the load")
        .unwrap()
        .unwrap();
}
