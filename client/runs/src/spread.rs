//! Spreading a run's chunks over one or more servers.
//!
//! The chunks wait in one queue. Each server has a worker that opens an `ExtractStream` and takes
//! the next chunk from the queue whenever its window has room, so a faster server simply takes
//! more (a pull-based balance: no weights to tune). A server answers its own chunks in the order
//! it was sent them; every answer is stored at once. When a server fails (transport error, a
//! transient status), the chunks it had not answered go back to the front of the queue for any
//! server, and that server retries after a backoff; after `retries` failures without progress, or
//! when its fingerprint changes, it leaves the run with a sentence and the others go on. The run
//! fails only when its last server leaves, or at once on a refusal retrying cannot fix.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hemma_client::Client;
use hemma_proto::v1::{ExtractChunk, FeatureSet};
use tokio::sync::{Notify, Semaphore};

use crate::Essay;
use crate::progress::Progress;
use crate::runner::{Run, RunError, RunOptions, backoff, chunk_request};

/// A chunk of the run: its id on the wire and the essays (input rows) it holds.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    /// Unique within the run.
    pub id: u64,
    /// Input rows of the chunk's essays, one per distinct (text, prompt).
    pub rows: Vec<usize>,
}

/// What one server did in a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerReport {
    /// The server's address as given.
    pub endpoint: String,
    /// Chunks it answered.
    pub chunks: usize,
    /// Why it left the run before the end, if it did.
    pub left: Option<String>,
}

/// One failed stream round of one server.
pub(crate) enum RoundError {
    /// Try again (after backoff), on any server.
    Transient(String),
    /// The server now answers with another fingerprint: it leaves the run.
    Changed {
        /// The run's fingerprint.
        was: String,
        /// The one the answer carried.
        now: String,
    },
    /// Stop the run.
    Fatal(RunError),
}

/// `mutex` locked; a worker that panicked while holding it left the queue consistent (whole
/// pushes and pops only), so a poisoned lock is taken as it is.
fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the workers share.
pub(crate) struct Shared {
    /// Chunks no server holds.
    queue: Arc<Mutex<VecDeque<Chunk>>>,
    /// Chunks not yet stored (queued or in flight).
    outstanding: AtomicUsize,
    /// Servers still in the run.
    alive: AtomicUsize,
    /// Retries over all servers.
    retries: AtomicU32,
    /// Woken when chunks are queued again or the last one is stored.
    changed: Notify,
    /// The run's rows and cache.
    run: tokio::sync::Mutex<Run>,
    essays: Arc<Vec<Essay>>,
    set: FeatureSet,
    /// More than one server: lines name the server.
    several: bool,
}

impl Shared {
    /// A queue of `chunks` for `servers` servers.
    pub fn new(run: Run, chunks: Vec<Chunk>, servers: usize) -> Shared {
        Shared {
            outstanding: AtomicUsize::new(chunks.len()),
            queue: Arc::new(Mutex::new(chunks.into())),
            alive: AtomicUsize::new(servers),
            retries: AtomicU32::new(0),
            changed: Notify::new(),
            essays: run.essays.clone(),
            set: run.set,
            run: tokio::sync::Mutex::new(run),
            several: servers > 1,
        }
    }

    /// The run back, with the retries made.
    pub fn finish(self) -> (Run, u32) {
        (self.run.into_inner(), self.retries.into_inner())
    }

    fn done(&self) -> bool {
        self.outstanding.load(Ordering::SeqCst) == 0
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Chunk>> {
        // A worker that panicked while holding the lock left the queue consistent (push/pop only).
        locked(&self.queue)
    }

    /// Puts `chunks` back at the front of the queue, in order, and wakes the idle workers.
    fn requeue(&self, chunks: Vec<Chunk>) {
        if chunks.is_empty() {
            return;
        }
        let mut queue = self.queue();
        for chunk in chunks.into_iter().rev() {
            queue.push_front(chunk);
        }
        drop(queue);
        self.changed.notify_waiters();
    }

    /// Waits until the queue holds a chunk (true) or every chunk is stored (false).
    async fn work_or_end(&self) -> bool {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.done() {
                return false;
            }
            if !self.queue().is_empty() {
                return true;
            }
            notified.await;
        }
    }

    /// Returns once every chunk is stored.
    async fn until_done(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.done() {
                return;
            }
            notified.await;
        }
    }

    /// Sleeps `wait`, or less when the run ends meanwhile.
    async fn pause(&self, wait: std::time::Duration) {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = self.until_done() => {}
        }
    }

    /// `line` about `endpoint`, prefixed with it when the run has several servers.
    fn about(&self, endpoint: &str, line: &str) -> String {
        match self.several {
            true => format!("{endpoint}: {line}"),
            false => line.to_owned(),
        }
    }
}

/// Serves chunks from the shared queue on `client` until every chunk is stored or the server leaves;
/// an error ends the whole run. Boxed: several of these are polled together, and without the
/// box rustc cannot prove the caller's future `Send` (rust-lang/rust#102211).
pub(crate) fn serve_chunks<'a>(
    shared: &'a Shared,
    client: &'a Client,
    options: &'a RunOptions,
    progress: &'a dyn Progress,
) -> futures::future::BoxFuture<'a, Result<ServerReport, RunError>> {
    Box::pin(serve(shared, client, options, progress))
}

/// [`serve_chunks`], unboxed.
async fn serve(
    shared: &Shared,
    client: &Client,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<ServerReport, RunError> {
    let mut report = ServerReport {
        endpoint: client.endpoint().to_owned(),
        chunks: 0,
        left: None,
    };
    let mut failures = 0u32;
    while shared.work_or_end().await {
        let answered = report.chunks;
        let why = match round(shared, client, options, progress, &mut report).await {
            Ok(()) => {
                failures = 0;
                continue;
            }
            Err(RoundError::Fatal(e)) => return Err(e),
            Err(RoundError::Changed { was, now }) => {
                if shared.alive.fetch_sub(1, Ordering::SeqCst) == 1 {
                    return Err(RunError::FingerprintChanged { was, now });
                }
                let line = format!(
                    "its fingerprint changed during the run (was {was}, now {now}): it leaves this run, the other servers take its chunks"
                );
                progress.note(&format!("hemma: {}", shared.about(&report.endpoint, &line)));
                report.left = Some(line);
                return Ok(report);
            }
            Err(RoundError::Transient(why)) => why,
        };
        if report.chunks > answered {
            failures = 0;
        }
        failures += 1;
        if failures > options.retries {
            if shared.alive.fetch_sub(1, Ordering::SeqCst) == 1 {
                return Err(RunError::GaveUp {
                    attempts: failures,
                    last: shared.about(&report.endpoint, &why),
                });
            }
            let line = format!(
                "{failures} attempts without progress ({why}): it leaves this run, the other servers take its chunks"
            );
            progress.note(&format!("hemma: {}", shared.about(&report.endpoint, &line)));
            report.left = Some(line);
            return Ok(report);
        }
        shared.retries.fetch_add(1, Ordering::SeqCst);
        let wait = backoff(options.backoff, failures);
        let line = format!(
            "{why}; retrying in {:.1} s ({failures}/{})",
            wait.as_secs_f64(),
            options.retries
        );
        progress.note(&format!("hemma: {}", shared.about(&report.endpoint, &line)));
        shared.pause(wait).await;
    }
    Ok(report)
}

/// The chunks one round has sent and not yet had answered, in the order sent.
#[derive(Default)]
struct Sent {
    chunks: VecDeque<Chunk>,
    /// The round is over: its request stream takes no more chunks. Without this a request
    /// stream that the transport still polls after the round failed could take a chunk from the
    /// queue that nobody would ever answer or queue again, and the run would wait for it forever.
    closed: bool,
}

/// One `ExtractStream` on `client`: sends chunks from the queue while the window has room and
/// stores each answer; ends when the queue is empty and every chunk sent is answered. On failure
/// the chunks sent but not answered go back to the queue.
async fn round(
    shared: &Shared,
    client: &Client,
    options: &RunOptions,
    progress: &dyn Progress,
    report: &mut ServerReport,
) -> Result<(), RoundError> {
    let sent: Arc<Mutex<Sent>> = Arc::default();
    // The window: a chunk is sent only while fewer than `concurrency` are unanswered, so the
    // client holds at most that many chunks' texts and answers in memory per server.
    let window = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let requests = requests(shared, sent.clone(), window.clone());
    let result = answer_loop(shared, client, requests, &sent, &window, progress, report).await;
    window.close();
    let unanswered: Vec<Chunk> = {
        let mut sent = locked(&sent);
        sent.closed = true;
        sent.chunks.drain(..).collect()
    };
    // Empty after a round that succeeded: it ends only when every chunk sent is answered.
    shared.requeue(unanswered);
    result
}

/// The request stream of a round: each message waits for a window place, then takes the next
/// queued chunk (and notes it as sent); the stream ends when the queue is empty or the round is
/// over.
fn requests(
    shared: &Shared,
    sent: Arc<Mutex<Sent>>,
    window: Arc<Semaphore>,
) -> impl futures::Stream<Item = ExtractChunk> + Send + use<> {
    let queue = shared.queue.clone();
    let essays = shared.essays.clone();
    let set = shared.set;
    futures::stream::unfold((), move |()| {
        let (queue, sent, window, essays) =
            (queue.clone(), sent.clone(), window.clone(), essays.clone());
        async move {
            window.acquire_owned().await.ok()?.forget();
            // Taken and noted under the round's lock, so a chunk is either in the queue or in
            // `sent` when the round closes, never in neither.
            let mut sent = locked(&sent);
            if sent.closed {
                return None;
            }
            let chunk = locked(&queue).pop_front()?;
            let message = chunk_request(&essays, chunk.id, &chunk.rows, set);
            sent.chunks.push_back(chunk);
            Some((message, ()))
        }
    })
}

/// Reads a round's answers, in the order the chunks were sent, and stores each.
async fn answer_loop(
    shared: &Shared,
    client: &Client,
    requests: impl futures::Stream<Item = ExtractChunk> + Send + 'static,
    sent: &Mutex<Sent>,
    window: &Semaphore,
    progress: &dyn Progress,
    report: &mut ServerReport,
) -> Result<(), RoundError> {
    let mut answers = client
        .extract_stream(requests)
        .await
        .map_err(|e| crate::runner::classify(e, None))?;
    loop {
        let answer = match answers.message().await {
            Ok(Some(answer)) => answer,
            Ok(None) => {
                let unanswered = locked(sent).chunks.len();
                return match unanswered {
                    0 => Ok(()),
                    n => Err(RoundError::Transient(format!(
                        "the server closed the stream with {n} chunks unanswered"
                    ))),
                };
            }
            Err(status) => return Err(crate::runner::classify(status.into(), None)),
        };
        let next = locked(sent).chunks.pop_front();
        let Some(chunk) = next else {
            return Err(RoundError::Fatal(RunError::Client(
                hemma_client::ClientError::Malformed(format!(
                    "an answer for chunk {} that was never sent",
                    answer.chunk_id
                )),
            )));
        };
        let stored = {
            let mut run = shared.run.lock().await;
            run.store(&chunk, answer).await
        };
        let essays = match stored {
            Ok(essays) => essays,
            Err(e) => {
                // Not stored: it goes back to the queue with the rest.
                locked(sent).chunks.push_front(chunk);
                return Err(e);
            }
        };
        window.add_permits(1);
        report.chunks += 1;
        progress.advance(essays);
        if shared.outstanding.fetch_sub(1, Ordering::SeqCst) == 1 {
            shared.changed.notify_waiters();
        }
    }
}
