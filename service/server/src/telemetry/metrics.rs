//! Prometheus metrics: the server's own (requests, extraction stages) and the registry that the
//! embedding queue and the LanguageTool pool register theirs into.
//!
//! The registry belongs to one server instance (no global recorder), so tests can run several
//! servers in one process and each `/metrics` shows only its own numbers.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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

/// Labels of `hemma_extract_stage_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// `embeddings`, `handcrafted` or `combined`.
    pub feature_set: String,
    /// `parse`, `embed`, `languagetool`, `assembly` or `total`.
    pub stage: String,
}

/// Labels of `hemma_rows_limited_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// The limit's code (`word_too_long`, `too_many_tokens`, ...; docs/features.md).
    pub reason: String,
}

/// The server's metrics, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// `hemma_requests_total{method,code}`.
    pub requests: Family<RequestLabels, Counter>,
    /// `hemma_request_duration_seconds{method,code}`.
    pub request_duration: Family<RequestLabels, Histogram>,
    /// `hemma_extract_stage_seconds{feature_set,stage}`: wall time of each stage of one extraction.
    pub extract_stage: Family<StageLabels, Histogram>,
    /// `hemma_rows_limited_total{reason}`: rows answered with NaN handcrafted features because
    /// their text exceeded an analyser limit.
    pub rows_limited: Family<LimitLabels, Counter>,
    /// `hemma_analyses_cancelled_total`: parses stopped because their request went away.
    pub analyses_cancelled: Counter,
    /// The embedding queue's and engine's metrics (`hemma_queue_*`, `hemma_batch_*`, ...).
    pub embed: hemma_embed::metrics::Metrics,
    /// The LanguageTool pool's and cache's metrics (`hemma_languagetool_*`).
    pub languagetool: languagetool_pool::metrics::Metrics,
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
    /// Creates the registry under the `hemma_` prefix and registers every subsystem's metrics.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hemma");
        let seconds = || Histogram::new(exponential_buckets(0.001, 2.0, 18));
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration =
            Family::<RequestLabels, Histogram>::new_with_constructor(seconds as fn() -> Histogram);
        let extract_stage =
            Family::<StageLabels, Histogram>::new_with_constructor(seconds as fn() -> Histogram);
        registry.register(
            "extract_stage_seconds",
            "Wall time of each stage of one Extract request or stream chunk (stages overlap)",
            extract_stage.clone(),
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
        let rows_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rows_limited",
            "Rows answered with NaN handcrafted features because the text exceeded an analyser limit",
            rows_limited.clone(),
        );
        let analyses_cancelled = Counter::default();
        registry.register(
            "analyses_cancelled",
            "Parses stopped early because their request was cancelled or timed out",
            analyses_cancelled.clone(),
        );
        let embed = hemma_embed::metrics::Metrics::register(&mut registry);
        let languagetool = languagetool_pool::metrics::Metrics::register(&mut registry);
        Metrics {
            registry: Arc::new(registry),
            requests,
            request_duration,
            extract_stage,
            rows_limited,
            analyses_cancelled,
            embed,
            languagetool,
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

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
