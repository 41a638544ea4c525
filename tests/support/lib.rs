//! Helpers shared by the end-to-end tests and the benchmarks: fixture paths, the torch reference,
//! and a real server on a loopback port driven by the real client.

pub mod fake_languagetool;

use std::net::SocketAddr;
use std::path::PathBuf;

use hemma_client::{Client, ClientOptions};
use hemma_server::config::{Config, EngineKind, ServeArgs};
use hemma_server::server::{Prepared, ServeError};
use serde::Deserialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The committed tiny random-weight DeBERTa-v3 fixture (see its README for the recipe).
pub fn fixture_dir() -> PathBuf {
    repo_root().join("tests/fixtures/tiny-deberta")
}

/// `libonnxruntime.so` for the tests: `$ORT_DYLIB_PATH`, as `scripts/setup-ort.sh` prints it.
pub fn ort_dylib() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "ORT_DYLIB_PATH is not set: run `eval \"$(scripts/setup-ort.sh)\"` (or scripts/test.sh) first"
        ),
    }
}

/// The real LanguageTool instances `scripts/languagetool.sh start` exported.
pub fn languagetool_urls() -> Vec<String> {
    match std::env::var("HEMMA_TEST_LANGUAGETOOL_URL") {
        Ok(urls) if !urls.trim().is_empty() => urls.split(',').map(str::to_owned).collect(),
        _ => panic!(
            "HEMMA_TEST_LANGUAGETOOL_URL is not set: these tests need a real LanguageTool; run \
             `eval \"$(scripts/languagetool.sh start)\"` (or scripts/test.sh, which does)"
        ),
    }
}

/// The entry files of a `hemma extract` cache folder (temporary files, named with a leading
/// dot, are left out).
pub fn cache_entries(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !e.file_name().to_string_lossy().starts_with('.') {
                out.push(p);
            }
        }
    }
    out
}

/// One case of `reference.json`: a text, its token ids and torch's [CLS] vector.
#[derive(Debug, Clone, Deserialize)]
pub struct RefCase {
    /// Case name.
    pub name: String,
    /// The text.
    pub text: String,
    /// Token ids from the Python `tokenizers` library.
    pub ids: Vec<u32>,
    /// torch fp32 [CLS] vector of the text alone.
    pub cls: Vec<f32>,
}

/// Ids of a text truncated to a smaller max_length.
#[derive(Debug, Clone, Deserialize)]
pub struct RefTruncation {
    /// The text.
    pub text: String,
    /// The max_length used.
    pub max_length: usize,
    /// Token ids.
    pub ids: Vec<u32>,
}

/// Texts run as one padded batch in torch.
#[derive(Debug, Clone, Deserialize)]
pub struct RefBatch {
    /// The texts.
    pub texts: Vec<String>,
    /// Their token ids.
    pub ids: Vec<Vec<u32>>,
    /// torch [CLS] rows of the padded batch.
    pub cls: Vec<Vec<f32>>,
}

/// The fixture's `reference.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    /// max_length of `cases`.
    pub max_length: usize,
    /// Embedding width.
    pub dim: usize,
    /// Single texts.
    pub cases: Vec<RefCase>,
    /// Truncation at smaller lengths.
    pub truncation: Vec<RefTruncation>,
    /// One padded batch.
    pub batch: RefBatch,
}

/// Reads the fixture's reference outputs.
pub fn reference() -> Reference {
    let path = fixture_dir().join("reference.json");
    let text = std::fs::read_to_string(&path).expect("reference.json is committed");
    serde_json::from_str(&text).expect("reference.json parses")
}

/// Largest absolute difference between two vectors of equal length.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vectors differ in length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Settings for a test server on the fixture: the given engine, 127.0.0.1:0, 1 thread.
pub fn fixture_args(engine: EngineKind) -> ServeArgs {
    ServeArgs {
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        model_dir: Some(fixture_dir()),
        engine: Some(engine),
        ort_dylib: (engine == EngineKind::Ort).then(ort_dylib),
        threads: Some(1),
        nlp_models_dir: Some(repo_root().join("models")),
        ..Default::default()
    }
}

/// Settings for a test server on the fixture (candle engine: no native library) that proxies
/// LanguageTool at `urls`, with short timeouts and probes suited to tests.
pub fn grammar_args(urls: &[String]) -> ServeArgs {
    ServeArgs {
        languagetool_url: Some(urls.to_vec()),
        languagetool_timeout_secs: Some(2.0),
        languagetool_probe_secs: Some(30.0),
        ..fixture_args(EngineKind::Candle)
    }
}

/// GETs `/readyz` until `until(status, body)` holds; panics after 20 s.
pub async fn wait_readyz(
    server: &TestServer,
    until: impl Fn(u16, &serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let resp = reqwest::get(server.http("/readyz"))
            .await
            .expect("GET /readyz");
        let code = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.expect("readyz is JSON");
        if until(code, &body) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "readyz never reached the expected state; last: {code} {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A server running in this process on a loopback port.
pub struct TestServer {
    /// Its address.
    pub addr: SocketAddr,
    /// A connected client.
    pub client: Client,
    shutdown: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), ServeError>>,
}

impl TestServer {
    /// Starts a server with `args` and waits until its gRPC health says SERVING.
    pub async fn start(args: ServeArgs) -> TestServer {
        Self::start_prepared(Prepared::new(config(args)).expect("fixture server prepares")).await
    }

    /// Starts a server and returns once it listens, without waiting for it to be ready.
    pub async fn start_unready(args: ServeArgs) -> TestServer {
        let prepared = Prepared::new(config(args)).expect("fixture server prepares");
        Self::spawn(prepared, false).await
    }

    /// Starts an already prepared server (e.g. with a wrapped engine) and waits until it is ready.
    pub async fn start_prepared(prepared: Prepared) -> TestServer {
        Self::spawn(prepared, true).await
    }

    async fn spawn(prepared: Prepared, wait: bool) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound address");
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(prepared.serve(listener, async move {
            let _ = rx.await;
        }));
        let url = format!("http://{addr}");
        let client = Client::connect(ClientOptions::new(url.clone()))
            .await
            .expect("client connects");
        if wait {
            wait_serving(&url).await;
        }
        TestServer {
            addr,
            client,
            shutdown: Some(tx),
            handle,
        }
    }

    /// Base URL of the HTTP routes.
    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A raw gRPC channel to the server, for generated clients the library does not wrap.
    pub async fn channel(&self) -> tonic::transport::Channel {
        channel(&self.http("")).await
    }

    /// The `/metrics` page.
    pub async fn metrics(&self) -> String {
        let url = self.http("/metrics");
        let resp = reqwest::get(&url).await.expect("GET /metrics");
        resp.text().await.expect("metrics body")
    }

    /// Asks for a graceful shutdown and returns the serve result once it has stopped.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.handle.await.expect("server task joins")
    }

    /// Sends the shutdown signal without waiting.
    pub fn signal_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// The generated gRPC client itself, for requests the typed client would never send.
    pub async fn raw_client(
        &self,
    ) -> hemma_proto::v1::offload_client::OffloadClient<tonic::transport::Channel> {
        hemma_proto::v1::offload_client::OffloadClient::new(channel(&self.http("")).await)
    }

    /// Waits for the server to stop (after [`TestServer::signal_shutdown`]).
    pub async fn join(self) -> Result<(), ServeError> {
        self.handle.await.expect("server task joins")
    }
}

/// Resolves settings as the binary would, without a file or environment.
pub fn config(args: ServeArgs) -> Config {
    Config::resolve(args, None, None).expect("test settings are valid")
}

async fn channel(url: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(url.to_owned())
        .expect("valid url")
        .connect()
        .await
        .expect("gRPC channel connects")
}

/// Follows the gRPC health Watch stream until the server reports SERVING.
async fn wait_serving(url: &str) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let mut health = HealthClient::new(channel(url).await);
    let mut stream = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health watch starts")
        .into_inner();
    while let Some(msg) = stream.next().await {
        if msg.expect("health stream").status() == ServingStatus::Serving {
            return;
        }
    }
    panic!("health stream ended before the server was SERVING");
}
