//! Soak: one in-process server on loopback (tiny fixture model) under N concurrent clients for a
//! bounded time, mixing `Extract` (combined), `ExtractStream`, `Embed` and `CheckGrammar` on
//! real essays with a share of hostile texts, while one more client measures the latency of a
//! small `Embed` and a sampler reads the process RSS every second (the server runs in this
//! process). Issue 14's "prove it".
//!
//! ```text
//! eval "$(scripts/languagetool.sh start 18081)"        # optional: the fake LanguageTool otherwise
//! cargo bench -p hemma-e2e --bench soak -- [--seconds 600] [--clients 8] [--json out/soak.json]
//! cargo bench --workspace --bench soak --profile dev -- --seconds 30 --clients 4   # CI (test.sh)
//! ```
//! (`--workspace --profile dev` builds with the features and settings of `cargo test
//! --workspace`, so it reuses that build.) Other flags: `--hostile-share 0.1`,
//! `--engine candle|ort` (ort needs `ORT_DYLIB_PATH`), `--fake-languagetool` (even when
//! `HEMMA_TEST_LANGUAGETOOL_URL` is set), `--glibc-default`, `--op-timeout 180`,
//! `--max-rss-growth-pct 5`, `--seed 14`. `HEMMA_SOAK_SECONDS` and `HEMMA_SOAK_CLIENTS` set the
//! defaults of `--seconds` and `--clients`.
//!
//! Before the timed run an untimed warm-up sends every essay through `Extract` and every hostile
//! text through each method once (so the LanguageTool cache and the parser reach their steady
//! state), then 50 small `Embed` calls on the idle server give the idle latency.
//!
//! Expected, and not errors: a hostile text answered with a NaN row and a `limited_rows` status
//! (`word_too_long`, `too_many_tokens`, ...); `INVALID_ARGUMENT` for a text over the server's
//! `max_bytes_per_text`; `RESOURCE_EXHAUSTED` (back-pressure, counted apart); `DEADLINE_EXCEEDED`
//! or `CANCELLED` for the calls the bench gives a short deadline on purpose, and streams it drops
//! after the first answer. Anything else is unexpected, and so is a normal essay with a row
//! status, a non-finite embedding, a chunk answered out of order, a call unanswered after
//! `--op-timeout`, an embedding queue or LanguageTool in-flight gauge that is not back to 0
//! after the load, an engine panic, or a graceful stop that fails.
//!
//! Memory is compared at quiet points, at 20, 40, 60 and 80 % of the load and after it: every
//! client waits between two calls, the queue and LanguageTool go idle (and, after the point at
//! 20 %, threads the blocking pool started since then end, as idle ones do), and the bench reads the
//! RSS after `malloc_trim` (what the process holds, not what the allocator keeps for reuse) and
//! the live Rust heap, counted by this binary's global allocator. Under load the RSS swings by
//! 100-200 MiB with the requests in flight, so samples taken under load decide nothing. It exits
//! 1 on any unexpected error, or when the RSS or the live heap at the end exceeds its value at
//! 20 % by more than `--max-rss-growth-pct`. See [`configure_allocator`] for why the bench fixes
//! glibc's mmap threshold (and `--glibc-default` to measure without it).
//!
//! Texts never sent to `CheckGrammar`: 100,000 × "a " at the byte limit. LanguageTool 6.7 answers
//! a run of repeated words with one match per word, each carrying the whole run as its sentence,
//! so the answer grows with the square of the length (20 MB for 3,000 words) and 10,000 words
//! exhaust a 1 GB JVM heap. `Extract` never sends it there (it is over the analyser's token
//! limit), which is part of what this checks.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hemma_client::extract::Extraction;
use hemma_client::v1::extract_chunk_result::Outcome as ChunkOutcome;
use hemma_client::v1::offload_client::OffloadClient;
use hemma_client::v1::{ExtractChunk, FeatureSet};
use hemma_client::{Client, ClientError, ClientOptions};
use hemma_e2e::fake_languagetool::FakeLanguageTool;
use hemma_e2e::{TestServer, grammar_args, languagetool_urls, repo_root};
use hemma_server::config::{EngineKind, ServeArgs};
use serde_json::json;
use tonic::Code;

// ---------------------------------------------------------------------------------------------
// Settings

struct Opts {
    seconds: u64,
    clients: usize,
    json: Option<PathBuf>,
    hostile_share: f64,
    engine: EngineKind,
    fake_languagetool: bool,
    /// Keep glibc's dynamic mmap threshold (see `configure_allocator`).
    glibc_default: bool,
    op_timeout: Duration,
    max_rss_growth_pct: f64,
    seed: u64,
}

fn parse_opts() -> anyhow::Result<Opts> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mut o = Opts {
        seconds: match env("HEMMA_SOAK_SECONDS") {
            Some(v) => v.trim().parse().context("HEMMA_SOAK_SECONDS")?,
            None => 600,
        },
        clients: match env("HEMMA_SOAK_CLIENTS") {
            Some(v) => v.trim().parse().context("HEMMA_SOAK_CLIENTS")?,
            None => 8,
        },
        json: None,
        hostile_share: 0.10,
        engine: EngineKind::Candle,
        fake_languagetool: false,
        glibc_default: false,
        op_timeout: Duration::from_secs(180),
        max_rss_growth_pct: 5.0,
        seed: 14,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => o.seconds = value()?.parse().context("--seconds")?,
            "--clients" => o.clients = value()?.parse().context("--clients")?,
            "--json" => o.json = Some(value()?.into()),
            "--hostile-share" => o.hostile_share = value()?.parse().context("--hostile-share")?,
            "--op-timeout" => {
                o.op_timeout = Duration::from_secs_f64(value()?.parse().context("--op-timeout")?)
            }
            "--max-rss-growth-pct" => {
                o.max_rss_growth_pct = value()?.parse().context("--max-rss-growth-pct")?
            }
            "--seed" => o.seed = value()?.parse().context("--seed")?,
            "--fake-languagetool" => o.fake_languagetool = true,
            "--glibc-default" => o.glibc_default = true,
            "--engine" => {
                o.engine = match value()?.as_str() {
                    "candle" => EngineKind::Candle,
                    "ort" => EngineKind::Ort,
                    other => bail!("--engine {other}: use candle or ort"),
                }
            }
            "--bench" => {} // passed by `cargo bench`
            "-h" | "--help" => {
                println!(
                    "soak [--seconds S] [--clients N] [--json PATH] [--hostile-share F] \
                     [--engine candle|ort] [--fake-languagetool] [--glibc-default] [--op-timeout S] \
                     [--max-rss-growth-pct P] [--seed N]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown flag {other} (see --help)"),
        }
    }
    if o.seconds == 0 || o.clients == 0 {
        bail!("--seconds and --clients must be at least 1");
    }
    if !(0.0..=1.0).contains(&o.hostile_share) {
        bail!("--hostile-share is a fraction between 0 and 1");
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------------
// Texts

struct Essay {
    id: String,
    prompt: String,
    text: String,
}

struct Hostile {
    name: &'static str,
    text: String,
    /// Over the server's `max_bytes_per_text`: every method answers INVALID_ARGUMENT.
    refused: bool,
    /// Sent to `CheckGrammar` too (see the module docs for the one that is not).
    grammar: bool,
}

/// One text of a request: an essay of the corpus or a hostile text, by index.
#[derive(Clone, Copy)]
enum Item {
    Essay(usize),
    Hostile(usize),
}

const HOSTILE_PROMPT: &str = "Write about anything you like.";
const PROBE_TEXT: &str = "A short sentence for the latency probe.";

fn read_essays() -> anyhow::Result<Vec<Essay>> {
    let path = repo_root().join("tests/fixtures/essays/ellipse50.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let field = |k: &str| v[k].as_str().map(str::to_owned).context(k.to_owned());
        out.push(Essay {
            id: field("id")?,
            prompt: field("prompt")?,
            text: field("text")?,
        });
    }
    if out.is_empty() {
        bail!("{} has no essays", path.display());
    }
    Ok(out)
}

fn hostile_texts(max_bytes_per_text: usize) -> Vec<Hostile> {
    // Deterministic base64-looking payload for the data URI.
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = Rng(7);
    let payload: String = (0..40_000)
        .map(|_| B64[rng.below(B64.len())] as char)
        .collect();
    let emoji = ['😀', '🙈', '🚀', '🎉', '👍', '🔥', '🤖', '🌍'];
    let list: Vec<(&'static str, String, bool)> = vec![
        (
            "word of 5,000 characters",
            format!("I pasted this: {} and then stopped.", "x".repeat(5000)),
            true,
        ),
        (
            "3,000 one-line paragraphs",
            (0..3000).map(|i| format!("Paragraph {i}.\n\n")).collect(),
            true,
        ),
        (
            "\"x\" + 4,000 \")\"",
            format!("x{}", ")".repeat(4000)),
            true,
        ),
        (
            "3,000 \"(\" + \"a\" + 3,000 \")\"",
            format!("{}a{}", "(".repeat(3000), ")".repeat(3000)),
            true,
        ),
        (
            "100,000 x \"a \" (200,000 bytes)",
            "a ".repeat(100_000),
            false,
        ),
        (
            "100,001 x \"a \" (200,002 bytes)",
            "a ".repeat(100_001),
            true,
        ),
        (
            "data URI (40 kB)",
            format!("Look: data:image/png;base64,{payload} is my picture."),
            true,
        ),
        (
            "5,000 emoji",
            (0..5000).map(|i| emoji[i % emoji.len()]).collect(),
            true,
        ),
    ];
    list.into_iter()
        .map(|(name, text, grammar)| {
            let refused = text.len() > max_bytes_per_text;
            Hostile {
                name,
                // A refused text never reaches LanguageTool, so it is safe to send.
                grammar: grammar || refused,
                refused,
                text,
            }
        })
        .collect()
}

struct Ctx {
    essays: Vec<Essay>,
    hostile: Vec<Hostile>,
    opts: Opts,
}

impl Ctx {
    fn text(&self, i: Item) -> &str {
        match i {
            Item::Essay(k) => &self.essays[k].text,
            Item::Hostile(k) => &self.hostile[k].text,
        }
    }
    fn prompt(&self, i: Item) -> &str {
        match i {
            Item::Essay(k) => &self.essays[k].prompt,
            Item::Hostile(_) => HOSTILE_PROMPT,
        }
    }
    fn id(&self, i: Item) -> String {
        match i {
            Item::Essay(k) => self.essays[k].id.clone(),
            Item::Hostile(k) => format!("hostile-{k}"),
        }
    }
    fn name(&self, i: Item) -> String {
        match i {
            Item::Essay(k) => format!("essay {}", self.essays[k].id),
            Item::Hostile(k) => self.hostile[k].name.to_owned(),
        }
    }
    fn refused(&self, items: &[Item]) -> bool {
        items
            .iter()
            .any(|i| matches!(i, Item::Hostile(k) if self.hostile[*k].refused))
    }
    fn texts(&self, items: &[Item]) -> Vec<String> {
        items.iter().map(|&i| self.text(i).to_owned()).collect()
    }
    fn prompts(&self, items: &[Item]) -> Vec<String> {
        items.iter().map(|&i| self.prompt(i).to_owned()).collect()
    }

    /// 1 to `max` random essays and, with the hostile share, one hostile text at a random place.
    fn pick(&self, rng: &mut Rng, max: usize, for_grammar: bool) -> Vec<Item> {
        let n = 1 + rng.below(max);
        let mut items: Vec<Item> = (0..n)
            .map(|_| Item::Essay(rng.below(self.essays.len())))
            .collect();
        if rng.chance(self.opts.hostile_share) {
            let pool: Vec<usize> = (0..self.hostile.len())
                .filter(|&k| !for_grammar || self.hostile[k].grammar)
                .collect();
            let k = pool[rng.below(pool.len())];
            items.insert(rng.below(items.len() + 1), Item::Hostile(k));
        }
        items
    }
}

/// SplitMix64: the bench needs reproducible choices, not a `rand` dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

// ---------------------------------------------------------------------------------------------
// Tallies

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Method {
    Extract,
    ExtractDeadline,
    Stream,
    StreamChunk,
    Embed,
    CheckGrammar,
    Probe,
}

impl Method {
    const ALL: [Method; 7] = [
        Method::Extract,
        Method::ExtractDeadline,
        Method::Stream,
        Method::StreamChunk,
        Method::Embed,
        Method::CheckGrammar,
        Method::Probe,
    ];
    fn label(self) -> &'static str {
        match self {
            Method::Extract => "Extract (combined)",
            Method::ExtractDeadline => "Extract (short deadline)",
            Method::Stream => "ExtractStream (streams)",
            Method::StreamChunk => "ExtractStream (chunks)",
            Method::Embed => "Embed",
            Method::CheckGrammar => "CheckGrammar",
            Method::Probe => "Embed (latency probe)",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    /// Answered, every row complete.
    Ok,
    /// Answered, with at least one limited row (a hostile text).
    Limited,
    /// INVALID_ARGUMENT for a text over the byte limit.
    Refused,
    /// RESOURCE_EXHAUSTED.
    BackPressure,
    /// A deadline or drop the bench asked for.
    Cancelled,
    Unexpected,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Class {
    Unexpected,
    Refusal,
    BackPressure,
    Cancellation,
}

impl Class {
    fn label(self) -> &'static str {
        match self {
            Class::Unexpected => "UNEXPECTED",
            Class::Refusal => "expected refusal",
            Class::BackPressure => "expected back-pressure",
            Class::Cancellation => "expected (bench cancelled)",
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    total: u64,
    ok: u64,
    limited: u64,
    refused: u64,
    back_pressure: u64,
    cancelled: u64,
    unexpected: u64,
}

impl Tally {
    fn add(&mut self, o: Outcome) {
        self.total += 1;
        *match o {
            Outcome::Ok => &mut self.ok,
            Outcome::Limited => &mut self.limited,
            Outcome::Refused => &mut self.refused,
            Outcome::BackPressure => &mut self.back_pressure,
            Outcome::Cancelled => &mut self.cancelled,
            Outcome::Unexpected => &mut self.unexpected,
        } += 1;
    }
    fn json(&self) -> serde_json::Value {
        json!({
            "total": self.total, "ok": self.ok, "limited": self.limited, "refused": self.refused,
            "back_pressure": self.back_pressure, "cancelled": self.cancelled,
            "unexpected": self.unexpected,
        })
    }
}

#[derive(Default)]
struct ErrorEntry {
    count: u64,
    samples: Vec<String>,
}

#[derive(Default)]
struct Stats {
    methods: BTreeMap<Method, Tally>,
    errors: BTreeMap<(Class, String), ErrorEntry>,
    /// (text, code) -> rows.
    limited: BTreeMap<(String, String), u64>,
    /// Hostile texts the analyser took in full (no row status): allowed, listed for the record.
    hostile_full: BTreeMap<String, u64>,
    probe_ms: Vec<f64>,
    /// Wall time of each call (a whole stream for streams), ms.
    wall_ms: BTreeMap<Method, Vec<f64>>,
    /// The slowest call per method: ms and what it sent.
    slowest: BTreeMap<Method, (f64, String)>,
}

type Shared = Arc<Mutex<Stats>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Stats> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn record(s: &Shared, m: Method, o: Outcome) {
    lock(s).methods.entry(m).or_default().add(o);
}

fn error(s: &Shared, class: Class, kind: String, sample: String) {
    let mut g = lock(s);
    let e = g.errors.entry((class, kind)).or_default();
    e.count += 1;
    if e.samples.len() < 3 {
        e.samples.push(sample.chars().take(300).collect());
    }
}

/// Classifies a failed call and records it; `refusal_expected` when a text was over the byte
/// limit, `cancel_expected` when the bench set a short deadline.
fn failed(
    s: &Shared,
    m: Method,
    code: Option<Code>,
    message: &str,
    refusal_expected: bool,
    cancel_expected: bool,
) -> Outcome {
    let (outcome, class, kind) = match code {
        Some(Code::InvalidArgument) if refusal_expected => (
            Outcome::Refused,
            Class::Refusal,
            "INVALID_ARGUMENT (text over the byte limit)".to_owned(),
        ),
        Some(Code::ResourceExhausted) => (
            Outcome::BackPressure,
            Class::BackPressure,
            "RESOURCE_EXHAUSTED".to_owned(),
        ),
        Some(c @ (Code::DeadlineExceeded | Code::Cancelled)) if cancel_expected => (
            Outcome::Cancelled,
            Class::Cancellation,
            format!("{c:?} (the bench's short deadline)"),
        ),
        Some(c) => (
            Outcome::Unexpected,
            Class::Unexpected,
            format!("{c:?} on {}", m.label()),
        ),
        None => (
            Outcome::Unexpected,
            Class::Unexpected,
            format!("client error on {}", m.label()),
        ),
    };
    error(s, class, kind, message.to_owned());
    record(s, m, outcome);
    outcome
}

fn unexpected(s: &Shared, m: Method, kind: &str, sample: String) {
    error(
        s,
        Class::Unexpected,
        format!("{kind} ({})", m.label()),
        sample,
    );
    record(s, m, Outcome::Unexpected);
}

fn client_failed(s: &Shared, m: Method, e: &ClientError, refusal: bool, cancel: bool) {
    match e {
        ClientError::Malformed(msg) => unexpected(s, m, "malformed answer", msg.clone()),
        other => {
            failed(s, m, other.code(), &other.to_string(), refusal, cancel);
        }
    }
}

/// Runs one call and records its wall time under `m`; `what` names its texts.
async fn timed(s: &Shared, m: Method, what: String, call: impl Future<Output = ()>) {
    let started = Instant::now();
    call.await;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let mut g = lock(s);
    g.wall_ms.entry(m).or_default().push(ms);
    let slowest = g.slowest.entry(m).or_insert((0.0, String::new()));
    if ms > slowest.0 {
        *slowest = (ms, what);
    }
}

fn describe(ctx: &Ctx, items: &[Item]) -> String {
    let mut essays = 0;
    let mut names = Vec::new();
    for &i in items {
        match i {
            Item::Essay(_) => essays += 1,
            Item::Hostile(_) => names.push(ctx.name(i)),
        }
    }
    names.insert(0, format!("{essays} essays"));
    names.join(" + ")
}

// ---------------------------------------------------------------------------------------------
// Calls

/// Checks the rows of an answered extraction: finite embeddings everywhere, a row status only
/// for hostile texts and then NaN handcrafted features, some computed feature for every essay.
/// Returns the outcome, and a problem sentence when the answer breaks the contract.
fn check_extraction(
    ctx: &Ctx,
    s: &Shared,
    items: &[Item],
    ex: &Extraction,
) -> Result<Outcome, String> {
    let emb = ex
        .embeddings
        .as_ref()
        .ok_or("a combined answer without embeddings")?;
    let hc = ex
        .handcrafted
        .as_ref()
        .ok_or("a combined answer without handcrafted features")?;
    let status: HashMap<usize, &hemma_client::v1::RowStatus> =
        ex.limited.iter().map(|r| (r.index as usize, r)).collect();
    let mut limited = Vec::new();
    let mut full = Vec::new();
    for (row, &item) in items.iter().enumerate() {
        if !emb.row(row).iter().all(|v| v.is_finite()) {
            return Err(format!(
                "row {row} ({}): non-finite embedding",
                ctx.name(item)
            ));
        }
        match (status.get(&row), item) {
            (Some(st), Item::Essay(_)) => {
                return Err(format!(
                    "row {row} ({}) of a real essay is limited: {}: {}",
                    ctx.name(item),
                    st.code,
                    st.message
                ));
            }
            (Some(st), Item::Hostile(_)) => {
                if !hc.row(row).iter().all(|v| v.is_nan()) {
                    return Err(format!(
                        "row {row} ({}) has status {} but computed features",
                        ctx.name(item),
                        st.code
                    ));
                }
                limited.push((ctx.name(item), st.code.clone()));
            }
            (None, Item::Essay(_)) => {
                if hc.row(row).iter().all(|v| v.is_nan()) {
                    return Err(format!(
                        "row {row} ({}): every handcrafted feature is NaN and no row status",
                        ctx.name(item)
                    ));
                }
            }
            (None, Item::Hostile(_)) => full.push(ctx.name(item)),
        }
    }
    let mut g = lock(s);
    for key in &limited {
        *g.limited.entry(key.clone()).or_default() += 1;
    }
    for name in full {
        *g.hostile_full.entry(name).or_default() += 1;
    }
    Ok(if limited.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Limited
    })
}

fn answered_extraction(ctx: &Ctx, s: &Shared, m: Method, items: &[Item], ex: &Extraction) {
    if ctx.refused(items) {
        unexpected(
            s,
            m,
            "a text over the byte limit was answered",
            format!("{} rows answered", items.len()),
        );
        return;
    }
    match check_extraction(ctx, s, items, ex) {
        Ok(o) => record(s, m, o),
        Err(problem) => unexpected(s, m, "answer breaks the contract", problem),
    }
}

async fn guarded<T>(ctx: &Ctx, f: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(ctx.opts.op_timeout, f).await.ok()
}

fn hang(ctx: &Ctx, s: &Shared, m: Method) {
    unexpected(
        s,
        m,
        "no answer within --op-timeout",
        format!("{:?}", ctx.opts.op_timeout),
    );
}

async fn do_extract(ctx: &Ctx, client: &Client, s: &Shared, items: &[Item]) {
    let m = Method::Extract;
    let call = client.extract(
        ctx.texts(items),
        ctx.prompts(items),
        FeatureSet::Combined,
        false,
    );
    match guarded(ctx, call).await {
        None => hang(ctx, s, m),
        Some(Ok(ex)) => answered_extraction(ctx, s, m, items, &ex),
        Some(Err(e)) => client_failed(s, m, &e, ctx.refused(items), false),
    }
}

/// An Extract with a deadline most debug-build extractions miss: the server must stop the work
/// and answer DEADLINE_EXCEEDED (or finish in time); both are fine.
async fn do_extract_deadline(
    ctx: &Ctx,
    raw: &OffloadClient<tonic::transport::Channel>,
    s: &Shared,
    items: &[Item],
    deadline: Duration,
) {
    let m = Method::ExtractDeadline;
    let mut req = tonic::Request::new(hemma_client::extract_request(
        ctx.texts(items),
        ctx.prompts(items),
        FeatureSet::Combined,
        false,
    ));
    req.set_timeout(deadline);
    let mut raw = raw.clone();
    match guarded(ctx, raw.extract(req)).await {
        None => hang(ctx, s, m),
        Some(Ok(resp)) => match Extraction::decode(resp.into_inner(), items.len()) {
            Ok(ex) => answered_extraction(ctx, s, m, items, &ex),
            Err(e) => unexpected(s, m, "malformed answer", e.to_string()),
        },
        Some(Err(status)) => {
            failed(
                s,
                m,
                Some(status.code()),
                status.message(),
                ctx.refused(items),
                true,
            );
        }
    }
}

/// One ExtractStream of `chunks`; `abandon` drops it after the first answer (a client that goes
/// away: the server must stop the remaining chunks).
async fn do_stream(ctx: &Ctx, client: &Client, s: &Shared, chunks: Vec<Vec<Item>>, abandon: bool) {
    let wire: Vec<ExtractChunk> = chunks
        .iter()
        .enumerate()
        .map(|(i, items)| ExtractChunk {
            chunk_id: i as u64,
            ids: items.iter().map(|&it| ctx.id(it)).collect(),
            request: Some(hemma_client::extract_request(
                ctx.texts(items),
                ctx.prompts(items),
                FeatureSet::Combined,
                false,
            )),
        })
        .collect();
    let run = async {
        let mut answers = match client.extract_stream(futures::stream::iter(wire)).await {
            Ok(a) => a,
            Err(e) => {
                client_failed(s, Method::Stream, &e, false, false);
                return;
            }
        };
        for (i, items) in chunks.iter().enumerate() {
            let msg = match answers.message().await {
                Ok(Some(msg)) => msg,
                Ok(None) => {
                    unexpected(
                        s,
                        Method::Stream,
                        "stream ended early",
                        format!("after {i} of {} chunks", chunks.len()),
                    );
                    return;
                }
                Err(status) => {
                    failed(
                        s,
                        Method::Stream,
                        Some(status.code()),
                        status.message(),
                        false,
                        false,
                    );
                    return;
                }
            };
            if msg.chunk_id != i as u64 {
                unexpected(
                    s,
                    Method::StreamChunk,
                    "chunk answered out of order",
                    format!("expected chunk {i}, got {}", msg.chunk_id),
                );
            } else {
                match msg.outcome {
                    Some(ChunkOutcome::Response(resp)) => {
                        match Extraction::decode(resp, items.len()) {
                            Ok(ex) => answered_extraction(ctx, s, Method::StreamChunk, items, &ex),
                            Err(e) => unexpected(
                                s,
                                Method::StreamChunk,
                                "malformed answer",
                                e.to_string(),
                            ),
                        }
                    }
                    Some(ChunkOutcome::Error(err)) => {
                        failed(
                            s,
                            Method::StreamChunk,
                            Some(Code::from_i32(err.code)),
                            &err.message,
                            ctx.refused(items),
                            false,
                        );
                    }
                    None => unexpected(
                        s,
                        Method::StreamChunk,
                        "chunk answer without outcome",
                        String::new(),
                    ),
                }
            }
            if abandon {
                // Dropping `answers` resets the stream; the remaining chunks are the server's to
                // cancel.
                record(s, Method::Stream, Outcome::Cancelled);
                return;
            }
        }
        match answers.message().await {
            Ok(None) => record(s, Method::Stream, Outcome::Ok),
            Ok(Some(extra)) => unexpected(
                s,
                Method::Stream,
                "more answers than chunks",
                format!("chunk {}", extra.chunk_id),
            ),
            Err(status) => {
                failed(
                    s,
                    Method::Stream,
                    Some(status.code()),
                    status.message(),
                    false,
                    false,
                );
            }
        }
    };
    if guarded(ctx, run).await.is_none() {
        hang(ctx, s, Method::Stream);
    }
}

async fn do_embed(ctx: &Ctx, client: &Client, s: &Shared, items: &[Item]) {
    let m = Method::Embed;
    match guarded(ctx, client.embed(ctx.texts(items), false)).await {
        None => hang(ctx, s, m),
        Some(Ok(out)) => {
            if ctx.refused(items) {
                unexpected(
                    s,
                    m,
                    "a text over the byte limit was answered",
                    String::new(),
                );
            } else if out.vectors.nrows() != items.len()
                || !out.vectors.iter().all(|v| v.is_finite())
            {
                unexpected(
                    s,
                    m,
                    "answer breaks the contract",
                    "rows or non-finite values".into(),
                );
            } else {
                record(s, m, Outcome::Ok);
            }
        }
        Some(Err(e)) => client_failed(s, m, &e, ctx.refused(items), false),
    }
}

async fn do_grammar(ctx: &Ctx, client: &Client, s: &Shared, items: &[Item]) {
    let m = Method::CheckGrammar;
    match guarded(ctx, client.check_grammar(ctx.texts(items), None)).await {
        None => hang(ctx, s, m),
        Some(Ok(_)) if ctx.refused(items) => unexpected(
            s,
            m,
            "a text over the byte limit was answered",
            String::new(),
        ),
        Some(Ok(_)) => record(s, m, Outcome::Ok),
        Some(Err(e)) => client_failed(s, m, &e, ctx.refused(items), false),
    }
}

/// One small Embed; its latency in ms when it was answered.
async fn probe(ctx: &Ctx, client: &Client, s: &Shared) -> Option<f64> {
    let m = Method::Probe;
    let started = Instant::now();
    match guarded(ctx, client.embed(vec![PROBE_TEXT.into()], false)).await {
        None => {
            hang(ctx, s, m);
            None
        }
        Some(Ok(_)) => {
            record(s, m, Outcome::Ok);
            Some(started.elapsed().as_secs_f64() * 1e3)
        }
        Some(Err(e)) => {
            client_failed(s, m, &e, false, false);
            None
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum GateState {
    Run,
    Pause,
    Stop,
}

/// Lets the main task hold every client between two calls (a quiet point, to read the RSS of
/// an idle server) and end the load.
struct Gate {
    state: tokio::sync::watch::Sender<GateState>,
    parked: AtomicUsize,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            state: tokio::sync::watch::Sender::new(GateState::Run),
            parked: AtomicUsize::new(0),
        }
    }

    /// Called by a client before each call: waits out a pause; false once the load is over.
    async fn proceed(&self) -> bool {
        let mut rx = self.state.subscribe();
        loop {
            let state = *rx.borrow_and_update();
            match state {
                GateState::Run => return true,
                GateState::Stop => return false,
                GateState::Pause => {
                    self.parked.fetch_add(1, Ordering::SeqCst);
                    let changed = rx.changed().await;
                    self.parked.fetch_sub(1, Ordering::SeqCst);
                    if changed.is_err() {
                        return false;
                    }
                }
            }
        }
    }

    fn set(&self, state: GateState) {
        self.state.send_replace(state);
    }

    /// Pauses the load and waits until `clients` are parked (their calls answered).
    async fn pause(&self, clients: usize, limit: Duration) -> bool {
        self.set(GateState::Pause);
        let started = Instant::now();
        while self.parked.load(Ordering::SeqCst) < clients {
            if started.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

/// One load client: random calls until the gate says stop.
async fn load_client(
    ctx: Arc<Ctx>,
    url: String,
    seed: u64,
    gate: Arc<Gate>,
    s: Shared,
) -> anyhow::Result<()> {
    let client = connect(&ctx, &url).await?;
    let raw = OffloadClient::new(
        tonic::transport::Endpoint::from_shared(url.clone())?
            .connect()
            .await?,
    );
    let mut rng = Rng(seed);
    while gate.proceed().await {
        let roll = rng.below(100);
        if roll < 40 {
            if rng.chance(0.1) {
                let items = ctx.pick(&mut rng, 2, false);
                let deadline = Duration::from_millis(20 + rng.below(400) as u64);
                let what = describe(&ctx, &items);
                let call = do_extract_deadline(&ctx, &raw, &s, &items, deadline);
                timed(&s, Method::ExtractDeadline, what, call).await;
            } else {
                let items = ctx.pick(&mut rng, 3, false);
                let what = describe(&ctx, &items);
                timed(
                    &s,
                    Method::Extract,
                    what,
                    do_extract(&ctx, &client, &s, &items),
                )
                .await;
            }
        } else if roll < 60 {
            let n = 2 + rng.below(3);
            let chunks: Vec<Vec<Item>> = (0..n).map(|_| ctx.pick(&mut rng, 2, false)).collect();
            let abandon = rng.chance(0.1);
            let what = describe(&ctx, &chunks.concat());
            timed(
                &s,
                Method::Stream,
                what,
                do_stream(&ctx, &client, &s, chunks, abandon),
            )
            .await;
        } else if roll < 80 {
            let items = ctx.pick(&mut rng, 4, false);
            let what = describe(&ctx, &items);
            timed(&s, Method::Embed, what, do_embed(&ctx, &client, &s, &items)).await;
        } else {
            let items = ctx.pick(&mut rng, 2, true);
            let what = describe(&ctx, &items);
            timed(
                &s,
                Method::CheckGrammar,
                what,
                do_grammar(&ctx, &client, &s, &items),
            )
            .await;
        }
    }
    Ok(())
}

/// The latency client: small Embeds 25 ms apart until the gate says stop.
async fn probe_client(
    ctx: Arc<Ctx>,
    url: String,
    gate: Arc<Gate>,
    s: Shared,
) -> anyhow::Result<()> {
    let client = connect(&ctx, &url).await?;
    while gate.proceed().await {
        if let Some(ms) = probe(&ctx, &client, &s).await {
            lock(&s).probe_ms.push(ms);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(())
}

async fn connect(ctx: &Ctx, url: &str) -> anyhow::Result<Client> {
    let mut options = ClientOptions::new(url.to_owned());
    options.request_timeout = ctx.opts.op_timeout + Duration::from_secs(5);
    Ok(Client::connect(options).await?)
}

/// Every essay through Extract (chunks of 2) and every hostile text through each method once,
/// `clients` calls at a time.
async fn warm_up(ctx: &Arc<Ctx>, url: &str, s: &Shared) -> anyhow::Result<()> {
    use futures::StreamExt;
    let client = connect(ctx, url).await?;
    enum Call {
        Extract(Vec<Item>),
        Embed(Vec<Item>),
        Grammar(Vec<Item>),
        Stream(Vec<Vec<Item>>),
    }
    let mut calls = Vec::new();
    for k in 0..ctx.hostile.len() {
        let with_essay = vec![Item::Essay(k % ctx.essays.len()), Item::Hostile(k)];
        if ctx.hostile[k].grammar {
            calls.push(Call::Grammar(vec![Item::Hostile(k)]));
        }
        calls.push(Call::Extract(with_essay.clone()));
        calls.push(Call::Embed(with_essay));
    }
    let essays: Vec<Item> = (0..ctx.essays.len()).map(Item::Essay).collect();
    for pair in essays.chunks(2) {
        calls.push(Call::Extract(pair.to_vec()));
        calls.push(Call::Grammar(pair.to_vec()));
    }
    calls.push(Call::Stream(
        essays.chunks(3).take(4).map(<[Item]>::to_vec).collect(),
    ));
    futures::stream::iter(calls)
        .for_each_concurrent(ctx.opts.clients, |call| {
            let client = &client;
            async move {
                match call {
                    Call::Extract(items) => {
                        let what = describe(ctx, &items);
                        timed(s, Method::Extract, what, do_extract(ctx, client, s, &items)).await
                    }
                    Call::Embed(items) => {
                        let what = describe(ctx, &items);
                        timed(s, Method::Embed, what, do_embed(ctx, client, s, &items)).await
                    }
                    Call::Grammar(items) => {
                        let what = describe(ctx, &items);
                        let call = do_grammar(ctx, client, s, &items);
                        timed(s, Method::CheckGrammar, what, call).await
                    }
                    Call::Stream(chunks) => {
                        let what = describe(ctx, &chunks.concat());
                        let call = do_stream(ctx, client, s, chunks, false);
                        timed(s, Method::Stream, what, call).await
                    }
                }
            }
        })
        .await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// RSS and the live heap

/// The system allocator, counting the bytes live: the server runs in this process, so this is
/// its Rust heap (plus the clients'), whatever the allocator keeps in reserve. RSS growth with a
/// flat live heap is the allocator holding freed memory, not a leak.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// SAFETY: every call is forwarded to `System` unchanged; only a counter is added.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which `System` shares.
        let p = unsafe { std::alloc::System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { std::alloc::System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; the caller upholds `realloc`'s contract.
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

/// Fixes glibc's mmap threshold at its 128 KiB default unless `keep_default` or the environment
/// sets one, and says which allocator settings the run has.
///
/// By default glibc raises the threshold (up to 32 MiB) each time a large mmapped block is freed,
/// and its trim threshold with it, so that later large buffers (candle's attention tensors, the
/// tokenizer's buffers for a 200 kB text) come from per-thread heaps that keep up to 64 MiB of
/// free memory each instead of returning it: the RSS then climbs for minutes towards the peak
/// while the live heap stays flat, and the RSS says nothing about leaks. With the threshold fixed
/// the RSS follows what the process holds; `--glibc-default` measures glibc's own behaviour.
fn configure_allocator(keep_default: bool) -> String {
    let env: Vec<String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("MALLOC_") || k == "GLIBC_TUNABLES")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !env.is_empty() {
        return format!("glibc, from the environment: {}", env.join(" "));
    }
    if keep_default {
        return "glibc defaults (--glibc-default: dynamic mmap threshold)".to_owned();
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
        }
        const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
        // SAFETY: mallopt takes a parameter id and a value; called before any other thread runs.
        if unsafe { mallopt(M_MMAP_THRESHOLD, 128 * 1024) } == 1 {
            return "glibc, mmap threshold fixed at 128 KiB by the bench (--glibc-default keeps \
                    glibc's dynamic threshold)"
                .to_owned();
        }
        "glibc defaults (mallopt refused the fixed threshold)".to_owned()
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        "the system allocator".to_owned()
    }
}

/// Asks glibc to return the free memory of all its arenas to the system (`malloc_trim(0)`), so
/// that the RSS shows what the process holds rather than what the allocator keeps for reuse;
/// false where the allocator is not glibc's.
fn trim_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: glibc's malloc_trim takes a byte count and only releases free pages.
        unsafe { malloc_trim(0) };
        true
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Live Rust heap bytes, KiB.
fn heap_kib() -> u64 {
    (LIVE_BYTES.load(Ordering::Relaxed) / 1024) as u64
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Phase {
    Start = 0,
    WarmUp = 1,
    Idle = 2,
    Load = 3,
    Drain = 4,
    Quiet = 5,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::WarmUp,
            2 => Phase::Idle,
            3 => Phase::Load,
            4 => Phase::Drain,
            5 => Phase::Quiet,
            _ => Phase::Start,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::WarmUp => "warm-up",
            Phase::Idle => "idle",
            Phase::Load => "load",
            Phase::Drain => "drain",
            Phase::Quiet => "quiet",
        }
    }
}

#[derive(Clone, Copy)]
struct Sample {
    /// Seconds since the bench started.
    t: f64,
    phase: Phase,
    kib: u64,
}

/// VmRSS of this process, KiB.
fn rss_kib() -> u64 {
    proc_status("VmRSS")
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn median(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------------------------
// Server metrics

/// `name{labels} value` lines of the metrics page, for the series the report shows.
fn metric_lines(page: &str) -> BTreeMap<String, f64> {
    const SHOWN: &[&str] = &[
        "hemma_rows_limited_total",
        "hemma_analyses_cancelled_total",
        "hemma_queue_rejections_total",
        "hemma_queue_depth",
        "hemma_engine_panics_total",
        "hemma_languagetool_in_flight",
        "hemma_languagetool_cache_hits_total",
        "hemma_languagetool_cache_misses_total",
        "hemma_languagetool_cache_bytes",
    ];
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            let base = name.split('{').next()?;
            SHOWN
                .contains(&base)
                .then(|| Some((name.to_owned(), value.trim().parse().ok()?)))
                .flatten()
        })
        .collect()
}

/// The state of the process at a quiet point.
struct Quiet {
    /// Median RSS after the allocator has returned the free memory it can (`malloc_trim`), KiB:
    /// what the process holds. The RSS check compares these.
    kib: u64,
    /// Median RSS as it was, KiB (includes memory the allocator keeps for reuse).
    raw: u64,
    /// Median live Rust heap, KiB.
    heap: u64,
    /// OS threads of the process.
    threads: u64,
    /// Series on the metrics page (a label that grows per request would show here).
    series: usize,
    /// The series the report shows.
    metrics: BTreeMap<String, f64>,
}

/// A `/proc/self/status` field as a number.
fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| {
                v.trim_start_matches(':')
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

/// How long an idle thread of the runtime's blocking pool lives (tokio's default, set explicitly
/// because the quiet points wait for it).
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Waits until the embedding queue and LanguageTool are idle (15 s at most) and, given a thread
/// count, until the blocking pool's extra threads have ended (one keep-alive at most: an idle
/// thread's stack and arena are not a leak), then takes the median RSS of 5 samples over the next
/// second, the thread count and the metrics.
async fn quiet_point(server: &TestServer, threads_at_most: Option<u64>) -> Quiet {
    let settle = Instant::now();
    let (page, metrics) = loop {
        let page = server.metrics().await;
        let metrics = metric_lines(&page);
        let busy = sum_of(&metrics, "hemma_queue_depth")
            + sum_of(&metrics, "hemma_languagetool_in_flight");
        if busy == 0.0 || settle.elapsed() > Duration::from_secs(15) {
            break (page, metrics);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if let Some(limit) = threads_at_most {
        let idle_since = Instant::now();
        while proc_status("Threads") > limit
            && idle_since.elapsed() < BLOCKING_KEEP_ALIVE + Duration::from_secs(1)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut rss = Vec::new();
    let mut heap = Vec::new();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        rss.push(rss_kib());
        heap.push(heap_kib());
    }
    let raw = median(rss).unwrap_or(0);
    let kib = if trim_allocator() {
        let mut trimmed = Vec::new();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            trimmed.push(rss_kib());
        }
        median(trimmed).unwrap_or(0)
    } else {
        raw
    };
    Quiet {
        kib,
        raw,
        heap: median(heap).unwrap_or(0),
        threads: proc_status("Threads"),
        series: page
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count(),
        metrics,
    }
}

fn sum_of(metrics: &BTreeMap<String, f64>, base: &str) -> f64 {
    metrics
        .iter()
        .filter(|(k, _)| k.split('{').next() == Some(base))
        .map(|(_, v)| v)
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Report

/// Prints calls per method and outcome with their wall times; returns the sum over calls
/// (stream chunks, not streams).
fn print_requests(phase: &str, st: &Stats) -> Tally {
    let line = |name: &str, t: &Tally, p50: f64, max: f64| {
        println!(
            "{name:<28} {:>6} {:>6} {:>7} {:>7} {:>8} {:>9} {:>10} {:>8.0} {:>8.0}",
            t.total,
            t.ok,
            t.limited,
            t.refused,
            t.back_pressure,
            t.cancelled,
            t.unexpected,
            p50,
            max
        );
    };
    println!(
        "{:<28} {:>6} {:>6} {:>7} {:>7} {:>8} {:>9} {:>10} {:>8} {:>8}",
        format!("calls ({phase})"),
        "total",
        "ok",
        "limited",
        "refused",
        "back-pr.",
        "cancelled",
        "UNEXPECTED",
        "p50 ms",
        "max ms"
    );
    let mut sum = Tally::default();
    for m in Method::ALL {
        let t = st.methods.get(&m).copied().unwrap_or_default();
        if t.total == 0 && phase != "load" {
            continue;
        }
        let mut ms = st.wall_ms.get(&m).cloned().unwrap_or_default();
        if m == Method::Probe {
            ms = st.probe_ms.clone();
        }
        ms.sort_by(f64::total_cmp);
        line(
            m.label(),
            &t,
            percentile(&ms, 50.0),
            ms.last().copied().unwrap_or(f64::NAN),
        );
        if m != Method::Stream {
            // Stream chunks are counted as calls; the stream itself is their envelope.
            sum.total += t.total;
            sum.ok += t.ok;
            sum.limited += t.limited;
            sum.refused += t.refused;
            sum.back_pressure += t.back_pressure;
            sum.cancelled += t.cancelled;
        }
        sum.unexpected += t.unexpected;
    }
    line("all (chunks, not streams)", &sum, f64::NAN, f64::NAN);
    sum
}

// ---------------------------------------------------------------------------------------------
// Main

fn main() -> ExitCode {
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak: {e:#}");
            return ExitCode::from(2);
        }
    };
    // Before any thread starts: glibc reads its settings once.
    let allocator = configure_allocator(opts.glibc_default);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("soak: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(opts, allocator)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("soak: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(opts: Opts, allocator: String) -> anyhow::Result<bool> {
    let t0 = Instant::now();
    let phase = Arc::new(AtomicU8::new(Phase::Start as u8));
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let sampler = {
        let (phase, samples) = (phase.clone(), samples.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let s = Sample {
                    t: t0.elapsed().as_secs_f64(),
                    phase: Phase::from_u8(phase.load(Ordering::Relaxed)),
                    kib: rss_kib(),
                };
                samples.lock().unwrap_or_else(|e| e.into_inner()).push(s);
            }
        })
    };
    let rss_start = rss_kib();

    // LanguageTool: the real one scripts/test.sh exported, else the fake.
    let real = !opts.fake_languagetool
        && std::env::var("HEMMA_TEST_LANGUAGETOOL_URL").is_ok_and(|v| !v.trim().is_empty());
    let mut _fake = None;
    let urls = if real {
        languagetool_urls()
    } else {
        let fake = FakeLanguageTool::start().await;
        let url = fake.url();
        _fake = Some(fake);
        vec![url]
    };
    let args = ServeArgs {
        // Under the soak a real LanguageTool on a shared 2-core CI machine takes up to ~30 s for
        // a cold hostile text (3,000 paragraphs, 5,000 emoji); the fixture's 2 s timeout is for
        // tests of the timeout itself.
        languagetool_timeout_secs: Some(120.0),
        engine: Some(opts.engine),
        ort_dylib: (opts.engine == EngineKind::Ort).then(hemma_e2e::ort_dylib),
        ..grammar_args(&urls)
    };
    let limits = hemma_e2e::config(args.clone()).limits;
    let essays = read_essays()?;
    let hostile = hostile_texts(limits.max_bytes_per_text);
    let ctx = Arc::new(Ctx {
        essays,
        hostile,
        opts,
    });
    let opts = &ctx.opts;

    let server = TestServer::start(args).await;
    let url = server.http("");
    let rss_ready = rss_kib();
    println!(
        "soak: {} s, {} clients + 1 latency probe, {:.0} % of requests with a hostile text, engine {:?}, \
         LanguageTool {} ({}), limit {} bytes per text, allocator {}",
        opts.seconds,
        opts.clients,
        opts.hostile_share * 100.0,
        opts.engine,
        if real { "real" } else { "fake" },
        urls.join(","),
        limits.max_bytes_per_text,
        allocator,
    );

    // Warm-up: untimed, tallied apart.
    phase.store(Phase::WarmUp as u8, Ordering::Relaxed);
    let warm: Shared = Arc::default();
    let warm_started = Instant::now();
    warm_up(&ctx, &url, &warm).await?;
    let warm_seconds = warm_started.elapsed().as_secs_f64();
    let warm_total: Tally = lock(&warm)
        .methods
        .values()
        .fold(Tally::default(), |a, t| Tally {
            total: a.total + t.total,
            unexpected: a.unexpected + t.unexpected,
            ..a
        });
    println!(
        "warm-up: {} calls in {warm_seconds:.1} s (every essay and hostile text once; not in the tables below), {} unexpected",
        warm_total.total, warm_total.unexpected
    );

    // Idle latency.
    phase.store(Phase::Idle as u8, Ordering::Relaxed);
    let warmed = quiet_point(&server, None).await;
    let rss_warm = warmed.kib;
    let idle: Shared = Arc::default();
    let mut idle_ms = Vec::new();
    {
        let client = connect(&ctx, &url).await?;
        for i in 0..53 {
            let ms = probe(&ctx, &client, &idle).await;
            if let (true, Some(ms)) = (i >= 3, ms) {
                idle_ms.push(ms);
            }
        }
    }

    // Load: 20 % of it, a quiet point, the other 80 %.
    let stats: Shared = Arc::default();
    let gate = Arc::new(Gate::new());
    phase.store(Phase::Load as u8, Ordering::Relaxed);
    println!("load: {} s ...", opts.seconds);
    let load_started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..opts.clients {
        tasks.push(tokio::spawn(load_client(
            ctx.clone(),
            url.clone(),
            opts.seed.wrapping_mul(1000).wrapping_add(c as u64),
            gate.clone(),
            stats.clone(),
        )));
    }
    tasks.push(tokio::spawn(probe_client(
        ctx.clone(),
        url.clone(),
        gate.clone(),
        stats.clone(),
    )));
    // Quiet points at 20, 40, 60 and 80 % of the load (the one at 20 % is the reference, the
    // others show whether a growth levels off), the last one after the load.
    let fifth = Duration::from_secs_f64(opts.seconds as f64 * 0.2);
    let mut pause_seconds = 0.0;
    let mut parked = true;
    let mut quiet: Vec<(f64, Quiet)> = vec![(0.0, warmed)];
    let mut metrics_20 = BTreeMap::new();
    for k in 1..=4 {
        tokio::time::sleep(fifth).await;
        phase.store(Phase::Quiet as u8, Ordering::Relaxed);
        let pause_started = Instant::now();
        parked &= gate.pause(tasks.len(), opts.op_timeout).await;
        // The later points compare with the one at 20 %: the same threads, once the blocking
        // pool has let its extra ones go.
        let threads_20 = quiet.get(1).map(|(_, q)| q.threads);
        let mut point = quiet_point(&server, threads_20).await;
        if k == 1 {
            metrics_20 = std::mem::take(&mut point.metrics);
        }
        quiet.push((k as f64 * 20.0, point));
        pause_seconds += pause_started.elapsed().as_secs_f64();
        phase.store(Phase::Load as u8, Ordering::Relaxed);
        gate.set(GateState::Run);
    }
    tokio::time::sleep(fifth).await;
    let rss_20 = quiet[1].1.kib;
    let load_seconds = load_started.elapsed().as_secs_f64() - pause_seconds;
    phase.store(Phase::Drain as u8, Ordering::Relaxed);
    gate.set(GateState::Stop);
    let drain_started = Instant::now();
    for t in tasks {
        t.await.context("a client task panicked")??;
    }
    let drain_seconds = drain_started.elapsed().as_secs_f64();
    phase.store(Phase::Quiet as u8, Ordering::Relaxed);
    let mut end = quiet_point(&server, quiet.get(1).map(|(_, q)| q.threads)).await;
    let rss_end = end.kib;
    let metrics = std::mem::take(&mut end.metrics);
    quiet.push((100.0, end));
    // In a task of its own: a panic in the server's shutdown is reported, not the bench's end.
    let stop: Result<(), String> = match tokio::spawn(server.stop()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(join) => Err(match join.try_into_panic() {
            Ok(p) => p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .map_or_else(|| "panicked".to_owned(), |m| format!("panicked: {m}")),
            Err(e) => e.to_string(),
        }),
    };
    sampler.abort();

    // ---- Report -------------------------------------------------------------------------
    let mut failures: Vec<String> = Vec::new();
    let stats = std::mem::take(&mut *lock(&stats));
    let warm = std::mem::take(&mut *lock(&warm));
    let idle = std::mem::take(&mut *lock(&idle));

    println!();
    print_requests("warm-up (untimed)", &warm);
    println!();
    let sum = print_requests("load", &stats);
    println!(
        "  limited = answered with a NaN row and a row status for a hostile text (expected); \
         cancelled = a short deadline or a stream dropped by the bench; ms = wall time per call \
         (per stream for streams)"
    );
    for (m, (ms, what)) in &stats.slowest {
        println!("  slowest {}: {:.0} ms ({what})", m.label(), ms);
    }

    let mut limited_all: BTreeMap<(String, String), u64> = warm.limited.clone();
    for (k, v) in &stats.limited {
        *limited_all.entry(k.clone()).or_default() += v;
    }
    println!();
    println!(
        "{:<40} {:<24} {:>8}",
        "limited rows (warm-up + load)", "code", "rows"
    );
    for ((text, code), n) in &limited_all {
        println!("{text:<40} {code:<24} {n:>8}");
    }
    let mut full_all = warm.hostile_full.clone();
    for (k, v) in &stats.hostile_full {
        *full_all.entry(k.clone()).or_default() += v;
    }
    for (text, n) in &full_all {
        println!("{text:<40} {:<24} {n:>8}", "(answered in full)");
    }

    let mut errors: BTreeMap<(Class, String), (u64, Vec<String>)> = BTreeMap::new();
    for (phase_name, st) in [("warm-up", &warm), ("idle", &idle), ("load", &stats)] {
        for ((class, kind), e) in &st.errors {
            let entry = errors
                .entry((*class, format!("{kind} [{phase_name}]")))
                .or_default();
            entry.0 += e.count;
            entry.1.extend(e.samples.iter().cloned());
        }
    }
    println!();
    println!("{:<72} {:>7}  class", "errors by kind [phase]", "count");
    if errors.is_empty() {
        println!("(none)");
    }
    for ((class, kind), (count, samples)) in &errors {
        println!("{kind:<72} {count:>7}  {}", class.label());
        if *class == Class::Unexpected {
            for s in samples.iter().take(3) {
                println!("    e.g. {s}");
            }
            failures.push(format!("{count} x {kind}"));
        }
    }

    // Latency.
    let mut idle_sorted = idle_ms.clone();
    idle_sorted.sort_by(f64::total_cmp);
    let mut load_sorted = stats.probe_ms.clone();
    load_sorted.sort_by(f64::total_cmp);
    let (i50, i99) = (
        percentile(&idle_sorted, 50.0),
        percentile(&idle_sorted, 99.0),
    );
    let (l50, l99) = (
        percentile(&load_sorted, 50.0),
        percentile(&load_sorted, 99.0),
    );
    println!();
    println!(
        "{:<28} {:>7} {:>9} {:>9} {:>9}",
        "small Embed latency", "calls", "p50 ms", "p99 ms", "max ms"
    );
    println!(
        "{:<28} {:>7} {:>9.1} {:>9.1} {:>9.1}",
        "idle (before the load)",
        idle_sorted.len(),
        i50,
        i99,
        idle_sorted.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "{:<28} {:>7} {:>9.1} {:>9.1} {:>9.1}",
        "under load",
        load_sorted.len(),
        l50,
        l99,
        load_sorted.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "{:<28} {:>7} {:>8.1}x {:>8.1}x",
        "ratio (load / idle)",
        "",
        l50 / i50,
        l99 / i99
    );

    // RSS.
    let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let under_load: Vec<u64> = samples
        .iter()
        .filter(|s| s.phase == Phase::Load)
        .map(|s| s.kib)
        .collect();
    let peak = samples.iter().map(|s| s.kib).max().unwrap_or(0);
    let load_median = median(under_load.clone()).unwrap_or(0);
    let growth = (rss_end as f64 / rss_20 as f64 - 1.0) * 100.0;
    println!();
    println!(
        "{:<16} {:>7} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "RSS (MiB)", "start", "ready", "warmed-up", "@20 %", "end", "growth", "peak", "load p50"
    );
    println!(
        "{:<16} {:>7.1} {:>7.1} {:>10.1} {:>8.1} {:>8.1} {:>7.1}% {:>8.1} {:>8.1}",
        "process",
        mib(rss_start),
        mib(rss_ready),
        mib(rss_warm),
        mib(rss_20),
        mib(rss_end),
        growth,
        mib(peak),
        mib(load_median),
    );
    println!(
        "  warmed-up, @20 % and end are quiet points (every client waits between two calls, queue \
         and LanguageTool idle): after the untimed warm-up, after {:.0} s of load, after all \
         {:.0} s; RSS after malloc_trim, i.e. what the process holds, not what the allocator keeps \
         for reuse (both below). Peak and load p50 are of the 1 s samples. Limit: end at most \
         +{:.0} % over @20 %, for the RSS and for the live Rust heap.",
        opts.seconds as f64 * 0.2,
        load_seconds,
        opts.max_rss_growth_pct
    );
    println!(
        "  {:<30} {}",
        "quiet point (% of the load)",
        quiet
            .iter()
            .map(|(pct, _)| format!("{pct:>7.0}"))
            .collect::<String>()
    );
    let row = |name: &str, f: &dyn Fn(&Quiet) -> String| {
        let cells: String = quiet.iter().map(|(_, q)| format!("{:>7}", f(q))).collect();
        println!("  {name:<30} {cells}");
    };
    row("RSS MiB, as it was", &|q| format!("{:.1}", mib(q.raw)));
    row("RSS MiB, after malloc_trim", &|q| {
        format!("{:.1}", mib(q.kib))
    });
    row("live Rust heap MiB", &|q| format!("{:.1}", mib(q.heap)));
    row("threads", &|q| q.threads.to_string());
    row("metrics series", &|q| q.series.to_string());
    if !parked {
        failures.push(format!(
            "the clients did not reach the quiet point at 20 % within {:?} (a call hangs)",
            opts.op_timeout
        ));
    }
    let heap_20 = quiet[1].1.heap;
    let heap_end = quiet.last().map_or(0, |(_, q)| q.heap);
    let heap_growth = (heap_end as f64 / heap_20.max(1) as f64 - 1.0) * 100.0;
    if growth > opts.max_rss_growth_pct {
        failures.push(format!(
            "RSS grew {growth:.1} % from {:.1} MiB at 20 % of the load to {:.1} MiB at the end (limit {:.0} %)",
            mib(rss_20),
            mib(rss_end),
            opts.max_rss_growth_pct
        ));
        if heap_growth <= opts.max_rss_growth_pct {
            println!(
                "  note: the live Rust heap went from {:.1} to {:.1} MiB ({heap_growth:+.1} %) while \
                 the RSS grew: memory held outside the Rust heap (native libraries, thread \
                 stacks) or pages the allocator cannot return (fragmentation)",
                mib(heap_20),
                mib(heap_end)
            );
        }
    }
    let raw_20 = quiet[1].1.raw;
    let raw_end = quiet.last().map_or(0, |(_, q)| q.raw);
    println!(
        "  RSS as it was (before malloc_trim, not checked): {:.1} MiB at 20 %, {:.1} MiB at the end \
         ({:+.1} %); the difference to the checked RSS is free memory the allocator keeps for \
         reuse",
        mib(raw_20),
        mib(raw_end),
        (raw_end as f64 / raw_20.max(1) as f64 - 1.0) * 100.0
    );
    if heap_growth > opts.max_rss_growth_pct {
        failures.push(format!(
            "the live Rust heap grew {heap_growth:.1} % from {:.1} MiB at 20 % of the load to {:.1} MiB at the end (limit {:.0} %)",
            mib(heap_20),
            mib(heap_end),
            opts.max_rss_growth_pct
        ));
    }
    let busy_20 = sum_of(&metrics_20, "hemma_queue_depth")
        + sum_of(&metrics_20, "hemma_languagetool_in_flight");
    if busy_20 != 0.0 {
        failures.push(format!(
            "at the quiet point at 20 % the queue and LanguageTool still held {busy_20} items 15 s after the last call"
        ));
    }

    // Server metrics and shutdown.
    println!();
    println!("server metrics after the load (warm-up included):");
    for (k, v) in &metrics {
        println!("  {k} {v}");
    }
    let queue = sum_of(&metrics, "hemma_queue_depth");
    let lt_in_flight = sum_of(&metrics, "hemma_languagetool_in_flight");
    let panics = sum_of(&metrics, "hemma_engine_panics_total");
    if queue != 0.0 {
        failures.push(format!(
            "the embedding queue holds {queue} sequences 15 s after the last call"
        ));
    }
    if lt_in_flight != 0.0 {
        failures.push(format!(
            "{lt_in_flight} LanguageTool checks still in flight 15 s after the last call"
        ));
    }
    if panics != 0.0 {
        failures.push(format!("{panics} engine panics"));
    }
    if let Err(e) = &stop {
        failures.push(format!("the server's graceful stop failed: {e}"));
    }
    if sum.total == 0 {
        failures.push("no call completed in the load phase".into());
    }
    println!(
        "drain: the clients finished their last calls in {drain_seconds:.1} s; server stop: {}",
        match &stop {
            Ok(()) => "ok",
            Err(e) => e.as_str(),
        }
    );

    let pass = failures.is_empty();
    println!();
    if pass {
        println!("soak: PASS");
    } else {
        println!("soak: FAIL");
        for f in &failures {
            println!("  - {f}");
        }
    }

    if let Some(path) = &opts.json {
        let summary = json!({
            "seconds": opts.seconds,
            "clients": opts.clients,
            "hostile_share": opts.hostile_share,
            "engine": format!("{:?}", opts.engine),
            "allocator": allocator,
            "languagetool": if real { "real" } else { "fake" },
            "max_bytes_per_text": limits.max_bytes_per_text,
            "warm_up": {
                "seconds": warm_seconds,
                "requests": warm.methods.iter().map(|(m, t)| (m.label().to_owned(), t.json())).collect::<serde_json::Map<_, _>>(),
            },
            "requests": stats.methods.iter().map(|(m, t)| (m.label().to_owned(), t.json())).collect::<serde_json::Map<_, _>>(),
            "limited_rows": limited_all.iter().map(|((text, code), n)| json!({"text": text, "code": code, "rows": n})).collect::<Vec<_>>(),
            "hostile_answered_in_full": full_all,
            "errors": errors.iter().map(|((class, kind), (count, samples))| json!({
                "kind": kind, "class": class.label(), "count": count, "samples": samples,
            })).collect::<Vec<_>>(),
            "latency_ms": {
                "idle": {"calls": idle_sorted.len(), "p50": i50, "p99": i99},
                "load": {"calls": load_sorted.len(), "p50": l50, "p99": l99},
                "ratio_p50": l50 / i50,
                "ratio_p99": l99 / i99,
            },
            "rss_mib": {
                "start": mib(rss_start),
                "ready": mib(rss_ready),
                "warmed_up": mib(rss_warm),
                "at_20pct": mib(rss_20),
                "peak": mib(peak),
                "end": mib(rss_end),
                "load_median": mib(load_median),
                "quiet_points": quiet.iter().map(|(pct, q)| json!({"pct_of_load": pct, "mib": mib(q.kib), "raw_mib": mib(q.raw), "heap_mib": mib(q.heap), "threads": q.threads, "metrics_series": q.series})).collect::<Vec<_>>(),
                "growth_pct": growth,
                "max_growth_pct": opts.max_rss_growth_pct,
                "samples": samples.iter().map(|s| json!([ (s.t * 10.0).round() / 10.0, s.phase.name(), (mib(s.kib) * 10.0).round() / 10.0 ])).collect::<Vec<_>>(),
            },
            "server_metrics": metrics,
            "drain_seconds": drain_seconds,
            "load_seconds": load_seconds,
            "pause_seconds": pause_seconds,
            "pass": pass,
            "failures": failures,
        });
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&summary)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("summary: {}", path.display());
    }
    Ok(pass)
}
