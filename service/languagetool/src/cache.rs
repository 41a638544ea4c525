//! Content-addressed cache of check results: in memory under a byte budget (least recently used
//! out first), and optionally on disk so a restarted server keeps its results.
//!
//! Keys are sha256 over the text, the options and the LanguageTool version (see
//! [`cache_key`]), so a changed upstream version, option or classification never serves an old
//! answer.
//!
//! The disk tier is one file per result (`<dir>/<first two hex digits>/<key hex>.json`, written
//! through a temporary file and renamed). Its size is capped: the cache keeps a running total
//! of the bytes it writes, and only when that passes the cap does a sweep on the blocking pool
//! list the folder, count what is really there and remove the least recently used files (by
//! modification time; a disk hit renews it) until 90 % of the cap is left. A sweep also runs at
//! start-up, and removes temporary files older than [`STALE_TEMP_AGE`] that a crash left behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use lru::LruCache;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::CheckResult;
use super::options::CheckOptions;
use crate::metrics::Metrics;

/// A cache key: sha256 of the canonical JSON of what determines a result.
pub type Key = [u8; 32];

/// Temporary files in the disk folder older than this are left over from a crash and removed.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

#[derive(Serialize)]
struct KeyInputs<'a> {
    text: &'a str,
    options: &'a CheckOptions,
    languagetool_version: &'a str,
    classification: u32,
    /// Longer texts are checked in parts of at most this many UTF-16 units.
    max_part_utf16: usize,
}

/// The key of `text` checked with `options` by LanguageTool `version`.
pub fn cache_key(text: &str, options: &CheckOptions, version: &str) -> Key {
    let inputs = KeyInputs {
        text,
        options,
        languagetool_version: version,
        classification: crate::categorise::CLASSIFICATION_VERSION,
        max_part_utf16: crate::checker::MAX_PART_UTF16,
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

/// The disk tier's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    /// The folder (created on the first write).
    pub dir: PathBuf,
    /// Bytes of results kept at most; past it the least recently used files go first.
    pub max_bytes: u64,
}

/// The cache. Cheap to share behind an `Arc`.
pub struct Cache {
    memory: Mutex<Memory>,
    budget: usize,
    disk: Option<Arc<Disk>>,
    metrics: Metrics,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("budget", &self.budget)
            .field("disk", &self.disk.as_ref().map(|d| &d.config))
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
    /// tier) and, when `disk` is given, up to its cap on disk.
    ///
    /// With a disk tier it starts a sweep of the folder at once (on tokio's blocking pool when
    /// called inside a runtime, else before returning): see [`Cache::disk_settled`].
    pub fn new(budget: usize, disk: Option<DiskConfig>, metrics: Metrics) -> Cache {
        let disk = disk.map(|config| {
            let disk = Arc::new(Disk {
                config,
                state: Mutex::new(DiskState::default()),
                sweeping: watch::channel(false).0,
                metrics: metrics.clone(),
            });
            disk.begin_sweep(&mut disk.state());
            disk.spawn_sweep();
            disk
        });
        Cache {
            memory: Mutex::new(Memory {
                // Unbounded by count: the byte budget bounds it.
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            budget,
            disk,
            metrics,
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Looks `key` up in memory, then on disk; counts the hit or miss.
    pub async fn get(&self, key: &Key) -> Option<(Arc<CheckResult>, Tier)> {
        let found = self.memory().lru.get(key).map(|e| e.result.clone());
        if let Some(result) = found {
            self.metrics.record_cache_hit(Tier::Memory.name());
            return Some((result, Tier::Memory));
        }
        if let Some(disk) = &self.disk {
            let path = disk.path(key);
            let read = {
                let path = path.clone();
                tokio::task::spawn_blocking(move || read_and_touch(&path)).await
            };
            if let Ok(Ok(bytes)) = read {
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
        }
        self.metrics.record_cache_miss();
        None
    }

    /// Stores a result in memory and, if configured, on disk (a failed disk write is logged).
    pub async fn put(&self, key: Key, result: Arc<CheckResult>) {
        let json = serde_json::to_vec(&*result).expect("check results serialize");
        self.remember(key, result, json.len());
        if let Some(disk) = &self.disk {
            let path = disk.path(&key);
            match write_atomically(&path, &json).await {
                Ok(()) => disk.wrote(json.len() as u64),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot write the LanguageTool disk cache")
                }
            }
        }
    }

    /// Waits until no sweep of the disk folder (the start-up one included) is running.
    pub async fn disk_settled(&self) {
        if let Some(disk) = &self.disk {
            let mut sweeping = disk.sweeping.subscribe();
            // The sender lives as long as `disk`: this cannot fail while it is borrowed.
            let _ = sweeping.wait_for(|sweeping| !*sweeping).await;
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

/// The disk tier: its folder, its running byte count and its sweeps.
struct Disk {
    config: DiskConfig,
    state: Mutex<DiskState>,
    /// `true` while a sweep runs (for [`Cache::disk_settled`]).
    sweeping: watch::Sender<bool>,
    metrics: Metrics,
}

#[derive(Debug, Default)]
struct DiskState {
    /// Bytes of results on disk as far as known: the last sweep's count plus writes since
    /// (an overwritten file counts twice until the next sweep, which only makes it earlier).
    bytes: u64,
    /// A sweep is running; at most one does.
    sweeping: bool,
    /// Bytes written while the sweep runs, added to its count when it ends.
    written_during_sweep: u64,
}

impl Disk {
    fn state(&self) -> std::sync::MutexGuard<'_, DiskState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, key: &Key) -> PathBuf {
        entry_path(&self.config.dir, key)
    }

    /// Counts `bytes` written; starts a sweep when the count passes the cap.
    fn wrote(self: &Arc<Self>, bytes: u64) {
        let start = {
            let mut s = self.state();
            if s.sweeping {
                s.written_during_sweep = s.written_during_sweep.saturating_add(bytes);
                false
            } else {
                s.bytes = s.bytes.saturating_add(bytes);
                self.metrics.record_disk_cache(0, s.bytes);
                let over = s.bytes > self.config.max_bytes;
                if over {
                    self.begin_sweep(&mut s);
                }
                over
            }
        };
        if start {
            self.spawn_sweep();
        }
    }

    fn begin_sweep(&self, s: &mut DiskState) {
        s.sweeping = true;
        self.sweeping.send_replace(true);
    }

    /// Runs the sweep begun by [`Disk::begin_sweep`] on the blocking pool (or here, outside a
    /// runtime).
    fn spawn_sweep(self: &Arc<Self>) {
        let disk = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || disk.sweep());
            }
            Err(_) => disk.sweep(),
        }
    }

    fn sweep(&self) {
        let dir = &self.config.dir;
        let (counted, evicted) = match sweep(dir, self.config.max_bytes, SystemTime::now()) {
            Ok(done) => {
                if done.evicted > 0 || done.stale_temps > 0 {
                    tracing::info!(
                        dir = %dir.display(),
                        evicted = done.evicted,
                        stale_temps = done.stale_temps,
                        files = done.files,
                        bytes = done.bytes,
                        max_bytes = self.config.max_bytes,
                        "swept the LanguageTool disk cache"
                    );
                }
                (done.bytes, done.evicted)
            }
            Err(e) => {
                // Count afresh: the next sweep comes after another cap's worth of writes.
                tracing::warn!(error = %e, "cannot sweep the LanguageTool disk cache");
                (0, 0)
            }
        };
        let mut s = self.state();
        s.bytes = counted.saturating_add(s.written_during_sweep);
        s.written_during_sweep = 0;
        s.sweeping = false;
        self.metrics.record_disk_cache(evicted, s.bytes);
        self.sweeping.send_replace(false);
    }
}

/// Why a sweep of the disk folder could not run.
#[derive(Debug, thiserror::Error)]
enum SweepError {
    /// The folder could not be listed.
    #[error("cannot list the LanguageTool disk cache folder {dir}: {source}")]
    List {
        /// The folder.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What one sweep found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Swept {
    /// Bytes of result files left.
    bytes: u64,
    /// Result files left.
    files: u64,
    /// Result files removed to get under the cap.
    evicted: u64,
    /// Stale temporary files removed.
    stale_temps: u64,
}

/// What a file in the disk folder is, by its name.
#[derive(Debug, PartialEq, Eq)]
enum FileKind {
    /// `<key hex>.json`: a result.
    Entry(Key),
    /// `<key hex>.tmp...`: a result being written (or left behind by a crash).
    Temp,
    /// Not the cache's.
    Other,
}

fn file_kind(name: &str) -> FileKind {
    let mut key = [0u8; 32];
    let Some(hex) = name.get(..64) else {
        return FileKind::Other;
    };
    if hex::decode_to_slice(hex, &mut key).is_err() {
        return FileKind::Other;
    }
    match &name[64..] {
        ".json" => FileKind::Entry(key),
        rest if rest.starts_with(".tmp") => FileKind::Temp,
        _ => FileKind::Other,
    }
}

fn entry_path(dir: &Path, key: &Key) -> PathBuf {
    let hex = hex::encode(key);
    dir.join(&hex[..2]).join(format!("{hex}.json"))
}

/// Lists `dir`, removes stale temporary files and, when the result files pass `max_bytes`,
/// the least recently modified ones until at most 90 % of it is left.
///
/// Holds 56 bytes per result file while it runs; files of other names are left alone.
fn sweep(dir: &Path, max_bytes: u64, now: SystemTime) -> Result<Swept, SweepError> {
    let list_error = |source| SweepError::List {
        dir: dir.to_owned(),
        source,
    };
    let shards = match std::fs::read_dir(dir) {
        Ok(shards) => shards,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Swept::default()),
        Err(e) => return Err(list_error(e)),
    };
    let mut done = Swept::default();
    let mut entries: Vec<(SystemTime, Key, u64)> = Vec::new();
    for shard in shards {
        let shard = shard.map_err(list_error)?;
        let is_shard = shard.file_type().is_ok_and(|t| t.is_dir())
            && shard
                .file_name()
                .to_str()
                .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()));
        if !is_shard {
            continue;
        }
        let files = match std::fs::read_dir(shard.path()) {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(path = %shard.path().display(), error = %e, "cannot list a LanguageTool disk cache folder");
                continue;
            }
        };
        for file in files.flatten() {
            let name = file.file_name();
            let kind = name.to_str().map_or(FileKind::Other, file_kind);
            if kind == FileKind::Other {
                continue;
            }
            // Gone since listed (another sweep, or a rename): nothing to count.
            let Ok(meta) = file.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            match kind {
                FileKind::Entry(key) => {
                    done.bytes += meta.len();
                    done.files += 1;
                    entries.push((modified, key, meta.len()));
                }
                FileKind::Temp => {
                    let stale = now
                        .duration_since(modified)
                        .is_ok_and(|age| age >= STALE_TEMP_AGE);
                    if stale && std::fs::remove_file(file.path()).is_ok() {
                        done.stale_temps += 1;
                    }
                }
                FileKind::Other => {}
            }
        }
    }
    if done.bytes > max_bytes {
        let target = max_bytes - max_bytes / 10;
        entries.sort_unstable();
        for (_, key, len) in entries {
            if done.bytes <= target {
                break;
            }
            let path = entry_path(dir, &key);
            match std::fs::remove_file(&path) {
                Ok(()) => done.evicted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a LanguageTool disk cache file");
                    continue;
                }
            }
            done.bytes -= len;
            done.files -= 1;
        }
    }
    Ok(done)
}

/// Reads a result file and marks it used now (eviction goes by modification time).
fn read_and_touch(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    // Best effort: a read-only folder still serves its results.
    let _ = file.set_modified(SystemTime::now());
    Ok(bytes)
}

async fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    // Unique per write, so two writers of one key (in this process or another) never share it;
    // the `.tmp` after the key is what sweeps recognise.
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    let written = match tokio::fs::write(&tmp, bytes).await {
        Ok(()) => tokio::fs::rename(&tmp, path).await,
        Err(e) => Err(e),
    };
    if written.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    written
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

    fn disk(dir: &Path, max_bytes: u64) -> DiskConfig {
        DiskConfig {
            dir: dir.to_owned(),
            max_bytes,
        }
    }

    /// Every file under `dir`, one level of folders down: (name, bytes).
    fn files(dir: &Path) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for shard in std::fs::read_dir(dir).unwrap() {
            let shard = shard.unwrap().path();
            if !shard.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(shard).unwrap() {
                let f = f.unwrap();
                let name = f.file_name().into_string().unwrap();
                out.push((name, f.metadata().unwrap().len()));
            }
        }
        out.sort();
        out
    }

    fn result_bytes(dir: &Path) -> u64 {
        files(dir)
            .iter()
            .filter(|(n, _)| n.ends_with(".json"))
            .map(|(_, b)| b)
            .sum()
    }

    /// Sets the modification time of `key`'s file to `secs` seconds after 2001-09-09, long
    /// before any file this test writes now.
    fn age(dir: &Path, key: &Key, secs: u64) {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000 + secs);
        let file = std::fs::File::options()
            .write(true)
            .open(entry_path(dir, key))
            .unwrap();
        file.set_modified(at).unwrap();
    }

    /// Bytes of one stored result of `result(n)` for any two-digit `n`.
    fn entry_len() -> u64 {
        serde_json::to_vec(&*result(10)).unwrap().len() as u64
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
        let first = Cache::new(1 << 20, Some(disk(dir.path(), 1 << 20)), Metrics::default());
        first.put(key(7), result(7)).await;
        let second = Cache::new(1 << 20, Some(disk(dir.path(), 1 << 20)), Metrics::default());
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

    #[tokio::test]
    async fn writing_past_the_disk_cap_evicts_the_oldest_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let one = entry_len();
        let cap = 10 * one + one / 2;
        let metrics = Metrics::default();
        // No memory tier: every hit below comes from the folder.
        let cache = Cache::new(0, Some(disk(dir.path(), cap)), metrics.clone());
        cache.disk_settled().await;
        for i in 0..10u8 {
            cache.put(key(i), result(10 + usize::from(i))).await;
            age(dir.path(), &key(i), u64::from(i));
        }
        assert_eq!(
            result_bytes(dir.path()),
            10 * one,
            "under the cap: nothing evicted"
        );
        cache.put(key(10), result(20)).await;
        cache.disk_settled().await;
        let bytes = result_bytes(dir.path());
        assert!(bytes <= cap - cap / 10, "{bytes} bytes left, cap {cap}");
        assert_eq!(bytes, 9 * one);
        for i in 0..2u8 {
            assert!(
                cache.get(&key(i)).await.is_none(),
                "{i} was among the oldest"
            );
        }
        for i in 2..=10u8 {
            let (hit, tier) = cache.get(&key(i)).await.expect("newer results are kept");
            assert_eq!((hit.counts.grammar, tier), (10 + u32::from(i), Tier::Disk));
        }
        assert_eq!(metrics.disk_cache_evictions.get(), 2);
        assert_eq!(metrics.disk_cache_bytes.get(), (9 * one) as i64);
    }

    #[tokio::test]
    async fn a_disk_hit_renews_a_result_so_eviction_spares_it() {
        let dir = tempfile::tempdir().unwrap();
        let one = entry_len();
        let cache = Cache::new(
            0,
            Some(disk(dir.path(), 10 * one + one / 2)),
            Metrics::default(),
        );
        cache.disk_settled().await;
        for i in 0..10u8 {
            cache.put(key(i), result(10 + usize::from(i))).await;
            age(dir.path(), &key(i), u64::from(i));
        }
        assert!(cache.get(&key(0)).await.is_some(), "the oldest, read now");
        cache.put(key(10), result(20)).await;
        cache.disk_settled().await;
        assert!(cache.get(&key(0)).await.is_some(), "used recently: kept");
        assert!(cache.get(&key(1)).await.is_none());
        assert!(cache.get(&key(2)).await.is_none());
        assert!(cache.get(&key(3)).await.is_some());
    }

    #[tokio::test]
    async fn a_lower_cap_at_start_up_trims_the_folder_and_hits_still_work() {
        let dir = tempfile::tempdir().unwrap();
        let one = entry_len();
        let roomy = Cache::new(0, Some(disk(dir.path(), 1 << 20)), Metrics::default());
        roomy.disk_settled().await;
        for i in 0..10u8 {
            roomy.put(key(i), result(10 + usize::from(i))).await;
            age(dir.path(), &key(i), u64::from(i));
        }
        drop(roomy);
        let cap = 5 * one;
        let tight = Cache::new(1 << 20, Some(disk(dir.path(), cap)), Metrics::default());
        tight.disk_settled().await;
        assert_eq!(result_bytes(dir.path()), 4 * one, "down to 90 % of the cap");
        let (hit, tier) = tight.get(&key(9)).await.expect("the newest is kept");
        assert_eq!((hit.counts.grammar, tier), (19, Tier::Disk));
        assert!(tight.get(&key(5)).await.is_none());
    }

    #[tokio::test]
    async fn stale_temporary_files_are_removed_at_start_up_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let shard = dir.path().join("ab");
        std::fs::create_dir_all(&shard).unwrap();
        let hex = "ab".repeat(32);
        let stale = shard.join(format!("{hex}.tmp4242-0"));
        let fresh = shard.join(format!("{hex}.tmp4243-0"));
        let foreign = shard.join("notes.txt");
        for path in [&stale, &fresh, &foreign] {
            std::fs::write(path, b"partial").unwrap();
        }
        let two_hours_ago = SystemTime::now() - 2 * STALE_TEMP_AGE;
        for path in [&stale, &foreign] {
            let file = std::fs::File::options().write(true).open(path).unwrap();
            file.set_modified(two_hours_ago).unwrap();
        }
        let cache = Cache::new(0, Some(disk(dir.path(), 1 << 20)), Metrics::default());
        cache.disk_settled().await;
        assert!(!stale.exists(), "a crash's leftover is removed");
        assert!(
            fresh.exists(),
            "a write in progress elsewhere is left alone"
        );
        assert!(
            foreign.exists(),
            "files not of the cache's naming are left alone"
        );
    }

    #[test]
    fn file_names_are_classified_by_the_cache_naming_only() {
        let hex = "0f".repeat(32);
        assert_eq!(
            file_kind(&format!("{hex}.json")),
            FileKind::Entry([0x0f; 32])
        );
        assert_eq!(file_kind(&format!("{hex}.tmp12-3")), FileKind::Temp);
        assert_eq!(file_kind(&format!("{hex}.txt")), FileKind::Other);
        assert_eq!(file_kind("zz.json"), FileKind::Other);
        assert_eq!(
            file_kind(&format!("{}.json", "x".repeat(64))),
            FileKind::Other
        );
    }
}
