//! Start-up of the pool from its settings: one upstream per URL in the configured flavour, the
//! pool (its prober starts at once), the cache and the checker over them.

use crate::cache::Cache;
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
    let cache = Cache::new(lt.cache_bytes, lt.cache_dir.clone(), metrics);
    Grammar::new(pool, cache, lt.options.clone())
}
