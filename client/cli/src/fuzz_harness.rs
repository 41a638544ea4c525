//! The harness of the `read_essays` fuzz target (`client/cli/fuzz/`), shared with the replay
//! test below that runs every file of `client/cli/fuzz/corpus/read_essays/` in `cargo test`
//! (docs/fuzzing.md). Not part of the crate's API.

use std::path::Path;

use crate::input::{Columns, Essay, InputError, read_essays};

/// Writes `bytes` into `dir` as a `.jsonl`, an `.ndjson` and a `.csv` file and reads each with
/// [`read_essays`], without and with a prompt column. Panics when a reader panics or breaks its
/// promises: a result is never empty and has a non-blank prompt on every essay when a prompt
/// column is read; an error is a record error naming its file and a line (1 or later), or an I/O
/// error naming the file, never "unknown format" for these extensions.
pub fn read_essays_from(dir: &Path, bytes: &[u8]) {
    let plain = Columns::new("text", "id");
    let prompted = Columns {
        prompt: Some("prompt".into()),
        ..plain.clone()
    };
    for name in ["essays.jsonl", "essays.ndjson", "essays.csv"] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("the scratch folder is writable");
        for columns in [&plain, &prompted] {
            check(&path, columns, read_essays(&path, columns));
        }
    }
}

fn check(path: &Path, columns: &Columns, read: Result<Vec<Essay>, InputError>) {
    match read {
        Ok(essays) => {
            assert!(!essays.is_empty(), "{}: Ok with no essays", path.display());
            for e in &essays {
                match (&columns.prompt, &e.prompt) {
                    (None, None) => {}
                    (Some(_), Some(p)) => assert!(!p.trim().is_empty(), "blank prompt read"),
                    other => panic!("{}: prompt {other:?}", path.display()),
                }
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains(&*path.to_string_lossy()),
                "the error names no file: {message}"
            );
            match e {
                InputError::Record { line, .. } => {
                    assert!(line >= 1, "the error names line {line}: {message}")
                }
                InputError::Io { .. } | InputError::Empty { .. } => {}
                InputError::Format { .. } => panic!("{message}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every file of the committed corpus, regressions included, through the fuzz harness.
    #[test]
    fn the_committed_fuzz_corpus_replays() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/read_essays");
        let scratch = tempfile::tempdir().unwrap();
        hemma_proto::fuzz_harness::replay_corpus(&dir, |bytes| {
            super::read_essays_from(scratch.path(), bytes)
        });
    }
}
