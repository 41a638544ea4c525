//! The embedding queue: admission, batching across requests, and the engine thread.
//!
//! A request takes one queue permit per text or is refused at once (RESOURCE_EXHAUSTED). Its texts
//! are tokenised on the blocking pool and queued one sequence each. A batcher task waits until the
//! engine is free, then cuts the next batch from everything waiting ([`plan::next_batch`]) and
//! hands it to the thread that alone owns the [`Engine`]. Cutting only when the engine is free
//! lets requests that arrive during a batch share the next one. Each sequence's result goes back
//! on its own oneshot; sequences whose requester has gone are skipped.
//!
//! Fair sharing (docs/architecture.md): every sequence belongs to a requester. Each batch is cut
//! around the oldest sequence of the requester served least recently, so a small request waits for
//! at most one batch of a heavy one; and a [`Requester`] (an extraction) holds at most
//! [`QueueConfig::share`] places at once, so it cannot fill the queue that others' `Embed` calls
//! need. An engine panic fails its batch only; an [`EngineError::Lost`] stops the engine thread,
//! which [`Embedder::stopped`] reports.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ndarray::Array2;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

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
    /// Places one [`Requester`] holds at once at most (at least 1, at most `capacity`).
    pub share: usize,
    /// Static shapes batches are padded to (dynamic: none).
    pub shapes: ShapeBuckets,
}

/// One sequence waiting for the engine.
struct Pending {
    seq: u64,
    requester: u64,
    ids: Vec<u32>,
    reply: oneshot::Sender<Result<Vec<f32>, EngineError>>,
    span: tracing::Span,
    _permit: OwnedSemaphorePermit,
    _share: Option<OwnedSemaphorePermit>,
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
    share: usize,
    info: EngineInfo,
    metrics: Metrics,
    next_seq: AtomicU64,
    next_requester: AtomicU64,
    /// Closed when the engine thread ends.
    engine_alive: watch::Receiver<()>,
}

/// One request's handle on the queue: its texts wait for places instead of being refused, are
/// scheduled fairly against other requests', and hold at most [`QueueConfig::share`] places.
#[derive(Debug)]
pub struct Requester {
    embedder: Embedder,
    id: u64,
    share: Arc<Semaphore>,
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
        let (alive_tx, engine_alive) = watch::channel(());
        let engine_metrics = metrics.clone();
        let shapes = config.shapes.clone();
        std::thread::Builder::new()
            .name("hemma-engine".into())
            .spawn(move || {
                // Dropped when the thread ends, however it ends: `stopped` resolves.
                let _alive = alive_tx;
                engine_thread(load, warmup, shapes, ready_tx, batch_rx, engine_metrics)
            })
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
                share: config.share.clamp(1, config.capacity.max(1)),
                info,
                metrics,
                next_seq: AtomicU64::new(0),
                next_requester: AtomicU64::new(0),
                engine_alive,
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

    /// Places one [`Requester`] holds at once at most.
    pub fn share(&self) -> usize {
        self.inner.share
    }

    /// A new requester (one per request) for texts that should wait rather than be refused.
    pub fn requester(&self) -> Requester {
        Requester {
            embedder: self.clone(),
            id: self.fresh_requester(),
            share: Arc::new(Semaphore::new(self.inner.share)),
        }
    }

    /// Resolves when the engine thread has ended (it never ends while this embedder lives,
    /// unless the engine was lost); holds no reference to the queue.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut alive = self.inner.engine_alive.clone();
        async move { while alive.changed().await.is_ok() {} }
    }

    fn fresh_requester(&self) -> u64 {
        self.inner.next_requester.fetch_add(1, Ordering::Relaxed)
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
        self.embed_with(self.fresh_requester(), texts, permit, None)
            .await
    }

    async fn embed_with(
        &self,
        requester: u64,
        texts: Vec<String>,
        mut permit: OwnedSemaphorePermit,
        mut share: Option<OwnedSemaphorePermit>,
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
                requester,
                ids: enc.ids,
                reply,
                span: tracing::Span::current(),
                _permit: permit
                    .split(1)
                    .expect("one permit was acquired for every text"),
                _share: share.as_mut().and_then(|s| s.split(1)),
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

impl Requester {
    /// Embeds `texts`, waiting (first come, first served) for places in this requester's share
    /// and in the queue; more texts than the share are refused, as they could never fit.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Embedding, EmbedError> {
        let inner = &self.embedder.inner;
        let n = texts.len();
        let too_many = || EmbedError::QueueFull {
            requested: n,
            free: self.share.available_permits(),
            capacity: inner.share,
        };
        let k = u32::try_from(n).map_err(|_| too_many())?;
        if n > inner.share {
            return Err(too_many());
        }
        let share = self
            .share
            .clone()
            .acquire_many_owned(k)
            .await
            .map_err(|_| EmbedError::EngineGone)?;
        let permit = inner
            .permits
            .clone()
            .acquire_many_owned(k)
            .await
            .map_err(|_| EmbedError::EngineGone)?;
        self.embedder
            .embed_with(self.id, texts, permit, Some(share))
            .await
    }
}

/// Batches for which the batcher remembers whom it served.
const REMEMBERED_BATCHES: u64 = 1024;

/// Whenever the engine is free, cuts a batch from everything waiting and hands it over.
async fn batcher(mut rx: mpsc::Receiver<Pending>, engine: mpsc::Sender<Job>, budget: Budget) {
    let engine_slot = Arc::new(Semaphore::new(1));
    let mut waiting: Vec<Pending> = Vec::new(); // sorted by length
    // The batch number that last served each requester (recent ones only).
    let mut last_served: HashMap<u64, u64> = HashMap::new();
    let mut batches: u64 = 0;
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
        // The oldest sequence of the requester served least recently (never: first).
        let Some(anchor) = (0..waiting.len()).min_by_key(|&i| {
            let p = &waiting[i];
            (last_served.get(&p.requester).copied().unwrap_or(0), p.seq)
        }) else {
            continue;
        };
        let lens: Vec<usize> = waiting.iter().map(|p| p.ids.len()).collect();
        let range = plan::next_batch(&lens, anchor, budget);
        let batch: Vec<Pending> = waiting.drain(range).collect();
        batches += 1;
        for p in &batch {
            last_served.insert(p.requester, batches);
        }
        // Forgetting a requester served long ago only raises its priority; it bounds the map.
        last_served.retain(|_, at| batches - *at < REMEMBERED_BATCHES);
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
        let result = span.in_scope(|| {
            std::panic::catch_unwind(AssertUnwindSafe(|| engine.embed(&tokens))).unwrap_or_else(
                |panic| {
                    metrics.engine_panics.inc();
                    Err(EngineError::Panicked(panic_message(panic.as_ref())))
                },
            )
        });
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
                if matches!(e, EngineError::Lost(_)) {
                    tracing::error!("the engine thread stops: its engine is lost");
                    return;
                }
            }
        }
    }
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
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
            share: capacity,
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

    /// Engine double for scheduling tests: records each batch's first token ids, waits for a
    /// gate before each batch (when given), panics on `panic_on` and is lost on `lost_on`.
    struct ScriptedEngine {
        log: Arc<Mutex<Vec<Vec<u32>>>>,
        gate: Option<std::sync::mpsc::Receiver<()>>,
        panic_on: u32,
        lost_on: u32,
    }

    impl Engine for ScriptedEngine {
        fn info(&self) -> EngineInfo {
            FakeEngine {
                batches: Arc::default(),
            }
            .info()
        }
        fn embed(&mut self, batch: &TokenBatch) -> Result<Array2<f32>, EngineError> {
            let firsts: Vec<u32> = (0..batch.rows())
                .map(|r| batch.ids[[r, 1]] as u32)
                .collect();
            self.log.lock().unwrap().push(firsts.clone());
            if let Some(gate) = &self.gate {
                let _ = gate.recv();
            }
            if firsts.contains(&self.panic_on) {
                panic!("scripted panic");
            }
            if firsts.contains(&self.lost_on) {
                return Err(EngineError::Lost("scripted loss".into()));
            }
            Ok(Array2::zeros((batch.rows(), 3)))
        }
    }

    /// The first token id of `word` (after [CLS]).
    fn first_id(word: &str) -> u32 {
        tokenizer().encode(0, word).unwrap().ids[1]
    }

    struct Scripted {
        embedder: Embedder,
        log: Arc<Mutex<Vec<Vec<u32>>>>,
        gate: Option<std::sync::mpsc::Sender<()>>,
        metrics: Metrics,
    }

    async fn scripted(capacity: usize, share: usize, gated: bool) -> Scripted {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (gate_tx, gate_rx) = std::sync::mpsc::channel();
        let engine = ScriptedEngine {
            log: log.clone(),
            gate: gated.then_some(gate_rx),
            panic_on: first_id("panic"),
            lost_on: first_id("lost"),
        };
        if gated {
            gate_tx.send(()).unwrap(); // the warm-up batch
        }
        let metrics = Metrics::default();
        let config = QueueConfig {
            budget: Budget {
                max_tokens: 4096,
                max_rows: 4,
            },
            capacity,
            share,
            shapes: ShapeBuckets::dynamic(),
        };
        let embedder = Embedder::start(
            move || Ok(Box::new(engine) as Box<dyn Engine>),
            tokenizer(),
            config,
            metrics.clone(),
        )
        .await
        .unwrap();
        Scripted {
            embedder,
            log,
            gate: gated.then_some(gate_tx),
            metrics,
        }
    }

    /// Waits until `queue_depth` reaches `depth` (a wait on the queue's own counter, not a
    /// timing assertion).
    async fn until_depth(metrics: &Metrics, depth: i64) {
        while metrics.queue_depth.get() < depth {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_small_request_is_cut_before_a_heavy_requests_remaining_batches() {
        let q = scripted(64, 16, true).await;
        let heavy_id = first_id("apple");
        let small_id = first_id("zebra");
        let heavy = q.embedder.requester();
        let heavy_run = tokio::spawn(async move {
            let pieces = (0..8).map(|_| heavy.embed(vec!["apple pie".to_owned(); 4]));
            futures::future::try_join_all(pieces).await
        });
        // The heavy requester holds its share (16 places); the engine is held on its first batch.
        until_depth(&q.metrics, 16).await;
        let small = {
            let e = q.embedder.clone();
            tokio::spawn(async move { e.embed(vec!["zebra".to_owned()]).await })
        };
        until_depth(&q.metrics, 17).await;
        let gate = q.gate.clone().unwrap();
        for _ in 0..64 {
            let _ = gate.send(());
        }
        small.await.unwrap().expect("the small request is answered");
        heavy_run
            .await
            .unwrap()
            .expect("the heavy request is answered");
        let log = q.log.lock().unwrap().clone();
        let batches: Vec<&Vec<u32>> = log.iter().skip(1).collect(); // after the warm-up
        let small_at = batches
            .iter()
            .position(|b| b.contains(&small_id))
            .expect("the small text ran");
        let heavy_after = batches
            .iter()
            .skip(small_at + 1)
            .filter(|b| b.contains(&heavy_id))
            .count();
        assert_eq!(
            small_at, 1,
            "the small request's batch is the first cut after it arrived: {batches:?}"
        );
        assert!(
            heavy_after >= 6,
            "the heavy request still had batches to run after it: {batches:?}"
        );
    }

    #[tokio::test]
    async fn a_heavy_requester_holds_at_most_its_share_so_others_are_not_refused() {
        let q = scripted(32, 8, true).await;
        let heavy = q.embedder.requester();
        let _heavy_run = tokio::spawn(async move {
            let pieces = (0..8).map(|_| heavy.embed(vec!["apple".to_owned(); 4]));
            futures::future::join_all(pieces).await
        });
        until_depth(&q.metrics, 8).await;
        tokio::task::yield_now().await;
        assert_eq!(
            q.metrics.queue_depth.get(),
            8,
            "the share caps what it queues"
        );
        let small = {
            let e = q.embedder.clone();
            tokio::spawn(async move { e.embed(vec!["zebra".to_owned(); 16]).await })
        };
        until_depth(&q.metrics, 24).await;
        let gate = q.gate.clone().unwrap();
        for _ in 0..64 {
            let _ = gate.send(());
        }
        assert!(
            small.await.unwrap().is_ok(),
            "16 of 24 free places were enough"
        );
        let err = q
            .embedder
            .requester()
            .embed(vec!["x".to_owned(); 9])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                EmbedError::QueueFull {
                    requested: 9,
                    capacity: 8,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_panicking_batch_fails_alone_and_the_engine_goes_on() {
        let q = scripted(16, 16, false).await;
        let err = q.embedder.embed(vec!["panic".into()]).await.unwrap_err();
        assert!(err.to_string().contains("scripted panic"), "{err}");
        assert_eq!(q.metrics.engine_panics.get(), 1);
        let ok = q
            .embedder
            .embed(vec!["fine".into(), "also fine".into()])
            .await;
        assert!(ok.is_ok(), "later batches run: {ok:?}");
    }

    #[tokio::test]
    async fn a_lost_engine_stops_and_says_so() {
        let q = scripted(16, 16, false).await;
        let stopped = q.embedder.stopped();
        let err = q.embedder.embed(vec!["lost".into()]).await.unwrap_err();
        assert!(err.to_string().contains("scripted loss"), "{err}");
        tokio::time::timeout(std::time::Duration::from_secs(30), stopped)
            .await
            .expect("stopped resolves once the engine thread has ended");
        let after = q.embedder.embed(vec!["fine".into()]).await.unwrap_err();
        assert!(matches!(after, EmbedError::EngineGone), "{after}");
    }
}
