//! A corpus run over several servers (`hemma extract --server a,b`, `hemma.Client("a,b")`): the
//! chunks are spread over all of them, a server that goes away mid-run leaves it and the others
//! take its chunks, servers with different fingerprints are refused at the start, and a server
//! whose fingerprint changes mid-run is dropped with a sentence while the others go on.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures::{Stream, StreamExt};
use hemma_client::{Client, ClientOptions};
use hemma_e2e::{TestServer, fixture_args};
use hemma_proto::v1::offload_client::OffloadClient;
use hemma_proto::v1::offload_server::{Offload, OffloadServer};
use hemma_proto::v1::{
    CheckGrammarRequest, CheckGrammarResponse, EmbedRequest, EmbedResponse, ExtractChunk,
    ExtractChunkResult, ExtractRequest, ExtractResponse, FeatureSet, InfoRequest, InfoResponse,
    extract_chunk_result,
};
use hemma_runs::{Essay, Progress, RunError, RunOptions, RunOutput, Silent};
use hemma_server::config::{EngineKind, ServeArgs};
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

fn essays(n: usize) -> Vec<Essay> {
    (0..n)
        .map(|i| Essay {
            id: format!("e{i}"),
            text: format!("Essay {i} says something. It has {i} points."),
            prompt: None,
        })
        .collect()
}

fn options() -> RunOptions {
    RunOptions {
        feature_set: FeatureSet::Embeddings,
        chunk_size: 2,
        concurrency: 2,
        retries: 2,
        backoff: Duration::from_millis(50),
        cache: None,
    }
}

/// `run` within a minute: a run that loses track of a chunk waits for it forever, and a hang
/// here should fail the test rather than the CI job.
async fn within<T>(run: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run ended within 60 s")
}

/// Every embedding of `a` equals that of `b`, row by row (same engine, same fixture model).
fn same_rows(a: &RunOutput, b: &RunOutput) {
    let (a, b) = (
        a.embeddings.as_ref().expect("embeddings"),
        b.embeddings.as_ref().expect("embeddings"),
    );
    assert_eq!(a.dim(), b.dim());
    for (x, y) in a.iter().zip(b.iter()) {
        assert!((x - y).abs() < 1e-5, "{x} vs {y}");
    }
}

/// Counts essays done and, once `at` are, sends the signal (once).
struct TripAt {
    done: AtomicU64,
    at: u64,
    trip: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl Progress for TripAt {
    fn advance(&self, n: u64) {
        if self.done.fetch_add(n, Ordering::SeqCst) + n >= self.at
            && let Some(tx) = self.trip.lock().unwrap().take()
        {
            let _ = tx.send(());
        }
    }
    fn note(&self, _line: &str) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_spread_over_two_servers_and_one_that_goes_away_leaves_the_others_finish() {
    let a = TestServer::start(fixture_args(EngineKind::Candle)).await;
    let mut b = TestServer::start(ServeArgs {
        shutdown_grace_secs: Some(0.05),
        ..fixture_args(EngineKind::Candle)
    })
    .await;
    let input = essays(40);
    let alone = hemma_runs::extract(
        std::slice::from_ref(&a.client),
        input.clone(),
        &options(),
        &Silent,
    )
    .await
    .expect("one server");

    let b_client = b.client.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let progress = TripAt {
        done: AtomicU64::new(0),
        at: 16,
        trip: std::sync::Mutex::new(Some(tx)),
    };
    let killer = tokio::spawn(async move {
        if rx.await.is_ok() {
            b.signal_shutdown(); // no grace: its open stream is cut mid-run
            let _ = b.join().await;
        }
    });
    let both = within(hemma_runs::extract(
        &[a.client.clone(), b_client],
        input,
        &options(),
        &progress,
    ))
    .await
    .expect("the run finishes on the server that stays");
    killer.await.unwrap();
    same_rows(&both, &alone);
    let [sa, sb] = &both.report.servers[..] else {
        panic!("{:?}", both.report.servers)
    };
    assert!(sa.chunks > 0 && sb.chunks > 0, "both served: {sa:?} {sb:?}");
    assert_eq!(sa.chunks + sb.chunks, 20, "every chunk stored once");
    assert!(sa.left.is_none(), "{sa:?}");
    a.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_with_different_fingerprints_are_refused_at_the_start_naming_both() {
    let candle = TestServer::start(fixture_args(EngineKind::Candle)).await;
    let ort = TestServer::start(fixture_args(EngineKind::Ort)).await;
    let err = hemma_runs::extract(
        &[candle.client.clone(), ort.client.clone()],
        essays(4),
        &options(),
        &Silent,
    )
    .await
    .expect_err("the engines round differently: different fingerprints");
    assert!(matches!(err, RunError::FingerprintsDiffer { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(candle.client.endpoint()) && text.contains(ort.client.endpoint()),
        "{text}"
    );
    candle.stop().await.unwrap();
    ort.stop().await.unwrap();
}

/// A server in front of a real one that answers its first `honest` chunks with the real
/// fingerprint and later ones with another (as a server restarted with another model would).
struct Relabel {
    upstream: OffloadClient<Channel>,
    honest: usize,
    answered: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl Offload for Relabel {
    async fn info(&self, r: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        self.upstream.clone().info(r.into_inner()).await
    }

    async fn embed(&self, r: Request<EmbedRequest>) -> Result<Response<EmbedResponse>, Status> {
        self.upstream.clone().embed(r.into_inner()).await
    }

    async fn check_grammar(
        &self,
        r: Request<CheckGrammarRequest>,
    ) -> Result<Response<CheckGrammarResponse>, Status> {
        self.upstream.clone().check_grammar(r.into_inner()).await
    }

    async fn extract(
        &self,
        r: Request<ExtractRequest>,
    ) -> Result<Response<ExtractResponse>, Status> {
        self.upstream.clone().extract(r.into_inner()).await
    }

    type ExtractStreamStream =
        Pin<Box<dyn Stream<Item = Result<ExtractChunkResult, Status>> + Send + 'static>>;

    async fn extract_stream(
        &self,
        r: Request<Streaming<ExtractChunk>>,
    ) -> Result<Response<Self::ExtractStreamStream>, Status> {
        let (upstream, honest, answered) =
            (self.upstream.clone(), self.honest, self.answered.clone());
        let answers = r.into_inner().then(move |chunk| {
            let (mut upstream, answered) = (upstream.clone(), answered.clone());
            async move {
                let chunk = chunk?;
                let request = chunk.request.unwrap_or_default();
                let mut response = upstream.extract(request).await?.into_inner();
                if answered.fetch_add(1, Ordering::SeqCst) >= honest {
                    response.fingerprint = "f".repeat(64);
                }
                Ok(ExtractChunkResult {
                    chunk_id: chunk.chunk_id,
                    ids: chunk.ids,
                    outcome: Some(extract_chunk_result::Outcome::Response(response)),
                })
            }
        });
        Ok(Response::new(Box::pin(answers)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_fingerprint_changes_mid_run_is_dropped_and_the_others_go_on() {
    let real = TestServer::start(fixture_args(EngineKind::Candle)).await;
    let answered = Arc::new(AtomicUsize::new(0));
    let relabel = OffloadServer::new(Relabel {
        upstream: real.raw_client().await,
        honest: 1,
        answered: answered.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let front = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(relabel)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let changing = Client::connect(ClientOptions::new(format!("http://{addr}")))
        .await
        .unwrap();
    let notes = Notes::default();
    let input = essays(24);
    let out = within(hemma_runs::extract(
        &[changing.clone(), real.client.clone()],
        input.clone(),
        &options(),
        &notes,
    ))
    .await
    .expect("the honest server finishes the run");
    let alone = hemma_runs::extract(
        std::slice::from_ref(&real.client),
        input,
        &options(),
        &Silent,
    )
    .await
    .unwrap();
    same_rows(&out, &alone);
    let dropped = &out.report.servers[0];
    let left = dropped
        .left
        .as_deref()
        .expect("the changed server left the run");
    assert!(left.contains("fingerprint changed"), "{left}");
    assert!(
        notes
            .lines()
            .iter()
            .any(|l| l.contains(changing.endpoint()) && l.contains("leaves this run")),
        "{:?}",
        notes.lines()
    );
    assert_eq!(out.report.fingerprint, alone.report.fingerprint);
    assert!(
        answered.load(Ordering::SeqCst) >= 2,
        "it answered, then changed"
    );
    front.abort();
    real.stop().await.unwrap();
}

/// Keeps the lines a run notes.
#[derive(Default)]
struct Notes(std::sync::Mutex<Vec<String>>);

impl Notes {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl Progress for Notes {
    fn advance(&self, _n: u64) {}
    fn note(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_owned());
    }
}
