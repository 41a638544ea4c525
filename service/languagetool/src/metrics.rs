//! The LanguageTool pool's and cache's metrics, registered into a registry the caller owns (the
//! server registers them under its `hemma_` prefix).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::upstream::redact;

/// Labels of a call to one LanguageTool instance.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// The instance's base URL, credentials and query values redacted (bounded by the configuration).
    pub upstream: String,
    /// `ok`, `transport`, `timeout`, `busy`, `too_long`, `rejected`, `failed` or `malformed`.
    pub outcome: String,
}

/// Labels naming one LanguageTool instance.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstanceLabels {
    /// The instance's base URL, credentials and query values redacted.
    pub upstream: String,
}

/// Labels of a cache hit.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    /// `memory` or `disk`.
    pub tier: String,
}

/// Pool and cache metrics, cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// `languagetool_requests_total{upstream,outcome}`.
    pub languagetool_requests: Family<UpstreamLabels, Counter>,
    /// `languagetool_request_duration_seconds{upstream,outcome}`.
    pub languagetool_duration: Family<UpstreamLabels, Histogram>,
    /// `languagetool_in_flight`: checks holding a pool slot.
    pub languagetool_in_flight: Gauge,
    /// `languagetool_upstream_healthy{upstream}`: 1 while in the pool.
    pub languagetool_healthy: Family<InstanceLabels, Gauge>,
    /// `languagetool_cache_hits_total{tier}`.
    pub cache_hits: Family<TierLabels, Counter>,
    /// `languagetool_cache_misses_total`.
    pub cache_misses: Counter,
    /// `languagetool_cache_evictions_total`.
    pub cache_evictions: Counter,
    /// `languagetool_cache_bytes`: result bytes held in memory.
    pub cache_bytes: Gauge,
    /// `languagetool_disk_cache_bytes`: result bytes on disk, as counted since the last sweep.
    pub disk_cache_bytes: Gauge,
    /// `languagetool_disk_cache_evictions_total`: files removed to stay under the disk cap.
    pub disk_cache_evictions: Counter,
}

/// Decrements the in-flight gauge when dropped.
pub struct GaugeGuard(Gauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
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
        let languagetool_requests = Family::<UpstreamLabels, Counter>::default();
        let languagetool_duration =
            Family::<UpstreamLabels, Histogram>::new_with_constructor(seconds as fn() -> Histogram);
        let languagetool_in_flight = Gauge::default();
        let languagetool_healthy = Family::<InstanceLabels, Gauge>::default();
        let cache_hits = Family::<TierLabels, Counter>::default();
        let cache_misses = Counter::default();
        let cache_evictions = Counter::default();
        let cache_bytes = Gauge::default();
        let disk_cache_bytes = Gauge::default();
        let disk_cache_evictions = Counter::default();
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
            "languagetool_disk_cache_bytes",
            "Bytes of check results in the disk cache (counted at each sweep, plus writes since)",
            disk_cache_bytes.clone(),
        );
        registry.register(
            "languagetool_disk_cache_evictions",
            "Result files removed from the disk cache, oldest first, to stay under its size cap",
            disk_cache_evictions.clone(),
        );
        Metrics {
            languagetool_requests,
            languagetool_duration,
            languagetool_in_flight,
            languagetool_healthy,
            cache_hits,
            cache_misses,
            cache_evictions,
            cache_bytes,
            disk_cache_bytes,
            disk_cache_evictions,
        }
    }

    /// Records one call to a LanguageTool instance (its URL is redacted in the label).
    pub fn record_upstream(&self, upstream: &str, outcome: &str, seconds: f64) {
        let labels = UpstreamLabels {
            upstream: redact(upstream),
            outcome: outcome.to_owned(),
        };
        self.languagetool_requests.get_or_create(&labels).inc();
        self.languagetool_duration
            .get_or_create(&labels)
            .observe(seconds);
    }

    /// Marks a LanguageTool instance in or out of the pool (its URL is redacted in the label).
    pub fn set_upstream_healthy(&self, upstream: &str, healthy: bool) {
        self.languagetool_healthy
            .get_or_create(&InstanceLabels {
                upstream: redact(upstream),
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

    /// Records the disk cache's size and the files a sweep removed to get under its cap.
    pub fn record_disk_cache(&self, evicted: u64, bytes: u64) {
        self.disk_cache_evictions.inc_by(evicted);
        self.disk_cache_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}
