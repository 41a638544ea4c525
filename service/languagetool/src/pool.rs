//! Several LanguageTool instances behind one bounded, health-checked pool.
//!
//! A check goes to the healthy instance with the fewest checks in flight (ties rotate), under a
//! global in-flight bound and a per-request timeout. A transport failure takes the instance out
//! and retries once on another; a 503 (LanguageTool's queue is full) is retried with backoff.
//! One prober task re-probes instances that left, with doubling backoff, and re-checks healthy
//! ones now and then, so `/readyz` tells the truth without traffic.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Notify, Semaphore, watch};

use super::options::CheckOptions;
use super::response::Received;
use super::upstream::{Upstream, UpstreamError, redact};
use crate::metrics::Metrics;

/// The text a probe checks.
pub const PROBE_TEXT: &str = "Hemma probe: this sentence is fine.";

/// How the pool treats its instances.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Longest wait for one upstream answer (and for a free in-flight slot).
    pub timeout: Duration,
    /// Checks in flight across all instances at most.
    pub max_in_flight: usize,
    /// How often a healthy instance is re-probed.
    pub probe_interval: Duration,
    /// First wait before re-probing an instance that failed; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest wait between probes of a failed instance.
    pub max_backoff: Duration,
    /// Retries after a 503 before giving up.
    pub busy_retries: u32,
    /// Wait before the first 503 retry; doubles each time.
    pub busy_backoff: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            timeout: Duration::from_secs(60),
            max_in_flight: 8,
            probe_interval: Duration::from_secs(5),
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            busy_retries: 3,
            busy_backoff: Duration::from_millis(200),
        }
    }
}

/// Why a pooled check failed; each names the upstream and what happened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PoolError {
    /// No healthy instance could answer.
    #[error("LanguageTool is unavailable: {detail}")]
    Unavailable {
        /// Per-upstream reasons.
        detail: String,
    },
    /// Every try got 503 (LanguageTool's work queue is full).
    #[error("LanguageTool at {url} is overloaded (HTTP 503 after {tries} tries): {body}")]
    Busy {
        /// The last upstream tried.
        url: String,
        /// Tries made.
        tries: u32,
        /// Its last answer.
        body: String,
    },
    /// No answer within the timeout.
    #[error("LanguageTool at {url} did not answer within {after:?}")]
    Timeout {
        /// The upstream.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// No in-flight slot came free within the timeout.
    #[error(
        "{max_in_flight} LanguageTool checks were in flight for {after:?}: the pool is saturated"
    )]
    Saturated {
        /// The bound.
        max_in_flight: usize,
        /// How long the check waited.
        after: Duration,
    },
    /// The text is over the upstream's length limit (413).
    #[error("the text is too long for LanguageTool at {url}: {body}")]
    TooLong {
        /// The upstream.
        url: String,
        /// The limit in UTF-16 units, when the answer states it.
        limit: Option<usize>,
        /// Its answer.
        body: String,
    },
    /// The upstream refused the request (400, 403, 404).
    #[error("LanguageTool at {url} rejected the request (HTTP {status}): {body}")]
    Rejected {
        /// The upstream.
        url: String,
        /// HTTP status.
        status: u16,
        /// Its answer.
        body: String,
    },
    /// The upstream failed while checking (500 and other 5xx).
    #[error("LanguageTool at {url} failed (HTTP {status}): {body}")]
    Failed {
        /// The upstream.
        url: String,
        /// HTTP status.
        status: u16,
        /// Its answer.
        body: String,
    },
    /// The answer was not a check result, or its offsets do not fit the text.
    #[error("{0}")]
    Malformed(String),
}

/// What `/readyz` shows of one instance.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamStatus {
    /// Base URL, credentials and query values redacted.
    pub url: String,
    /// In the pool.
    pub healthy: bool,
    /// Checks in flight now.
    pub in_flight: usize,
    /// Why it left the pool, if it did.
    pub last_error: Option<String>,
    /// Its text limit in UTF-16 units, if it has one.
    pub max_text_length: Option<usize>,
}

/// What `/readyz` shows of the pool.
#[derive(Debug, Clone, Serialize)]
pub struct PoolStatus {
    /// Ready: a version is known and at least one instance is healthy.
    pub ready: bool,
    /// LanguageTool version (from the first successful probe).
    pub version: Option<String>,
    /// The instances.
    pub upstreams: Vec<UpstreamStatus>,
}

#[derive(Debug)]
struct Health {
    healthy: bool,
    probed: bool,
    last_error: Option<String>,
    next_probe: Instant,
    backoff: Duration,
    max_text_length: Option<usize>,
}

#[derive(Debug)]
struct Instance {
    upstream: Box<dyn Upstream>,
    /// The upstream's URL as every log line, metric, error and status shows it (redacted once).
    name: String,
    in_flight: AtomicUsize,
    health: Mutex<Health>,
}

impl Instance {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        // A panic while holding this short lock leaves plain data behind; keep using it.
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Decrements an instance's in-flight count when a check ends, however it ends.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The pool. Create with [`Pool::start`].
#[derive(Debug)]
pub struct Pool {
    instances: Vec<Instance>,
    permits: Semaphore,
    config: PoolConfig,
    probe_options: CheckOptions,
    version: OnceLock<String>,
    fatal: OnceLock<String>,
    next: AtomicUsize,
    changed: watch::Sender<()>,
    wake_prober: Arc<Notify>,
    metrics: Metrics,
}

impl Pool {
    /// Builds the pool and starts its prober task (it ends when the pool is dropped).
    ///
    /// Every instance starts out of the pool until its first probe succeeds.
    pub fn start(
        upstreams: Vec<Box<dyn Upstream>>,
        config: PoolConfig,
        probe_options: CheckOptions,
        metrics: Metrics,
    ) -> Arc<Pool> {
        let now = Instant::now();
        let instances = upstreams
            .into_iter()
            .map(|upstream| Instance {
                name: redact(upstream.url()),
                upstream,
                in_flight: AtomicUsize::new(0),
                health: Mutex::new(Health {
                    healthy: false,
                    probed: false,
                    last_error: Some("not probed yet".into()),
                    next_probe: now,
                    backoff: config.min_backoff,
                    max_text_length: None,
                }),
            })
            .collect();
        let pool = Arc::new(Pool {
            instances,
            permits: Semaphore::new(config.max_in_flight),
            config,
            probe_options,
            version: OnceLock::new(),
            fatal: OnceLock::new(),
            next: AtomicUsize::new(0),
            changed: watch::channel(()).0,
            wake_prober: Arc::new(Notify::new()),
            metrics,
        });
        tokio::spawn(prober(Arc::downgrade(&pool), pool.wake_prober.clone()));
        pool
    }

    /// The LanguageTool version, once a probe succeeded.
    pub fn version(&self) -> Option<&str> {
        self.version.get().map(String::as_str)
    }

    /// Waits until a probe succeeded (returns the version) or one showed a configuration error.
    pub async fn wait_ready(&self) -> Result<String, String> {
        let mut rx = self.changed.subscribe();
        loop {
            if let Some(fatal) = self.fatal.get() {
                return Err(fatal.clone());
            }
            if let (Some(v), true) = (self.version.get(), self.any_healthy()) {
                return Ok(v.clone());
            }
            if rx.changed().await.is_err() {
                return Err("the LanguageTool pool stopped".into());
            }
        }
    }

    fn any_healthy(&self) -> bool {
        self.instances.iter().any(|i| i.health().healthy)
    }

    /// The smallest text limit among healthy instances, in UTF-16 units.
    pub fn max_text_length(&self) -> Option<usize> {
        self.instances
            .iter()
            .filter_map(|i| {
                let h = i.health();
                if h.healthy { h.max_text_length } else { None }
            })
            .min()
    }

    /// A snapshot for `/readyz`.
    pub fn status(&self) -> PoolStatus {
        let upstreams: Vec<UpstreamStatus> = self
            .instances
            .iter()
            .map(|i| {
                let h = i.health();
                UpstreamStatus {
                    url: i.name.clone(),
                    healthy: h.healthy,
                    in_flight: i.in_flight.load(Ordering::Relaxed),
                    last_error: h.last_error.clone(),
                    max_text_length: h.max_text_length,
                }
            })
            .collect();
        let version = self.version.get().cloned();
        PoolStatus {
            ready: version.is_some() && upstreams.iter().any(|u| u.healthy),
            version,
            upstreams,
        }
    }

    /// The healthy instance with the fewest checks in flight, skipping `exclude`.
    fn pick(&self, exclude: &[usize]) -> Option<usize> {
        let n = self.instances.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|k| (start + k) % n)
            .filter(|i| !exclude.contains(i) && self.instances[*i].health().healthy)
            .min_by_key(|i| self.instances[*i].in_flight.load(Ordering::Relaxed))
    }

    fn unavailable(&self) -> PoolError {
        let detail = self
            .instances
            .iter()
            .map(|i| {
                let why = i.health().last_error.clone();
                format!("{}: {}", i.name, why.unwrap_or_else(|| "busy".into()))
            })
            .collect::<Vec<_>>()
            .join("; ");
        PoolError::Unavailable { detail }
    }

    fn mark_down(&self, index: usize, why: String) {
        let instance = &self.instances[index];
        {
            let mut h = instance.health();
            if h.healthy {
                h.backoff = self.config.min_backoff;
            }
            h.healthy = false;
            h.next_probe = Instant::now() + h.backoff;
            h.last_error = Some(why);
        }
        self.metrics.set_upstream_healthy(&instance.name, false);
        self.changed.send_replace(());
        self.wake_prober.notify_one();
    }

    /// Checks one text on the pool.
    pub async fn check(&self, text: &str, options: &CheckOptions) -> Result<Received, PoolError> {
        let timeout = self.config.timeout;
        let _permit = match tokio::time::timeout(timeout, self.permits.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(self.unavailable()),
            Err(_) => {
                return Err(PoolError::Saturated {
                    max_in_flight: self.config.max_in_flight,
                    after: timeout,
                });
            }
        };
        let _gauge = self.metrics.languagetool_in_flight_guard();
        let mut failed_over: Vec<usize> = Vec::new();
        let mut busy_tries = 0u32;
        loop {
            let Some(index) = self.pick(&failed_over) else {
                return Err(self.unavailable());
            };
            let instance = &self.instances[index];
            let url = instance.name.as_str();
            instance.in_flight.fetch_add(1, Ordering::Relaxed);
            let guard = InFlight(&instance.in_flight);
            let start = Instant::now();
            let answer =
                tokio::time::timeout(timeout, instance.upstream.check(text, options)).await;
            drop(guard);
            let seconds = start.elapsed().as_secs_f64();
            let answer = match answer {
                Ok(a) => a,
                Err(_) => {
                    self.metrics.record_upstream(url, "timeout", seconds);
                    return Err(PoolError::Timeout {
                        url: url.to_owned(),
                        after: timeout,
                    });
                }
            };
            match answer {
                Ok(received) => {
                    self.metrics.record_upstream(url, "ok", seconds);
                    if let Some(expected) = self.version.get()
                        && *expected != received.version
                    {
                        let why = format!(
                            "now reports LanguageTool {} but the server started with {expected}: restart hemma-offload so the fingerprint follows",
                            received.version
                        );
                        self.mark_down(index, why.clone());
                        return Err(PoolError::Unavailable {
                            detail: format!("{url}: {why}"),
                        });
                    }
                    return Ok(received);
                }
                Err(UpstreamError::Transport { reason, .. }) => {
                    self.metrics.record_upstream(url, "transport", seconds);
                    tracing::warn!(upstream = url, %reason, "LanguageTool instance left the pool");
                    self.mark_down(index, reason);
                    if failed_over.is_empty() {
                        failed_over.push(index);
                        continue;
                    }
                    return Err(self.unavailable());
                }
                Err(UpstreamError::Status {
                    status: 503, body, ..
                }) => {
                    self.metrics.record_upstream(url, "busy", seconds);
                    busy_tries += 1;
                    if busy_tries > self.config.busy_retries {
                        return Err(PoolError::Busy {
                            url: url.to_owned(),
                            tries: busy_tries,
                            body,
                        });
                    }
                    let wait = self.config.busy_backoff * 2u32.saturating_pow(busy_tries - 1);
                    tokio::time::sleep(wait).await;
                }
                Err(UpstreamError::Status {
                    status: 413, body, ..
                }) => {
                    self.metrics.record_upstream(url, "too_long", seconds);
                    return Err(PoolError::TooLong {
                        url: url.to_owned(),
                        limit: stated_limit(&body),
                        body,
                    });
                }
                Err(UpstreamError::Status { status, body, .. }) if status < 500 => {
                    self.metrics.record_upstream(url, "rejected", seconds);
                    return Err(PoolError::Rejected {
                        url: url.to_owned(),
                        status,
                        body,
                    });
                }
                Err(UpstreamError::Status { status, body, .. }) => {
                    self.metrics.record_upstream(url, "failed", seconds);
                    return Err(PoolError::Failed {
                        url: url.to_owned(),
                        status,
                        body,
                    });
                }
                Err(e @ UpstreamError::Malformed { .. }) => {
                    self.metrics.record_upstream(url, "malformed", seconds);
                    return Err(PoolError::Malformed(e.naming(url).to_string()));
                }
            }
        }
    }

    /// Probes one instance: a small check (health and version) and its text limit.
    async fn probe(&self, index: usize) {
        let instance = &self.instances[index];
        let url = instance.name.as_str();
        let timeout = self.config.timeout;
        let checked = tokio::time::timeout(
            timeout,
            instance.upstream.check(PROBE_TEXT, &self.probe_options),
        )
        .await;
        let outcome = match checked {
            Err(_) => Err(format!("probe got no answer within {timeout:?}")),
            Ok(Err(UpstreamError::Status {
                status: 400, body, ..
            })) => {
                // The configured language or options are wrong: waiting will not help.
                let why = format!("{url} rejected the configured options: {body}");
                let _ = self.fatal.set(why.clone());
                Err(why)
            }
            Ok(Err(e)) => Err(e.naming(url).to_string()),
            Ok(Ok(received)) => {
                let version = self.version.get_or_init(|| received.version.clone());
                if *version != received.version {
                    Err(format!(
                        "reports LanguageTool {} but the pool runs {version}: every instance must run the same version",
                        received.version
                    ))
                } else {
                    let limit = tokio::time::timeout(timeout, instance.upstream.max_text_length())
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .flatten();
                    Ok(limit)
                }
            }
        };
        let now = Instant::now();
        let healthy = outcome.is_ok();
        {
            let mut h = instance.health();
            let was = (h.healthy, h.probed);
            h.probed = true;
            match outcome {
                Ok(limit) => {
                    h.healthy = true;
                    h.last_error = None;
                    h.max_text_length = limit;
                    h.backoff = self.config.min_backoff;
                    h.next_probe = now + self.config.probe_interval;
                    if was != (true, true) {
                        tracing::info!(
                            upstream = url,
                            version = self.version(),
                            "LanguageTool instance joined the pool"
                        );
                    }
                }
                Err(why) => {
                    if was.0 || !was.1 {
                        tracing::warn!(upstream = url, %why, "LanguageTool probe failed");
                    }
                    h.healthy = false;
                    h.last_error = Some(why);
                    h.next_probe = now + h.backoff;
                    h.backoff = (h.backoff * 2).min(self.config.max_backoff);
                }
            }
        }
        self.metrics.set_upstream_healthy(url, healthy);
        self.changed.send_replace(());
    }
}

/// The limit stated in a 413 body: "... exceeds the limit of 20000 characters ..." or
/// "... hard limit of 20000 characters".
fn stated_limit(body: &str) -> Option<usize> {
    let rest = &body[body.find("limit of ")? + "limit of ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Probes instances whose time has come, until the pool is dropped.
async fn prober(pool: Weak<Pool>, wake: Arc<Notify>) {
    loop {
        let Some(p) = pool.upgrade() else { return };
        let now = Instant::now();
        let due: Vec<usize> = (0..p.instances.len())
            .filter(|&i| p.instances[i].health().next_probe <= now)
            .collect();
        futures::future::join_all(due.into_iter().map(|i| p.probe(i))).await;
        let next = p
            .instances
            .iter()
            .map(|i| i.health().next_probe)
            .min()
            .unwrap_or(now + p.config.probe_interval);
        drop(p);
        let until = next.max(Instant::now() + Duration::from_millis(20));
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::ReceivedMatch;

    /// An in-crate upstream whose answers the test scripts.
    #[derive(Debug)]
    struct Scripted {
        url: String,
        version: Mutex<String>,
        failure: Mutex<Option<UpstreamError>>,
        checks: AtomicUsize,
    }

    impl Scripted {
        fn new(url: &str) -> Arc<Scripted> {
            Arc::new(Scripted {
                url: url.into(),
                version: Mutex::new("6.7".into()),
                failure: Mutex::new(None),
                checks: AtomicUsize::new(0),
            })
        }
        fn fail_with(&self, e: Option<UpstreamError>) {
            *self.failure.lock().unwrap() = e;
        }
    }

    /// Lets the pool own a `Box<dyn Upstream>` while the test keeps a handle.
    #[derive(Debug)]
    struct Shared(Arc<Scripted>);

    #[async_trait::async_trait]
    impl Upstream for Shared {
        fn url(&self) -> &str {
            &self.0.url
        }
        async fn check(&self, text: &str, _: &CheckOptions) -> Result<Received, UpstreamError> {
            if text != PROBE_TEXT {
                self.0.checks.fetch_add(1, Ordering::Relaxed);
            }
            // Stay in flight across a scheduling point, as a network call would.
            tokio::task::yield_now().await;
            if let Some(e) = self.0.failure.lock().unwrap().clone() {
                return Err(e);
            }
            Ok(Received {
                version: self.0.version.lock().unwrap().clone(),
                matches: vec![ReceivedMatch {
                    offset_utf16: 0,
                    length_utf16: 1,
                    message: String::new(),
                    short_message: String::new(),
                    rule_id: self.0.url.clone(),
                    rule_sub_id: String::new(),
                    rule_description: String::new(),
                    category_id: "TYPOS".into(),
                    category_name: String::new(),
                    issue_type: String::new(),
                    replacements: Vec::new(),
                }],
            })
        }
        async fn max_text_length(&self) -> Result<Option<usize>, UpstreamError> {
            Ok(None)
        }
    }

    async fn pool_of(upstreams: &[Arc<Scripted>]) -> Arc<Pool> {
        pool_with(upstreams, Metrics::default()).await
    }

    async fn pool_with(upstreams: &[Arc<Scripted>], metrics: Metrics) -> Arc<Pool> {
        let boxed = upstreams
            .iter()
            .map(|u| Box::new(Shared(u.clone())) as Box<dyn Upstream>)
            .collect();
        let config = PoolConfig {
            probe_interval: Duration::from_secs(60),
            busy_backoff: Duration::from_millis(1),
            ..PoolConfig::default()
        };
        let pool = Pool::start(boxed, config, CheckOptions::default(), metrics);
        // Both probed in: wait until every instance is healthy.
        while pool.status().upstreams.iter().any(|u| !u.healthy) {
            pool.wait_ready().await.unwrap();
            tokio::task::yield_now().await;
        }
        pool
    }

    fn transport(url: &str) -> UpstreamError {
        UpstreamError::Transport {
            url: url.into(),
            reason: "connection refused".into(),
        }
    }

    #[tokio::test]
    async fn a_transport_failure_retries_once_elsewhere_and_takes_the_instance_out() {
        let (a, b) = (Scripted::new("http://a"), Scripted::new("http://b"));
        let pool = pool_of(&[a.clone(), b.clone()]).await;
        a.fail_with(Some(transport("http://a")));
        // Rotation starts one of two checks on `a`: both must still succeed, on `b`.
        for _ in 0..2 {
            let r = pool.check("text", &CheckOptions::default()).await.unwrap();
            assert_eq!(r.matches[0].rule_id, "http://b");
        }
        let status = pool.status();
        assert!(!status.upstreams[0].healthy);
        assert_eq!(
            status.upstreams[0].last_error.as_deref(),
            Some("connection refused")
        );
        assert!(status.ready, "b still serves");
        assert_eq!(a.checks.load(Ordering::Relaxed), 1, "a is not asked again");
    }

    #[tokio::test]
    async fn no_healthy_instance_is_unavailable_naming_each() {
        let (a, b) = (Scripted::new("http://a"), Scripted::new("http://b"));
        let pool = pool_of(&[a.clone(), b.clone()]).await;
        a.fail_with(Some(transport("http://a")));
        b.fail_with(Some(transport("http://b")));
        let err = pool
            .check("text", &CheckOptions::default())
            .await
            .unwrap_err();
        let PoolError::Unavailable { detail } = err else {
            panic!("{err}")
        };
        assert!(detail.contains("http://a: connection refused"), "{detail}");
        assert!(detail.contains("http://b: connection refused"), "{detail}");
    }

    #[tokio::test]
    async fn busy_is_retried_then_resource_exhausted() {
        let a = Scripted::new("http://a");
        let pool = pool_of(std::slice::from_ref(&a)).await;
        a.fail_with(Some(UpstreamError::Status {
            url: "http://a".into(),
            status: 503,
            body: "Error: too many".into(),
        }));
        let err = pool
            .check("text", &CheckOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, PoolError::Busy { tries: 4, .. }), "{err}");
        assert_eq!(a.checks.load(Ordering::Relaxed), 4);
    }

    #[tokio::test]
    async fn a_changed_version_leaves_the_pool() {
        let a = Scripted::new("http://a");
        let pool = pool_of(std::slice::from_ref(&a)).await;
        *a.version.lock().unwrap() = "6.8".into();
        let err = pool
            .check("text", &CheckOptions::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("restart hemma-offload"), "{err}");
        assert!(!pool.status().ready);
        assert_eq!(pool.version(), Some("6.7"));
    }

    #[tokio::test]
    async fn least_in_flight_spreads_concurrent_checks() {
        let (a, b) = (Scripted::new("http://a"), Scripted::new("http://b"));
        let pool = pool_of(&[a.clone(), b.clone()]).await;
        let options = CheckOptions::default();
        let checks = (0..10).map(|_| pool.check("text", &options));
        futures::future::try_join_all(checks).await.unwrap();
        let (na, nb) = (
            a.checks.load(Ordering::Relaxed),
            b.checks.load(Ordering::Relaxed),
        );
        assert_eq!(na + nb, 10);
        assert!(na >= 4 && nb >= 4, "{na} / {nb}");
    }

    #[test]
    fn limit_is_read_from_413_bodies() {
        assert_eq!(
            stated_limit(
                "Error: Your text exceeds the limit of 20000 characters (it's 25000 characters). Please submit a shorter text."
            ),
            Some(20000)
        );
        assert_eq!(
            stated_limit(
                "Error: Your text's length exceeds this server's hard limit of 5000 characters."
            ),
            Some(5000)
        );
        assert_eq!(stated_limit("Error: too long"), None);
    }

    #[tokio::test]
    async fn an_upstream_with_credentials_is_shown_redacted_in_errors_status_and_metrics() {
        // The scripted upstream hands the pool its raw URL and names it in its errors too.
        const URL: &str = "http://user:secret@a:8081/?token=t0k3n";
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Metrics::register(&mut registry);
        let a = Scripted::new(URL);
        let pool = pool_with(std::slice::from_ref(&a), metrics).await;
        let options = CheckOptions::default();
        let mut shown = Vec::new();
        a.fail_with(Some(UpstreamError::Malformed {
            url: URL.into(),
            reason: "not JSON".into(),
        }));
        shown.push(pool.check("text", &options).await.unwrap_err().to_string());
        a.fail_with(Some(UpstreamError::Status {
            url: URL.into(),
            status: 503,
            body: "Error: too many".into(),
        }));
        shown.push(pool.check("text", &options).await.unwrap_err().to_string());
        a.fail_with(Some(transport(URL)));
        let err = pool.check("text", &options).await.unwrap_err();
        assert!(matches!(err, PoolError::Unavailable { .. }), "{err}");
        shown.push(err.to_string());
        shown.push(serde_json::to_string(&pool.status()).unwrap());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("upstream_healthy{upstream="), "{text}");
        shown.push(text);
        for s in &shown {
            assert!(!s.contains("secret") && !s.contains("t0k3n"), "{s}");
            assert!(s.contains("http://***@a:8081"), "{s}");
        }
    }
}
