//! The harness of the `cache_entry` fuzz target (`client/runs/fuzz/`), shared with the replay
//! test below that runs every file of `client/runs/fuzz/corpus/cache_entry/` in `cargo test`
//! (docs/fuzzing.md). Not part of the crate's API.

use sha2::{Digest, Sha256};

use crate::cache::{CachedRow, decode_entry};

/// Decodes `bytes` as a cache entry twice: as they are (almost always refused by the checksum)
/// and sealed with their own sha256 appended, so the layout checks behind the checksum run.
/// Panics when the decoder panics or accepts anything but an entry laid out as the module docs
/// of [`crate::cache`] describe: what it accepts re-encodes, by that description, to the very
/// same bytes.
pub fn cache_entry(bytes: &[u8]) {
    check(bytes);
    let mut sealed = bytes.to_vec();
    sealed.extend_from_slice(&Sha256::digest(bytes));
    check(&sealed);
}

fn check(bytes: &[u8]) {
    if let Some(row) = decode_entry(bytes) {
        assert_eq!(
            described(&row),
            bytes,
            "an entry decoded into {row:?} is not laid out as described"
        );
    }
}

/// The entry of `row` as the module docs of [`crate::cache`] describe it, written independently
/// of its encoder.
fn described(row: &CachedRow) -> Vec<u8> {
    let len = |n: usize| u32::try_from(n).expect("lengths fit in u32").to_le_bytes();
    let mut out = Vec::new();
    match &row.limited {
        None => {
            out.extend_from_slice(b"HEMMAC01");
            out.extend_from_slice(&len(row.embedding.len()));
            out.extend_from_slice(&len(row.handcrafted.len()));
        }
        Some(limit) => {
            assert!(!limit.code.is_empty(), "a limited row without its code");
            out.extend_from_slice(b"HEMMAC02");
            out.extend_from_slice(&len(row.embedding.len()));
            out.extend_from_slice(&len(row.handcrafted.len()));
            out.extend_from_slice(&len(limit.code.len()));
            out.extend_from_slice(&len(limit.message.len()));
        }
    }
    for v in row.embedding.iter().chain(&row.handcrafted) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    if let Some(limit) = &row.limited {
        out.extend_from_slice(limit.code.as_bytes());
        out.extend_from_slice(limit.message.as_bytes());
    }
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every file of the committed corpus, regressions included, through the fuzz harness.
    #[test]
    fn the_committed_fuzz_corpus_replays() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/cache_entry");
        hemma_proto::fuzz_harness::replay_corpus(&dir, super::cache_entry);
    }

    /// The seeds the corpus holds are real entries: the harness's description of the layout
    /// agrees with the encoder on them (so the sealed inputs reach the layout checks).
    #[test]
    fn the_described_layout_is_the_encoders() {
        use crate::cache::{Cache, CachedRow, Lookup, RowLimit, entry_key};
        let fp = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path(), fp, "combined").unwrap();
        for (i, row) in [
            CachedRow {
                embedding: vec![0.5, -1.25],
                handcrafted: vec![f32::NAN],
                limited: None,
            },
            CachedRow {
                embedding: vec![],
                handcrafted: vec![f32::NAN; 3],
                limited: Some(RowLimit {
                    code: "word_too_long".into(),
                    message: "é".into(),
                }),
            },
        ]
        .into_iter()
        .enumerate()
        {
            let key = entry_key(fp, "combined", &i.to_string(), "p");
            cache.put(&key, &row).unwrap();
            let file = cache.dir().join(&key[..2]).join(&key);
            assert_eq!(std::fs::read(file).unwrap(), super::described(&row));
            assert!(matches!(cache.get(&key).unwrap(), Lookup::Hit(_)));
        }
    }
}
