//! Issue 14 through the real server: texts over the analyser's limits answer NaN rows with a
//! status (gRPC, stream and HTTP), deadlines and disconnects stop the work, gRPC over HTTP/1 is
//! refused at once, half-sent requests are dropped, and a lost engine stops the server.
//!
//! No assertion here is on wall-clock time: waits poll the server's own counters with a generous
//! upper bound that only guards against a hang.

use std::time::Duration;

use hemma_e2e::fake_languagetool::FakeLanguageTool;
use hemma_e2e::{TestServer, config, fixture_args, grammar_args};
use hemma_proto::v1::FeatureSet;
use hemma_server::config::{EngineKind, ServeArgs};
use hemma_server::server::{Prepared, ServeError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

/// A text with one 5,000-character word: over the 2,000-character word limit.
fn long_word_essay() -> String {
    format!("I pasted this: {} and then stopped.", "x".repeat(5000))
}

fn normal(i: usize) -> String {
    format!("This is essay number {i}. It has two sentences.")
}

async fn grammar_server(fake: &FakeLanguageTool, extra: ServeArgs) -> TestServer {
    let args = grammar_args(&[fake.url()]).or(extra);
    TestServer::start(args).await
}

/// A server with one parser thread (so one heavy text holds all of it) and a fake LanguageTool,
/// which must live as long as the server.
async fn one_parser_server() -> (FakeLanguageTool, TestServer) {
    let fake = FakeLanguageTool::start().await;
    let server = grammar_server(
        &fake,
        ServeArgs {
            nlp_threads: Some(1),
            ..ServeArgs::default()
        },
    )
    .await;
    (fake, server)
}

/// The value of `name` (a full series name with labels) on the metrics page, or 0.
fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// Polls `/metrics` until `name` reaches `at_least` (at most a minute: a hang guard).
async fn until_metric(server: &TestServer, name: &str, at_least: f64) -> f64 {
    for _ in 0..600 {
        let v = metric(&server.metrics().await, name);
        if v >= at_least {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} never reached {at_least}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_over_a_limit_gets_a_nan_row_and_a_status_and_the_others_are_complete() {
    let fake = FakeLanguageTool::start().await;
    let server = grammar_server(&fake, ServeArgs::default()).await;
    let texts = vec![normal(0), long_word_essay(), normal(2)];
    let out = server
        .client
        .extract(
            texts.clone(),
            vec!["A prompt.".into()],
            FeatureSet::Combined,
            false,
        )
        .await
        .expect("a hostile text does not fail the request");
    let handcrafted = out.handcrafted.expect("combined has handcrafted");
    let embeddings = out.embeddings.expect("combined has embeddings");
    assert!(
        handcrafted.row(1).iter().all(|v| v.is_nan()),
        "row 1 is NaN"
    );
    for row in [0, 2] {
        assert!(
            handcrafted.row(row).iter().any(|v| !v.is_nan()),
            "row {row} is computed"
        );
    }
    assert!(
        embeddings.row(1).iter().all(|v| v.is_finite())
            && embeddings.row(1).iter().any(|v| *v != 0.0),
        "the limited row still has its embedding"
    );
    assert_eq!(out.limited.len(), 1, "{:?}", out.limited);
    assert_eq!(out.limited[0].index, 1);
    assert_eq!(out.limited[0].code, "word_too_long");
    assert!(
        out.limited[0].message.contains("2,000"),
        "{}",
        out.limited[0].message
    );
    assert_eq!(
        fake.checks().len(),
        2,
        "the limited text is not sent to LanguageTool"
    );
    let page = server.metrics().await;
    assert_eq!(
        metric(&page, "hemma_rows_limited_total{reason=\"word_too_long\"}"),
        1.0,
        "{page}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_lists_limited_rows_beside_meta_json() {
    let fake = FakeLanguageTool::start().await;
    let server = grammar_server(&fake, ServeArgs::default()).await;
    let body = serde_json::json!({
        "texts": [normal(0), long_word_essay()],
        "prompts": ["A prompt.", "A prompt."],
        "feature_set": "handcrafted",
    });
    let resp = reqwest::Client::new()
        .post(server.http("/v1/extract"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-limited-rows"], "1");
    let bytes = resp.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let status: serde_json::Value =
        serde_json::from_reader(zip.by_name("row_status.json").unwrap()).unwrap();
    assert_eq!(status["rows"], 2);
    assert_eq!(status["limited"][0]["index"], 1);
    assert_eq!(status["limited"][0]["code"], "word_too_long");
    let meta: serde_json::Value =
        serde_json::from_reader(zip.by_name("meta.json").unwrap()).unwrap();
    assert!(
        !meta.to_string().contains("word_too_long"),
        "meta.json keeps the old client's keys only"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_deadline_stops_the_parse_and_frees_its_place() {
    let (_fake, server) = one_parser_server().await;
    // 19,000 tokens: within the limits, seconds of parsing in a debug build.
    let heavy = "word ".repeat(19_000);
    let mut raw = server.raw_client().await;
    let mut req = tonic::Request::new(hemma_client::extract_request(
        vec![heavy],
        vec!["A prompt.".into()],
        FeatureSet::Handcrafted,
        false,
    ));
    req.set_timeout(Duration::from_millis(300));
    let err = raw
        .extract(req)
        .await
        .expect_err("the deadline passes first");
    // The client's own timer races the server's (same deadline): either way the call ends and
    // the server stops the parse. The server's answer itself is tested in `api::grpc_guard`.
    assert!(
        matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{err:?}"
    );
    until_metric(&server, "hemma_analyses_cancelled_total", 1.0).await;
    // The place is back: a small request is answered.
    let ok = server
        .client
        .extract(
            vec![normal(1)],
            vec!["A prompt.".into()],
            FeatureSet::Handcrafted,
            false,
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_client_that_disconnects_cancels_its_extraction() {
    let (_fake, server) = one_parser_server().await;
    let body = serde_json::json!({
        "texts": ["word ".repeat(19_000)],
        "prompts": ["A prompt."],
        "feature_set": "handcrafted",
    });
    let request = reqwest::Client::new()
        .post(server.http("/v1/extract"))
        .json(&body)
        .timeout(Duration::from_millis(300))
        .send();
    assert!(request.await.is_err(), "the client gives up first");
    until_metric(&server, "hemma_analyses_cancelled_total", 1.0).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_http1_is_refused_at_once_with_a_sentence() {
    let server = TestServer::start(fixture_args(EngineKind::Ort)).await;
    let resp = reqwest::Client::builder()
        .http1_only()
        .build()
        .unwrap()
        .post(server.http("/hemma.offload.v1.Offload/Info"))
        .header("content-type", "application/grpc")
        .body(vec![0u8, 0, 0, 0, 0])
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("an answer, not a hang");
    assert_eq!(resp.status(), 505);
    let text = resp.text().await.unwrap();
    assert!(text.contains("gRPC needs HTTP/2"), "{text}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_is_dropped_after_the_header_timeout() {
    let server = TestServer::start(ServeArgs {
        header_read_timeout_secs: Some(0.5),
        ..fixture_args(EngineKind::Ort)
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // The server closes the connection (with or without a 408); a hang fails the guard.
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the half-sent request was never dropped");
    assert!(
        !String::from_utf8_lossy(&buf).contains("200 OK"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_engine_fails_readiness_and_stops_the_server_with_an_error() {
    struct LosesOnLost(Box<dyn hemma_embed::Engine>);
    impl hemma_embed::Engine for LosesOnLost {
        fn info(&self) -> hemma_embed::EngineInfo {
            self.0.info()
        }
        fn embed(
            &mut self,
            batch: &hemma_embed::TokenBatch,
        ) -> Result<ndarray::Array2<f32>, hemma_embed::EngineError> {
            if batch.rows() == 3 {
                return Err(hemma_embed::EngineError::Lost("the device is gone".into()));
            }
            self.0.embed(batch)
        }
    }
    let prepared = Prepared::new(config(fixture_args(EngineKind::Ort)))
        .unwrap()
        .map_engine(|inner| Box::new(LosesOnLost(inner)));
    let server = TestServer::start_prepared(prepared).await;
    let err = server
        .client
        .embed(vec!["a".into(), "b".into(), "c".into()], false)
        .await
        .expect_err("the batch fails");
    assert!(err.to_string().contains("device is gone"), "{err}");
    let result = tokio::time::timeout(Duration::from_secs(60), server.join())
        .await
        .expect("the server stops by itself");
    assert!(
        matches!(result, Err(ServeError::EngineStopped)),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_size_message_gets_resource_exhausted_with_a_sentence() {
    let server = TestServer::start(ServeArgs {
        max_bytes_per_request: Some(1_000_000),
        max_message_bytes: Some(2_100_000),
        ..fixture_args(EngineKind::Ort)
    })
    .await;
    let err = server
        .client
        .embed(vec!["word ".repeat(700_000)], false)
        .await
        .expect_err("3.5 MB is over the 2.1 MB message limit");
    let text = err.to_string();
    assert_eq!(err.code(), Some(Code::ResourceExhausted), "{text}");
    assert!(text.contains("--max-message-bytes"), "{text}");
    // The connection is still usable.
    assert!(
        server
            .client
            .embed(vec!["fine".into()], false)
            .await
            .is_ok()
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_left_open_is_cut_after_the_shutdown_grace() {
    let mut server = TestServer::start(ServeArgs {
        shutdown_grace_secs: Some(1.0),
        ..fixture_args(EngineKind::Ort)
    })
    .await;
    // A stream whose client never ends its requests (and never reads): it would hold graceful
    // shutdown forever.
    let chunks = futures::stream::pending::<hemma_proto::v1::ExtractChunk>();
    let open = server
        .client
        .extract_stream(chunks)
        .await
        .expect("the stream opens");
    server.signal_shutdown();
    let stopped = tokio::time::timeout(Duration::from_secs(60), server.join())
        .await
        .expect("the server stops after its grace period");
    assert!(stopped.is_ok(), "{stopped:?}");
    drop(open);
}
