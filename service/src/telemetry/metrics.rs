//! Prometheus metrics: every name and bucket of the server lives here.
//!
//! The registry belongs to one server instance (no global recorder), so tests can run several
//! servers in one process and each `/metrics` shows only its own numbers.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a finished request: the method (bounded set) and its status code name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// gRPC method path or HTTP route, `other` for anything unknown.
    pub method: String,
    /// gRPC code name (`OK`, `InvalidArgument`, ...) or HTTP status.
    pub code: String,
}

/// Labels of engine work.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EngineLabels {
    /// `ort` or `candle`.
    pub engine: String,
}

/// Labels of a call to one LanguageTool instance.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// The instance's base URL (bounded by the configuration).
    pub upstream: String,
    /// `ok`, `transport`, `timeout`, `busy`, `too_long`, `rejected`, `failed` or `malformed`.
    pub outcome: String,
}

/// Labels naming one LanguageTool instance.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstanceLabels {
    /// The instance's base URL.
    pub upstream: String,
}

/// Labels of a cache hit.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    /// `memory` or `disk`.
    pub tier: String,
}

/// Labels of `hemma_extract_stage_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// `embeddings`, `handcrafted` or `combined`.
    pub feature_set: String,
    /// `parse`, `embed`, `languagetool`, `assembly` or `total`.
    pub stage: String,
}

/// The server's metrics, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// `hemma_requests_total{method,code}`.
    pub requests: Family<RequestLabels, Counter>,
    /// `hemma_request_duration_seconds{method,code}`.
    pub request_duration: Family<RequestLabels, Histogram>,
    /// `hemma_queue_depth`: texts waiting for or in the engine.
    pub queue_depth: Gauge,
    /// `hemma_queue_rejections_total`: requests refused because the queue was full.
    pub queue_rejections: Counter,
    /// `hemma_batch_rows{engine}`.
    pub batch_rows: Family<EngineLabels, Histogram>,
    /// `hemma_batch_padded_tokens{engine}`: rows x longest row of each batch.
    pub batch_padded_tokens: Family<EngineLabels, Histogram>,
    /// `hemma_inference_duration_seconds{engine}`: engine time of one batch.
    pub inference_duration: Family<EngineLabels, Histogram>,
    /// `hemma_embedded_texts_total`.
    pub embedded_texts: Counter,
    /// `hemma_languagetool_requests_total{upstream,outcome}`.
    pub languagetool_requests: Family<UpstreamLabels, Counter>,
    /// `hemma_languagetool_request_duration_seconds{upstream,outcome}`.
    pub languagetool_duration: Family<UpstreamLabels, Histogram>,
    /// `hemma_languagetool_in_flight`: checks holding a pool slot.
    pub languagetool_in_flight: Gauge,
    /// `hemma_languagetool_upstream_healthy{upstream}`: 1 while in the pool.
    pub languagetool_healthy: Family<InstanceLabels, Gauge>,
    /// `hemma_languagetool_cache_hits_total{tier}`.
    pub cache_hits: Family<TierLabels, Counter>,
    /// `hemma_languagetool_cache_misses_total`.
    pub cache_misses: Counter,
    /// `hemma_languagetool_cache_evictions_total`.
    pub cache_evictions: Counter,
    /// `hemma_languagetool_cache_bytes`: result bytes held in memory.
    pub cache_bytes: Gauge,
    /// `hemma_extract_stage_seconds{feature_set,stage}`: wall time of each stage of one extraction.
    pub extract_stage: Family<StageLabels, Histogram>,
}

/// Decrements the in-flight gauge when dropped.
pub struct GaugeGuard(Gauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric under the `hemma_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hemma");
        let seconds = || Histogram::new(exponential_buckets(0.001, 2.0, 18));
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration =
            Family::<RequestLabels, Histogram>::new_with_constructor(seconds as fn() -> Histogram);
        let queue_depth = Gauge::default();
        let queue_rejections = Counter::default();
        let batch_rows = Family::<EngineLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(1.0, 2.0, 9))) as fn() -> Histogram,
        );
        let batch_padded_tokens = Family::<EngineLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(16.0, 2.0, 14))) as fn() -> Histogram,
        );
        let inference_duration =
            Family::<EngineLabels, Histogram>::new_with_constructor(seconds as fn() -> Histogram);
        let embedded_texts = Counter::default();
        let languagetool_requests = Family::<UpstreamLabels, Counter>::default();
        let languagetool_duration =
            Family::<UpstreamLabels, Histogram>::new_with_constructor(seconds as fn() -> Histogram);
        let languagetool_in_flight = Gauge::default();
        let languagetool_healthy = Family::<InstanceLabels, Gauge>::default();
        let cache_hits = Family::<TierLabels, Counter>::default();
        let cache_misses = Counter::default();
        let cache_evictions = Counter::default();
        let cache_bytes = Gauge::default();
        let extract_stage =
            Family::<StageLabels, Histogram>::new_with_constructor(seconds as fn() -> Histogram);
        registry.register(
            "extract_stage_seconds",
            "Wall time of each stage of one Extract request or stream chunk (stages overlap)",
            extract_stage.clone(),
        );
        registry.register(
            "languagetool_requests",
            "Calls to LanguageTool instances by outcome",
            languagetool_requests.clone(),
        );
        registry.register(
            "languagetool_request_duration_seconds",
            "Latency of calls to LanguageTool instances",
            languagetool_duration.clone(),
        );
        registry.register(
            "languagetool_in_flight",
            "LanguageTool checks holding a pool slot",
            languagetool_in_flight.clone(),
        );
        registry.register(
            "languagetool_upstream_healthy",
            "1 while the LanguageTool instance is in the pool",
            languagetool_healthy.clone(),
        );
        registry.register(
            "languagetool_cache_hits",
            "Check results answered from the cache, by tier",
            cache_hits.clone(),
        );
        registry.register(
            "languagetool_cache_misses",
            "Check results not in the cache",
            cache_misses.clone(),
        );
        registry.register(
            "languagetool_cache_evictions",
            "Results dropped from the memory cache to stay under its byte budget",
            cache_evictions.clone(),
        );
        registry.register(
            "languagetool_cache_bytes",
            "Bytes of check results held in the memory cache",
            cache_bytes.clone(),
        );
        registry.register(
            "requests",
            "Finished requests by method and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Request latency by method and status",
            request_duration.clone(),
        );
        registry.register(
            "queue_depth",
            "Texts queued or running in the engine",
            queue_depth.clone(),
        );
        registry.register(
            "queue_rejections",
            "Requests refused with RESOURCE_EXHAUSTED because the queue was full",
            queue_rejections.clone(),
        );
        registry.register("batch_rows", "Rows per engine batch", batch_rows.clone());
        registry.register(
            "batch_padded_tokens",
            "Padded tokens (rows x longest) per engine batch",
            batch_padded_tokens.clone(),
        );
        registry.register(
            "inference_duration_seconds",
            "Engine time per batch",
            inference_duration.clone(),
        );
        registry.register("embedded_texts", "Texts embedded", embedded_texts.clone());
        Metrics {
            registry: Arc::new(registry),
            requests,
            request_duration,
            queue_depth,
            queue_rejections,
            batch_rows,
            batch_padded_tokens,
            inference_duration,
            embedded_texts,
            languagetool_requests,
            languagetool_duration,
            languagetool_in_flight,
            languagetool_healthy,
            cache_hits,
            cache_misses,
            cache_evictions,
            cache_bytes,
            extract_stage,
        }
    }

    /// Records the stage times of one extraction.
    pub fn record_extract(&self, feature_set: &str, stages: &[(&str, std::time::Duration)]) {
        for (stage, took) in stages {
            self.extract_stage
                .get_or_create(&StageLabels {
                    feature_set: feature_set.to_owned(),
                    stage: (*stage).to_owned(),
                })
                .observe(took.as_secs_f64());
        }
    }

    /// Records one call to a LanguageTool instance.
    pub fn record_upstream(&self, upstream: &str, outcome: &str, seconds: f64) {
        let labels = UpstreamLabels {
            upstream: upstream.to_owned(),
            outcome: outcome.to_owned(),
        };
        self.languagetool_requests.get_or_create(&labels).inc();
        self.languagetool_duration
            .get_or_create(&labels)
            .observe(seconds);
    }

    /// Marks a LanguageTool instance in or out of the pool.
    pub fn set_upstream_healthy(&self, upstream: &str, healthy: bool) {
        self.languagetool_healthy
            .get_or_create(&InstanceLabels {
                upstream: upstream.to_owned(),
            })
            .set(i64::from(healthy));
    }

    /// Counts a check in flight until the guard drops.
    pub fn languagetool_in_flight_guard(&self) -> GaugeGuard {
        self.languagetool_in_flight.inc();
        GaugeGuard(self.languagetool_in_flight.clone())
    }

    /// Records a cache hit from `tier`.
    pub fn record_cache_hit(&self, tier: &str) {
        self.cache_hits
            .get_or_create(&TierLabels {
                tier: tier.to_owned(),
            })
            .inc();
    }

    /// Records a cache miss.
    pub fn record_cache_miss(&self) {
        self.cache_misses.inc();
    }

    /// Records a store: entries evicted and the bytes now held.
    pub fn record_cache_store(&self, evicted: u64, bytes: usize) {
        self.cache_evictions.inc_by(evicted);
        self.cache_bytes.set(bytes as i64);
    }

    /// Records one finished request.
    pub fn record_request(&self, method: &str, code: &str, seconds: f64) {
        let labels = RequestLabels {
            method: method.to_owned(),
            code: code.to_owned(),
        };
        self.requests.get_or_create(&labels).inc();
        self.request_duration
            .get_or_create(&labels)
            .observe(seconds);
    }

    /// Records one engine batch.
    pub fn record_batch(&self, engine: &str, rows: usize, padded_tokens: usize, seconds: f64) {
        let labels = EngineLabels {
            engine: engine.to_owned(),
        };
        self.batch_rows.get_or_create(&labels).observe(rows as f64);
        self.batch_padded_tokens
            .get_or_create(&labels)
            .observe(padded_tokens as f64);
        self.inference_duration
            .get_or_create(&labels)
            .observe(seconds);
        self.embedded_texts.inc_by(rows as u64);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
