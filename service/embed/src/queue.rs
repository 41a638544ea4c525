//! The embedding queue: admission, batching across requests, and the engine thread.
//!
//! A request takes one queue permit per text or is refused at once (RESOURCE_EXHAUSTED). Its texts
//! are tokenised on the blocking pool and queued one sequence each. A batcher task waits until the
//! engine is free, then cuts the next batch from everything waiting ([`plan::next_batch`]) and
//! hands it to the thread that alone owns the [`Engine`]. Cutting only when the engine is free
//! lets requests that arrive during a batch share the next one. Each sequence's result goes back
//! on its own oneshot; sequences whose requester has gone are skipped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ndarray::Array2;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::plan::{self, Budget};
use super::shapes::ShapeBuckets;
use super::tokenize::{TextTokenizer, TokenizeError};
use super::{Engine, EngineError, EngineInfo, TokenBatch};
use crate::metrics::Metrics;

/// Why a request could not be embedded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// Too many texts are waiting; the caller should retry later.
    #[error(
        "the embedding queue is full: {requested} texts asked for, {free} of {capacity} places free; retry later or send fewer texts"
    )]
    QueueFull {
        /// Texts in the refused request.
        requested: usize,
        /// Free places when it arrived.
        free: usize,
        /// Queue capacity.
        capacity: usize,
    },
    /// A text could not be tokenised.
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    /// The engine failed on a batch holding this request's texts.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The engine thread has stopped (shutdown or crash).
    #[error("the embedding engine is not running")]
    EngineGone,
}

/// Embeddings of one request, in request order.
#[derive(Debug, Clone)]
pub struct Embedding {
    /// [texts, dim].
    pub vectors: Array2<f32>,
    /// Tokens per text, special tokens included.
    pub token_counts: Vec<u32>,
    /// Whether each text was truncated to max_length.
    pub truncated: Vec<bool>,
}

/// Queue and batch limits.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Budget of one batch.
    pub budget: Budget,
    /// Texts waiting at most.
    pub capacity: usize,
    /// Static shapes batches are padded to (dynamic: none).
    pub shapes: ShapeBuckets,
}

/// One sequence waiting for the engine.
struct Pending {
    seq: u64,
    ids: Vec<u32>,
    reply: oneshot::Sender<Result<Vec<f32>, EngineError>>,
    span: tracing::Span,
    _permit: OwnedSemaphorePermit,
    _depth: DepthGuard,
}

/// Counts a sequence in `hemma_queue_depth` from enqueue until it is answered, skipped or refused.
struct DepthGuard(prometheus_client::metrics::gauge::Gauge);

impl DepthGuard {
    fn new(gauge: &prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        DepthGuard(gauge.clone())
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A batch for the engine thread and the engine slot it holds until it is done.
struct Job {
    batch: Vec<Pending>,
    _slot: OwnedSemaphorePermit,
}

/// Handle to the embedding pipeline; cheap to clone.
#[derive(Clone)]
pub struct Embedder {
    inner: Arc<Inner>,
}

struct Inner {
    tokenizer: Arc<TextTokenizer>,
    tx: mpsc::Sender<Pending>,
    permits: Arc<Semaphore>,
    capacity: usize,
    info: EngineInfo,
    metrics: Metrics,
    next_seq: AtomicU64,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("info", &self.inner.info)
            .field("capacity", &self.inner.capacity)
            .finish()
    }
}

impl Embedder {
    /// Loads the engine on its own thread (`load` runs there), warms it up, and starts batching.
    ///
    /// Returns once the engine has answered a warm-up batch, so a returned embedder is ready.
    pub async fn start<F>(
        load: F,
        tokenizer: Arc<TextTokenizer>,
        config: QueueConfig,
        metrics: Metrics,
    ) -> Result<Embedder, EngineError>
    where
        F: FnOnce() -> Result<Box<dyn Engine>, EngineError> + Send + 'static,
    {
        let warmup = tokenizer
            .encode(0, "Warm-up text for the embedding engine.")
            .map_err(|e| EngineError::Load(e.to_string()))?
            .ids;
        let (ready_tx, ready_rx) = oneshot::channel();
        let (batch_tx, batch_rx) = mpsc::channel::<Job>(1);
        let engine_metrics = metrics.clone();
        let shapes = config.shapes.clone();
        std::thread::Builder::new()
            .name("hemma-engine".into())
            .spawn(move || engine_thread(load, warmup, shapes, ready_tx, batch_rx, engine_metrics))
            .map_err(|e| EngineError::Load(format!("cannot start the engine thread: {e}")))?;
        let info = ready_rx
            .await
            .map_err(|_| EngineError::Load("the engine thread exited while loading".into()))??;
        let (tx, rx) = mpsc::channel(config.capacity);
        tokio::spawn(batcher(rx, batch_tx, config.budget));
        Ok(Embedder {
            inner: Arc::new(Inner {
                tokenizer,
                tx,
                permits: Arc::new(Semaphore::new(config.capacity)),
                capacity: config.capacity,
                info,
                metrics,
                next_seq: AtomicU64::new(0),
            }),
        })
    }

    /// What the engine reported about itself.
    pub fn info(&self) -> &EngineInfo {
        &self.inner.info
    }

    /// Longest tokenised text, special tokens included.
    pub fn max_length(&self) -> usize {
        self.inner.tokenizer.max_length()
    }

    /// Queue places: texts waiting for or in the engine at most.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Embeds `texts`, batched with whatever else is waiting; refuses at once when the queue
    /// has no room for all of them.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Embedding, EmbedError> {
        let inner = &self.inner;
        let n = texts.len();
        let permit = u32::try_from(n)
            .ok()
            .and_then(|k| inner.permits.clone().try_acquire_many_owned(k).ok())
            .ok_or_else(|| {
                inner.metrics.queue_rejections.inc();
                EmbedError::QueueFull {
                    requested: n,
                    free: inner.permits.available_permits(),
                    capacity: inner.capacity,
                }
            })?;
        self.embed_with(texts, permit).await
    }

    /// Embeds `texts` like [`Embedder::embed`] but waits (first come, first served) for queue
    /// places instead of refusing; for the server's own work, such as an extraction's strings.
    /// More texts than [`Embedder::capacity`] are refused, as they could never fit.
    pub async fn embed_waiting(&self, texts: Vec<String>) -> Result<Embedding, EmbedError> {
        let inner = &self.inner;
        let n = texts.len();
        let too_many = || EmbedError::QueueFull {
            requested: n,
            free: inner.permits.available_permits(),
            capacity: inner.capacity,
        };
        let k = u32::try_from(n).map_err(|_| too_many())?;
        if n > inner.capacity {
            return Err(too_many());
        }
        let permit = inner
            .permits
            .clone()
            .acquire_many_owned(k)
            .await
            .map_err(|_| EmbedError::EngineGone)?;
        self.embed_with(texts, permit).await
    }

    async fn embed_with(
        &self,
        texts: Vec<String>,
        mut permit: OwnedSemaphorePermit,
    ) -> Result<Embedding, EmbedError> {
        let inner = &self.inner;
        let n = texts.len();
        let tokenizer = inner.tokenizer.clone();
        let encoded = tokio::task::spawn_blocking(move || {
            texts
                .iter()
                .enumerate()
                .map(|(i, t)| tokenizer.encode(i, t))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|_| EmbedError::EngineGone)??;

        let mut receivers = Vec::with_capacity(n);
        let mut token_counts = Vec::with_capacity(n);
        let mut truncated = Vec::with_capacity(n);
        for enc in encoded {
            let (reply, rx) = oneshot::channel();
            token_counts.push(enc.ids.len() as u32);
            truncated.push(enc.truncated);
            let pending = Pending {
                seq: inner.next_seq.fetch_add(1, Ordering::Relaxed),
                ids: enc.ids,
                reply,
                span: tracing::Span::current(),
                _permit: permit
                    .split(1)
                    .expect("one permit was acquired for every text"),
                _depth: DepthGuard::new(&inner.metrics.queue_depth),
            };
            inner
                .tx
                .try_send(pending)
                .map_err(|_| EmbedError::EngineGone)?;
            receivers.push(rx);
        }
        let rows = futures::future::join_all(receivers).await;
        let dim = inner.info.dim;
        let mut vectors = Array2::<f32>::zeros((n, dim));
        for (i, row) in rows.into_iter().enumerate() {
            let row = row.map_err(|_| EmbedError::EngineGone)??;
            vectors
                .row_mut(i)
                .assign(&ndarray::ArrayView1::from(&row[..]));
        }
        Ok(Embedding {
            vectors,
            token_counts,
            truncated,
        })
    }
}

/// Whenever the engine is free, cuts a batch from everything waiting and hands it over.
async fn batcher(mut rx: mpsc::Receiver<Pending>, engine: mpsc::Sender<Job>, budget: Budget) {
    let engine_slot = Arc::new(Semaphore::new(1));
    let mut waiting: Vec<Pending> = Vec::new(); // sorted by length
    let insert = |waiting: &mut Vec<Pending>, p: Pending| {
        let at = waiting.partition_point(|w| w.ids.len() <= p.ids.len());
        waiting.insert(at, p);
    };
    loop {
        if waiting.is_empty() {
            match rx.recv().await {
                Some(p) => insert(&mut waiting, p),
                None => return,
            }
        }
        let Ok(slot) = engine_slot.clone().acquire_owned().await else {
            return;
        };
        while let Ok(p) = rx.try_recv() {
            insert(&mut waiting, p);
        }
        waiting.retain(|p| !p.reply.is_closed());
        let Some(oldest) = (0..waiting.len()).min_by_key(|&i| waiting[i].seq) else {
            continue;
        };
        let lens: Vec<usize> = waiting.iter().map(|p| p.ids.len()).collect();
        let range = plan::next_batch(&lens, oldest, budget);
        let batch: Vec<Pending> = waiting.drain(range).collect();
        if engine.send(Job { batch, _slot: slot }).await.is_err() {
            return;
        }
    }
}

/// Loads the engine, warms it up (every static shape, if any), then runs batches until the
/// queue closes.
fn engine_thread<F>(
    load: F,
    warmup: Vec<u32>,
    shapes: ShapeBuckets,
    ready: oneshot::Sender<Result<EngineInfo, EngineError>>,
    mut jobs: mpsc::Receiver<Job>,
    metrics: Metrics,
) where
    F: FnOnce() -> Result<Box<dyn Engine>, EngineError>,
{
    let started = Instant::now();
    let mut engine = match load() {
        Ok(engine) => engine,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let info = engine.info();
    let mut warmups = shapes.all_shapes();
    if warmups.is_empty() {
        warmups.push((1, warmup.len()));
    }
    for shape in warmups {
        let mut ids = warmup.clone();
        ids.truncate(shape.1);
        if let Err(e) = engine.embed(&TokenBatch::pad_to(&[&ids], shape)) {
            let _ = ready.send(Err(EngineError::Load(format!(
                "warm-up batch of shape {shape:?} failed: {e}"
            ))));
            return;
        }
    }
    tracing::info!(
        engine = %info.engine,
        provider = %info.provider,
        precision = %info.precision,
        dim = info.dim,
        seconds = started.elapsed().as_secs_f64(),
        "engine loaded and warmed up"
    );
    if ready.send(Ok(info.clone())).is_err() {
        return;
    }
    while let Some(job) = jobs.blocking_recv() {
        let batch: Vec<Pending> = job
            .batch
            .into_iter()
            .filter(|p| !p.reply.is_closed())
            .collect();
        if batch.is_empty() {
            continue;
        }
        let rows: Vec<&[u32]> = batch.iter().map(|p| p.ids.as_slice()).collect();
        let longest = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let tokens = TokenBatch::pad_to(&rows, shapes.shape_for(rows.len(), longest));
        let span = tracing::info_span!(parent: &batch[0].span, "batch", rows = tokens.rows(), padded_tokens = tokens.padded_tokens());
        let start = Instant::now();
        let result = span.in_scope(|| engine.embed(&tokens));
        let seconds = start.elapsed().as_secs_f64();
        metrics.record_batch(&info.engine, tokens.rows(), tokens.padded_tokens(), seconds);
        span.in_scope(|| tracing::debug!(seconds, "batch done"));
        match result {
            Ok(cls) => {
                for (p, row) in batch.into_iter().zip(cls.rows()) {
                    let _ = p.reply.send(Ok(row.to_vec()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "engine batch failed");
                for p in batch {
                    let _ = p.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Engine double: embeds each row as [len, first id, batch rows] so tests can see batching.
    pub struct FakeEngine {
        pub batches: Arc<Mutex<Vec<usize>>>,
    }

    impl Engine for FakeEngine {
        fn info(&self) -> EngineInfo {
            EngineInfo {
                engine: "fake".into(),
                provider: "cpu".into(),
                precision: "fp32".into(),
                dim: 3,
                weights_sha256: "0".into(),
            }
        }
        fn embed(&mut self, batch: &TokenBatch) -> Result<Array2<f32>, EngineError> {
            self.batches.lock().unwrap().push(batch.rows());
            Ok(Array2::from_shape_fn((batch.rows(), 3), |(r, c)| match c {
                0 => batch.mask.row(r).sum() as f32,
                1 => batch.ids[[r, 1]] as f32,
                _ => batch.rows() as f32,
            }))
        }
    }

    fn tokenizer() -> Arc<TextTokenizer> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/tiny-deberta/tokenizer.json");
        Arc::new(TextTokenizer::from_file(&path, 64).unwrap())
    }

    async fn embedder(capacity: usize) -> (Embedder, Arc<Mutex<Vec<usize>>>) {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = batches.clone();
        let config = QueueConfig {
            budget: Budget {
                max_tokens: 4096,
                max_rows: 8,
            },
            capacity,
            shapes: ShapeBuckets::dynamic(),
        };
        let e = Embedder::start(
            move || Ok(Box::new(FakeEngine { batches: seen }) as Box<dyn Engine>),
            tokenizer(),
            config,
            Metrics::default(),
        )
        .await
        .unwrap();
        (e, batches)
    }

    #[tokio::test]
    async fn rows_come_back_in_request_order() {
        let (e, _) = embedder(16).await;
        let texts = vec![
            "a much longer text with many more words in it".to_string(),
            "short".into(),
            "".into(),
        ];
        let out = e.embed(texts).await.unwrap();
        for (i, n) in out.token_counts.iter().enumerate() {
            assert_eq!(out.vectors[[i, 0]], *n as f32, "row {i} is text {i}");
        }
        assert_eq!(out.token_counts[2], 2, "empty text is [CLS] [SEP]");
    }

    #[tokio::test]
    async fn a_request_larger_than_the_free_places_is_refused() {
        let (e, batches) = embedder(2).await;
        let err = e
            .embed(vec!["a".into(), "b".into(), "c".into()])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                EmbedError::QueueFull {
                    requested: 3,
                    free: 2,
                    capacity: 2
                }
            ),
            "{err}"
        );
        assert_eq!(batches.lock().unwrap().len(), 1, "only the warm-up ran");
        assert!(
            e.embed(vec!["a".into(), "b".into()]).await.is_ok(),
            "places were returned"
        );
    }

    #[tokio::test]
    async fn texts_over_max_length_are_truncated_and_flagged() {
        let (e, _) = embedder(4).await;
        let long = "word ".repeat(200);
        let out = e.embed(vec![long, "short".into()]).await.unwrap();
        assert_eq!(out.token_counts[0], 64);
        assert_eq!(out.truncated, vec![true, false]);
    }
}
