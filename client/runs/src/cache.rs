//! The local feature cache: one small file per (fingerprint, feature set, text, prompt).
//!
//! Layout: `<root>/<fingerprint>/<feature set>/<key[0..2]>/<key>` where `key` is the sha256 of
//! the fingerprint, the feature set, sha256(text) and sha256(prompt). Because the fingerprint is
//! both in the key and in the path, a server whose features could differ never reads another
//! server's rows. An entry is `HEMMAC01`, two little-endian u32 lengths (embedding values,
//! handcrafted values), the f32 little-endian values, and the sha256 of everything before it: a
//! truncated or damaged file fails the check and is fetched again. Entries are written to a
//! temporary file in the same folder and renamed into place, so a killed run leaves whole entries
//! or none; this is what lets an interrupted run resume.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"HEMMAC01";
const HEADER: usize = 8 + 4 + 4;
const CHECKSUM: usize = 32;

/// Why the cache could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A cache file or folder could not be read or written.
    #[error("cache {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// The feature rows of one essay.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedRow {
    /// Its embedding (empty for the handcrafted set).
    pub embedding: Vec<f32>,
    /// Its handcrafted features (empty for the embeddings set).
    pub handcrafted: Vec<f32>,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// A whole entry.
    Hit(CachedRow),
    /// No entry.
    Miss,
    /// An entry that fails its checksum or layout check; it is removed and must be fetched again.
    Damaged,
}

/// Identifies one cache entry.
pub fn entry_key(fingerprint: &str, feature_set: &str, text: &str, prompt: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        fingerprint.as_bytes(),
        feature_set.as_bytes(),
        &Sha256::digest(text.as_bytes()),
        &Sha256::digest(prompt.as_bytes()),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

/// The default cache root shared by the CLI and the Python package (when `$HEMMA_CACHE` or a
/// flag names none): `$XDG_CACHE_HOME/hemma`, else `~/.cache/hemma`.
pub fn default_root() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("hemma"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|home| PathBuf::from(home).join(".cache/hemma"))
}

/// The cache folder of one fingerprint and feature set.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache under `root` for rows of `fingerprint` and `feature_set`; creates nothing yet.
    pub fn new(root: &Path, fingerprint: &str, feature_set: &str) -> Cache {
        Cache {
            dir: root.join(fingerprint).join(feature_set),
        }
    }

    /// The folder holding this cache's entries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2.min(key.len())]).join(key)
    }

    /// Reads the entry `key`; a damaged one is removed.
    pub fn get(&self, key: &str) -> Result<Lookup, CacheError> {
        let path = self.path(key);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Lookup::Miss),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        match decode(&bytes) {
            Some(row) => Ok(Lookup::Hit(row)),
            None => {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => return Err(CacheError::Io { path, source }),
                }
                Ok(Lookup::Damaged)
            }
        }
    }

    /// Stores `row` under `key`, atomically.
    pub fn put(&self, key: &str, row: &CachedRow) -> Result<(), CacheError> {
        let path = self.path(key);
        let bytes = encode(row);
        crate::atomic::write_atomically(&path, |f| std::io::Write::write_all(f, &bytes))
            .map_err(|source| CacheError::Io { path, source })
    }
}

fn encode(row: &CachedRow) -> Vec<u8> {
    let values = row.embedding.len() + row.handcrafted.len();
    let mut out = Vec::with_capacity(HEADER + 4 * values + CHECKSUM);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(row.embedding.len() as u32).to_le_bytes());
    out.extend_from_slice(&(row.handcrafted.len() as u32).to_le_bytes());
    for v in row.embedding.iter().chain(&row.handcrafted) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

fn decode(bytes: &[u8]) -> Option<CachedRow> {
    if bytes.len() < HEADER + CHECKSUM || &bytes[..8] != MAGIC {
        return None;
    }
    let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
    if Sha256::digest(body).as_slice() != sum {
        return None;
    }
    let len = |at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let (ne, nh) = (len(8)?, len(12)?);
    let values = &body[HEADER..];
    if values.len() != 4 * (ne + nh) {
        return None;
    }
    let mut floats = values
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    let embedding = floats.by_ref().take(ne).collect();
    let handcrafted = floats.collect();
    Some(CachedRow {
        embedding,
        handcrafted,
    })
}

/// How many entries the cache under `root` holds for `fingerprint`, per feature set.
pub fn summary(root: &Path, fingerprint: &str) -> Result<Vec<(String, u64, u64)>, CacheError> {
    let dir = root.join(fingerprint);
    let mut out = Vec::new();
    let sets = match std::fs::read_dir(&dir) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(source) => return Err(CacheError::Io { path: dir, source }),
    };
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| CacheError::Io { path, source }
    };
    for set in sets {
        let set = set.map_err(io_err(&dir))?;
        let (mut entries, mut bytes) = (0u64, 0u64);
        for shard in std::fs::read_dir(set.path()).map_err(io_err(&set.path()))? {
            let shard = shard.map_err(io_err(&set.path()))?;
            if !shard.path().is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(shard.path()).map_err(io_err(&shard.path()))? {
                let entry = entry.map_err(io_err(&shard.path()))?;
                if entry.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                entries += 1;
                bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
        out.push((
            set.file_name().to_string_lossy().into_owned(),
            entries,
            bytes,
        ));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> CachedRow {
        CachedRow {
            embedding: vec![0.5, -1.25, 3.0],
            handcrafted: vec![f32::NAN, 7.0],
        }
    }

    fn same(a: &CachedRow, b: &CachedRow) -> bool {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        bits(&a.embedding) == bits(&b.embedding) && bits(&a.handcrafted) == bits(&b.handcrafted)
    }

    #[test]
    fn a_stored_row_reads_back_bit_for_bit_with_nan() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path(), "fp", "combined");
        let key = entry_key("fp", "combined", "text", "prompt");
        assert_eq!(cache.get(&key).unwrap(), Lookup::Miss);
        cache.put(&key, &row()).unwrap();
        match cache.get(&key).unwrap() {
            Lookup::Hit(r) => assert!(same(&r, &row())),
            other => panic!("{other:?}"),
        }
        let s = summary(dir.path(), "fp").unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].0.as_str(), s[0].1), ("combined", 1));
    }

    #[test]
    fn keys_differ_by_every_part() {
        let base = entry_key("fp", "combined", "t", "p");
        assert_ne!(base, entry_key("fp2", "combined", "t", "p"));
        assert_ne!(base, entry_key("fp", "handcrafted", "t", "p"));
        assert_ne!(base, entry_key("fp", "combined", "t2", "p"));
        assert_ne!(base, entry_key("fp", "combined", "t", "p2"));
        // Moving a boundary between text and prompt changes the key.
        assert_ne!(
            entry_key("fp", "c", "ab", "c"),
            entry_key("fp", "c", "a", "bc")
        );
    }

    #[test]
    fn a_damaged_or_truncated_entry_is_detected_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path(), "fp", "combined");
        let key = entry_key("fp", "combined", "text", "prompt");
        cache.put(&key, &row()).unwrap();
        let path = cache.path(&key);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER + 1] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(cache.get(&key).unwrap(), Lookup::Damaged);
        assert!(!path.exists(), "the damaged entry is removed");
        cache.put(&key, &row()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        assert_eq!(cache.get(&key).unwrap(), Lookup::Damaged);
    }

    #[test]
    fn another_fingerprint_does_not_see_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let old = Cache::new(dir.path(), "fp-old", "combined");
        old.put(&entry_key("fp-old", "combined", "t", "p"), &row())
            .unwrap();
        let new = Cache::new(dir.path(), "fp-new", "combined");
        assert_eq!(
            new.get(&entry_key("fp-new", "combined", "t", "p")).unwrap(),
            Lookup::Miss
        );
    }
}
