//! Content-addressed cache of check results: in memory under a byte budget (least recently used
//! out first), and optionally on disk so a restarted server keeps its results.
//!
//! Keys are sha256 over the text, the options and the LanguageTool version (see
//! [`cache_key`]), so a changed upstream version, option or classification never serves an old
//! answer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::CheckResult;
use super::options::CheckOptions;
use crate::metrics::Metrics;

/// A cache key: sha256 of the canonical JSON of what determines a result.
pub type Key = [u8; 32];

#[derive(Serialize)]
struct KeyInputs<'a> {
    text: &'a str,
    options: &'a CheckOptions,
    languagetool_version: &'a str,
    classification: u32,
}

/// The key of `text` checked with `options` by LanguageTool `version`.
pub fn cache_key(text: &str, options: &CheckOptions, version: &str) -> Key {
    let inputs = KeyInputs {
        text,
        options,
        languagetool_version: version,
        classification: crate::categorise::CLASSIFICATION_VERSION,
    };
    let json = serde_json::to_vec(&inputs).expect("cache key inputs are plain data");
    Sha256::digest(&json).into()
}

struct Entry {
    result: Arc<CheckResult>,
    bytes: usize,
}

struct Memory {
    lru: LruCache<Key, Entry>,
    bytes: usize,
}

/// The cache. Cheap to share behind an `Arc`.
pub struct Cache {
    memory: Mutex<Memory>,
    budget: usize,
    dir: Option<PathBuf>,
    metrics: Metrics,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("budget", &self.budget)
            .field("dir", &self.dir)
            .finish()
    }
}

/// Where a hit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The in-memory LRU.
    Memory,
    /// The disk folder.
    Disk,
}

impl Tier {
    fn name(self) -> &'static str {
        match self {
            Tier::Memory => "memory",
            Tier::Disk => "disk",
        }
    }
}

impl Cache {
    /// A cache holding at most `budget` bytes of results in memory (0 disables the memory
    /// tier) and, when `dir` is given, every result on disk.
    pub fn new(budget: usize, dir: Option<PathBuf>, metrics: Metrics) -> Cache {
        Cache {
            memory: Mutex::new(Memory {
                // Unbounded by count: the byte budget bounds it.
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            budget,
            dir,
            metrics,
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, key: &Key) -> Option<PathBuf> {
        let hex = hex::encode(key);
        self.dir
            .as_ref()
            .map(|d| d.join(&hex[..2]).join(format!("{hex}.json")))
    }

    /// Looks `key` up in memory, then on disk; counts the hit or miss.
    pub async fn get(&self, key: &Key) -> Option<(Arc<CheckResult>, Tier)> {
        let found = self.memory().lru.get(key).map(|e| e.result.clone());
        if let Some(result) = found {
            self.metrics.record_cache_hit(Tier::Memory.name());
            return Some((result, Tier::Memory));
        }
        if let Some(path) = self.path(key)
            && let Ok(bytes) = tokio::fs::read(&path).await
        {
            match serde_json::from_slice::<CheckResult>(&bytes) {
                Ok(result) => {
                    let result = Arc::new(result);
                    self.remember(*key, result.clone(), bytes.len());
                    self.metrics.record_cache_hit(Tier::Disk.name());
                    return Some((result, Tier::Disk));
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable cache file")
                }
            }
        }
        self.metrics.record_cache_miss();
        None
    }

    /// Stores a result in memory and, if configured, on disk (a failed disk write is logged).
    pub async fn put(&self, key: Key, result: Arc<CheckResult>) {
        let json = serde_json::to_vec(&*result).expect("check results serialize");
        self.remember(key, result, json.len());
        if let Some(path) = self.path(&key)
            && let Err(e) = write_atomically(&path, &json).await
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the LanguageTool disk cache");
        }
    }

    fn remember(&self, key: Key, result: Arc<CheckResult>, bytes: usize) {
        if bytes > self.budget {
            return;
        }
        let mut evicted = 0u64;
        let total = {
            let mut m = self.memory();
            if let Some(old) = m.lru.put(key, Entry { result, bytes }) {
                m.bytes -= old.bytes;
            }
            m.bytes += bytes;
            while m.bytes > self.budget {
                match m.lru.pop_lru() {
                    Some((_, e)) => {
                        m.bytes -= e.bytes;
                        evicted += 1;
                    }
                    None => break,
                }
            }
            m.bytes
        };
        self.metrics.record_cache_store(evicted, total);
    }

    /// Results held in memory.
    pub fn len(&self) -> usize {
        self.memory().lru.len()
    }

    /// Whether memory holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

async fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::categorise::Counts;

    fn result(n: usize) -> Arc<CheckResult> {
        Arc::new(CheckResult {
            languagetool_version: "6.7".into(),
            matches: Vec::new(),
            counts: Counts {
                grammar: n as u32,
                ..Counts::default()
            },
        })
    }

    fn key(i: u8) -> Key {
        [i; 32]
    }

    #[tokio::test]
    async fn key_depends_on_text_options_and_version() {
        let o = CheckOptions::default();
        let k = cache_key("a", &o, "6.7");
        assert_eq!(k, cache_key("a", &o, "6.7"));
        assert_ne!(k, cache_key("b", &o, "6.7"));
        assert_ne!(k, cache_key("a", &o, "6.6"));
        let picky = CheckOptions {
            level: "picky".into(),
            ..CheckOptions::default()
        };
        assert_ne!(k, cache_key("a", &picky, "6.7"));
    }

    #[tokio::test]
    async fn byte_budget_evicts_least_recently_used() {
        let one = serde_json::to_vec(&*result(1)).unwrap().len();
        let cache = Cache::new(2 * one, None, Metrics::default());
        cache.put(key(1), result(1)).await;
        cache.put(key(2), result(2)).await;
        assert!(cache.get(&key(1)).await.is_some()); // 1 is now the most recent
        cache.put(key(3), result(3)).await;
        assert_eq!(cache.len(), 2);
        assert!(
            cache.get(&key(2)).await.is_none(),
            "2 was least recently used"
        );
        assert!(cache.get(&key(1)).await.is_some());
        assert!(cache.get(&key(3)).await.is_some());
    }

    #[tokio::test]
    async fn disk_tier_survives_a_new_cache() {
        let dir = tempfile::tempdir().unwrap();
        let first = Cache::new(1 << 20, Some(dir.path().into()), Metrics::default());
        first.put(key(7), result(7)).await;
        let second = Cache::new(1 << 20, Some(dir.path().into()), Metrics::default());
        let (hit, tier) = second.get(&key(7)).await.unwrap();
        assert_eq!(tier, Tier::Disk);
        assert_eq!(hit.counts.grammar, 7);
        assert_eq!(second.get(&key(7)).await.unwrap().1, Tier::Memory);
    }

    #[tokio::test]
    async fn zero_budget_keeps_nothing_in_memory() {
        let cache = Cache::new(0, None, Metrics::default());
        cache.put(key(1), result(1)).await;
        assert!(cache.is_empty());
        assert!(cache.get(&key(1)).await.is_none());
    }
}
