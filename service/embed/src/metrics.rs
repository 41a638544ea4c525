//! The embedding subsystem's metrics, registered into a registry the caller owns (the server
//! registers them under its `hemma_` prefix).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of engine work.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EngineLabels {
    /// `ort` or `candle`.
    pub engine: String,
}

/// Queue and engine metrics, cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// `queue_depth`: texts waiting for or in the engine.
    pub queue_depth: Gauge,
    /// `queue_rejections_total`: requests refused because the queue was full.
    pub queue_rejections: Counter,
    /// `batch_rows{engine}`.
    pub batch_rows: Family<EngineLabels, Histogram>,
    /// `batch_padded_tokens{engine}`: rows x longest row of each batch.
    pub batch_padded_tokens: Family<EngineLabels, Histogram>,
    /// `inference_duration_seconds{engine}`: engine time of one batch.
    pub inference_duration: Family<EngineLabels, Histogram>,
    /// `embedded_texts_total`.
    pub embedded_texts: Counter,
    /// `engine_panics_total`: batches whose engine call panicked (the batch failed, the engine
    /// went on).
    pub engine_panics: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::register(&mut Registry::default())
    }
}

impl Metrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &mut Registry) -> Metrics {
        let seconds = || Histogram::new(exponential_buckets(0.001, 2.0, 18));
        let m = Metrics {
            queue_depth: Gauge::default(),
            queue_rejections: Counter::default(),
            batch_rows: Family::<EngineLabels, Histogram>::new_with_constructor(
                (|| Histogram::new(exponential_buckets(1.0, 2.0, 9))) as fn() -> Histogram,
            ),
            batch_padded_tokens: Family::<EngineLabels, Histogram>::new_with_constructor(
                (|| Histogram::new(exponential_buckets(16.0, 2.0, 14))) as fn() -> Histogram,
            ),
            inference_duration: Family::<EngineLabels, Histogram>::new_with_constructor(
                seconds as fn() -> Histogram,
            ),
            embedded_texts: Counter::default(),
            engine_panics: Counter::default(),
        };
        registry.register(
            "queue_depth",
            "Texts queued or running in the engine",
            m.queue_depth.clone(),
        );
        registry.register(
            "queue_rejections",
            "Requests refused with RESOURCE_EXHAUSTED because the queue was full",
            m.queue_rejections.clone(),
        );
        registry.register("batch_rows", "Rows per engine batch", m.batch_rows.clone());
        registry.register(
            "batch_padded_tokens",
            "Padded tokens (rows x longest) per engine batch",
            m.batch_padded_tokens.clone(),
        );
        registry.register(
            "inference_duration_seconds",
            "Engine time per batch",
            m.inference_duration.clone(),
        );
        registry.register("embedded_texts", "Texts embedded", m.embedded_texts.clone());
        registry.register(
            "engine_panics",
            "Engine batches that panicked (the batch failed, later batches ran)",
            m.engine_panics.clone(),
        );
        m
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
}
