//! The local feature cache: one small file per (fingerprint, feature set, text, prompt).
//!
//! Layout: `<root>/<fingerprint>/<feature set>/<key[0..2]>/<key>` where `key` is the sha256 of
//! the fingerprint, the feature set, sha256(text) and sha256(prompt). Because the fingerprint is
//! both in the key and in the path, a server whose features could differ never reads another
//! server's rows. The fingerprint comes from the server, so it becomes a folder name only when it
//! is exactly 64 lowercase hex characters (a sha256, as hemma-offload sends it); anything else is
//! [`CacheError::UnsafeFingerprint`] and the cache is not touched.
//!
//! Two entry formats, both ending in the sha256 of everything before it (a truncated or damaged
//! file fails the check and is fetched again):
//!
//! - a complete row is `HEMMAC01`, two little-endian u32 lengths (embedding values, handcrafted
//!   values) and the f32 little-endian values; unchanged since the first release, so every
//!   version of the client reads it;
//! - a limited row (its text exceeded the server's analyser, its handcrafted features are NaN) is
//!   `HEMMAC02`, four little-endian u32 lengths (embedding values, handcrafted values, code bytes,
//!   message bytes), the f32 values, then the status code and message in UTF-8. A client older
//!   than this format takes such an entry for a damaged one and fetches the row again.
//!
//! Entries are written to a temporary file in the same folder and renamed into place, so a killed
//! run leaves whole entries or none; this is what lets an interrupted run resume.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"HEMMAC01";
const HEADER: usize = 8 + 4 + 4;
const MAGIC_LIMITED: &[u8; 8] = b"HEMMAC02";
const HEADER_LIMITED: usize = 8 + 4 * 4;
const CHECKSUM: usize = 32;
/// How much of a refused fingerprint an error quotes.
const QUOTED_CHARS: usize = 80;

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
    /// The server's fingerprint cannot name a cache folder (it is not a sha256 in hex).
    #[error(
        "the server sent the fingerprint {sent:?}, which is not 64 lowercase hex characters, so it cannot name a cache folder: the cache at {root} was not used (is this a hemma-offload server? --no-cache runs without the cache)"
    )]
    UnsafeFingerprint {
        /// What the server sent, cut to its first 80 characters (`...` marks a cut).
        sent: String,
        /// The cache root that was not used.
        root: PathBuf,
    },
}

/// Why a row is not complete, as the server said it (`RowStatus` without its index).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowLimit {
    /// A stable snake_case reason, e.g. `word_too_long` (docs/features.md lists them).
    pub code: String,
    /// One sentence for a person: what was over which limit.
    pub message: String,
}

/// The feature rows of one essay.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedRow {
    /// Its embedding (empty for the handcrafted set).
    pub embedding: Vec<f32>,
    /// Its handcrafted features (empty for the embeddings set).
    pub handcrafted: Vec<f32>,
    /// Why its handcrafted features are NaN, when the server limited the row; None: complete.
    pub limited: Option<RowLimit>,
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

/// Whether `fingerprint` looks as hemma-offload sends it: exactly 64 lowercase hex characters.
pub fn is_fingerprint(fingerprint: &str) -> bool {
    fingerprint.len() == 64
        && fingerprint
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks that `fingerprint` can name a folder under `root` ([`is_fingerprint`]).
pub fn check_fingerprint(root: &Path, fingerprint: &str) -> Result<(), CacheError> {
    match is_fingerprint(fingerprint) {
        true => Ok(()),
        false => {
            let mut sent: String = fingerprint.chars().take(QUOTED_CHARS).collect();
            if fingerprint.chars().nth(QUOTED_CHARS).is_some() {
                sent.push_str("...");
            }
            Err(CacheError::UnsafeFingerprint {
                sent,
                root: root.to_owned(),
            })
        }
    }
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
    /// A fingerprint that is not 64 lowercase hex characters is refused ([`check_fingerprint`]).
    pub fn new(root: &Path, fingerprint: &str, feature_set: &str) -> Result<Cache, CacheError> {
        check_fingerprint(root, fingerprint)?;
        Ok(Cache {
            dir: root.join(fingerprint).join(feature_set),
        })
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
    let status = row
        .limited
        .as_ref()
        .map_or(0, |l| l.code.len() + l.message.len());
    let mut out = Vec::with_capacity(HEADER_LIMITED + 4 * values + status + CHECKSUM);
    let len = |n: usize| (n as u32).to_le_bytes();
    out.extend_from_slice(match row.limited {
        None => MAGIC,
        Some(_) => MAGIC_LIMITED,
    });
    out.extend_from_slice(&len(row.embedding.len()));
    out.extend_from_slice(&len(row.handcrafted.len()));
    if let Some(l) = &row.limited {
        out.extend_from_slice(&len(l.code.len()));
        out.extend_from_slice(&len(l.message.len()));
    }
    for v in row.embedding.iter().chain(&row.handcrafted) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    if let Some(l) = &row.limited {
        out.extend_from_slice(l.code.as_bytes());
        out.extend_from_slice(l.message.as_bytes());
    }
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

fn decode(bytes: &[u8]) -> Option<CachedRow> {
    if bytes.len() < HEADER + CHECKSUM {
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
    let (header, status) = match body.get(..8)? {
        m if m == MAGIC => (HEADER, None),
        m if m == MAGIC_LIMITED => (HEADER_LIMITED, Some((len(16)?, len(20)?))),
        _ => return None,
    };
    let rest = body.get(header..)?;
    let (nc, nm) = status.unwrap_or((0, 0));
    if rest.len() != 4 * (ne + nh) + nc + nm {
        return None;
    }
    let (values, text) = rest.split_at(4 * (ne + nh));
    let mut floats = values
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    let embedding = floats.by_ref().take(ne).collect();
    let handcrafted = floats.collect();
    let limited = match status {
        None => None,
        Some(_) => {
            let (code, message) = text.split_at(nc);
            let code = std::str::from_utf8(code).ok()?;
            if code.is_empty() {
                return None;
            }
            Some(RowLimit {
                code: code.to_owned(),
                message: std::str::from_utf8(message).ok()?.to_owned(),
            })
        }
    };
    Some(CachedRow {
        embedding,
        handcrafted,
        limited,
    })
}

/// How many entries the cache under `root` holds for `fingerprint`, per feature set.
/// A fingerprint that is not 64 lowercase hex characters is refused ([`check_fingerprint`]).
pub fn summary(root: &Path, fingerprint: &str) -> Result<Vec<(String, u64, u64)>, CacheError> {
    check_fingerprint(root, fingerprint)?;
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

/// Decodes one entry's bytes as [`Cache::get`] does (`None`: damaged), for the fuzz harness.
#[doc(hidden)]
pub fn decode_entry(bytes: &[u8]) -> Option<CachedRow> {
    decode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const FP_OTHER: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

    fn row() -> CachedRow {
        CachedRow {
            embedding: vec![0.5, -1.25, 3.0],
            handcrafted: vec![f32::NAN, 7.0],
            limited: None,
        }
    }

    fn limited_row() -> CachedRow {
        CachedRow {
            embedding: vec![0.5, -1.25, 3.0],
            handcrafted: vec![f32::NAN, f32::NAN],
            limited: Some(RowLimit {
                code: "word_too_long".into(),
                message: "a word of 5000 characters is over the analyser's 2000 (é)".into(),
            }),
        }
    }

    fn same(a: &CachedRow, b: &CachedRow) -> bool {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        bits(&a.embedding) == bits(&b.embedding)
            && bits(&a.handcrafted) == bits(&b.handcrafted)
            && a.limited == b.limited
    }

    fn hit(cache: &Cache, key: &str) -> CachedRow {
        match cache.get(key).unwrap() {
            Lookup::Hit(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stored_row_reads_back_bit_for_bit_with_nan() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path(), FP, "combined").unwrap();
        let key = entry_key(FP, "combined", "text", "prompt");
        assert_eq!(cache.get(&key).unwrap(), Lookup::Miss);
        cache.put(&key, &row()).unwrap();
        assert!(same(&hit(&cache, &key), &row()));
        let s = summary(dir.path(), FP).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].0.as_str(), s[0].1), ("combined", 1));
    }

    #[test]
    fn a_limited_row_keeps_its_status_and_a_complete_one_keeps_the_first_format() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path(), FP, "combined").unwrap();
        let (a, b) = (
            entry_key(FP, "combined", "a", "p"),
            entry_key(FP, "combined", "b", "p"),
        );
        cache.put(&a, &limited_row()).unwrap();
        cache.put(&b, &row()).unwrap();
        assert!(same(&hit(&cache, &a), &limited_row()));
        assert_eq!(hit(&cache, &b).limited, None);
        // Complete rows stay in the format every earlier client reads.
        assert_eq!(&std::fs::read(cache.path(&b)).unwrap()[..8], b"HEMMAC01");
        assert_eq!(&std::fs::read(cache.path(&a)).unwrap()[..8], b"HEMMAC02");
    }

    #[test]
    fn an_entry_written_before_row_status_existed_reads_as_complete() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path(), FP, "combined").unwrap();
        let key = entry_key(FP, "combined", "text", "prompt");
        // The first format, byte for byte as earlier clients wrote it.
        let mut bytes = b"HEMMAC01".to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&2u32.to_le_bytes());
        for v in [0.25f32, f32::NAN, 4.0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let sum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&sum);
        std::fs::create_dir_all(cache.path(&key).parent().unwrap()).unwrap();
        std::fs::write(cache.path(&key), &bytes).unwrap();
        let r = hit(&cache, &key);
        assert_eq!(r.limited, None);
        assert_eq!(r.embedding, vec![0.25]);
        assert!(r.handcrafted[0].is_nan() && r.handcrafted[1] == 4.0);
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
        let cache = Cache::new(dir.path(), FP, "combined").unwrap();
        let key = entry_key(FP, "combined", "text", "prompt");
        for good in [row(), limited_row()] {
            cache.put(&key, &good).unwrap();
            let path = cache.path(&key);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[HEADER + 1] ^= 0x40;
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(cache.get(&key).unwrap(), Lookup::Damaged);
            assert!(!path.exists(), "the damaged entry is removed");
            cache.put(&key, &good).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
            assert_eq!(cache.get(&key).unwrap(), Lookup::Damaged);
        }
    }

    #[test]
    fn another_fingerprint_does_not_see_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let old = Cache::new(dir.path(), FP, "combined").unwrap();
        old.put(&entry_key(FP, "combined", "t", "p"), &row())
            .unwrap();
        let new = Cache::new(dir.path(), FP_OTHER, "combined").unwrap();
        assert_eq!(
            new.get(&entry_key(FP_OTHER, "combined", "t", "p")).unwrap(),
            Lookup::Miss
        );
    }

    #[test]
    fn only_a_sha256_in_lowercase_hex_names_a_cache_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let long = "f".repeat(500);
        for bad in [
            "",
            "fp",
            "../../../../home/someone/.ssh",
            "/etc",
            &FP.to_uppercase(),
            &FP[..63],
            &format!("{FP}0"),
            &format!("{}/..", &FP[..61]),
            &format!("{}é", &FP[..62]),
            &long,
        ] {
            let err = Cache::new(&root, bad, "combined").unwrap_err();
            let CacheError::UnsafeFingerprint { sent, .. } = &err else {
                panic!("{err:?}");
            };
            assert!(sent.chars().count() <= QUOTED_CHARS + 3, "{sent}");
            let text = err.to_string();
            assert!(
                text.contains("not 64 lowercase hex characters")
                    && text.contains("was not used")
                    && text.contains(&bad.chars().take(20).collect::<String>()),
                "{text}"
            );
            assert!(matches!(
                summary(&root, bad),
                Err(CacheError::UnsafeFingerprint { .. })
            ));
        }
        assert!(long.len() > QUOTED_CHARS);
        assert!(
            !root.exists(),
            "nothing was created for a refused fingerprint"
        );
        assert!(Cache::new(&root, FP, "combined").is_ok());
    }
}
