//! Start-up of the pool from its settings: one upstream per URL in the configured flavour, the
//! pool (its prober starts at once), the cache (its disk sweep starts at once) and the checker
//! over them.

use crate::cache::{Cache, DiskConfig};
use crate::checker::Grammar;
use crate::metrics::Metrics;
use crate::pool::Pool;
use crate::settings::{Flavour, LanguageToolConfig};
use crate::upstream::{self, Upstream};

/// Builds the LanguageTool pool (its prober starts probing at once) and the proxy over it.
pub fn start(lt: &LanguageToolConfig, metrics: Metrics) -> Grammar {
    let http = upstream::http_client(std::time::Duration::from_secs(5));
    let upstreams: Vec<Box<dyn Upstream>> = lt
        .urls
        .iter()
        .map(|url| -> Box<dyn Upstream> {
            match lt.flavour {
                Flavour::Languagetool => Box::new(upstream::languagetool::LanguageToolV2::new(
                    url,
                    http.clone(),
                )),
                Flavour::Wrapper => Box::new(upstream::wrapper::HemmaWrapper::new(
                    url,
                    http.clone(),
                    lt.version.as_deref().unwrap_or_default(),
                )),
            }
        })
        .collect();
    let pool = Pool::start(
        upstreams,
        lt.pool.clone(),
        lt.options.clone(),
        metrics.clone(),
    );
    let disk = lt.cache_dir.clone().map(|dir| DiskConfig {
        dir,
        max_bytes: lt.disk_cache_max_bytes,
    });
    let cache = Cache::new(lt.cache_bytes, disk, metrics);
    Grammar::new(pool, cache, lt.options.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::DEFAULT_DISK_CACHE_MAX_BYTES;

    #[tokio::test]
    async fn a_pool_started_with_credentials_shows_none_in_status_metrics_or_config() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let lt = LanguageToolConfig {
            urls: vec![format!("http://user:secret@127.0.0.1:{port}/?token=t0k3n")],
            flavour: Flavour::Languagetool,
            version: None,
            options: crate::CheckOptions::default(),
            pool: crate::pool::PoolConfig::default(),
            cache_bytes: 0,
            cache_dir: None,
            disk_cache_max_bytes: DEFAULT_DISK_CACHE_MAX_BYTES,
        };
        let mut registry = prometheus_client::registry::Registry::default();
        let grammar = start(&lt, Metrics::register(&mut registry));
        // The first probe fails (nothing listens); its reason is what `/readyz` shows.
        while grammar.status().upstreams[0].last_error.as_deref() == Some("not probed yet") {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let status = grammar.status();
        let reason = status.upstreams[0].last_error.clone().unwrap_or_default();
        assert!(reason.contains("cannot reach"), "{reason}");
        let mut metrics = String::new();
        prometheus_client::encoding::text::encode(&mut metrics, &registry).unwrap();
        let shown = [
            serde_json::to_string(&status).unwrap(),
            metrics,
            format!("{grammar:?}"),
            format!("{lt:?}"),
            serde_json::to_string(&lt).unwrap(),
        ];
        for s in shown {
            assert!(!s.contains("secret") && !s.contains("t0k3n"), "{s}");
            assert!(s.contains("http://***@127.0.0.1"), "{s}");
        }
    }
}
