//! The harnesses of the `tokenize` and `annotate` fuzz targets (`service/spacy/fuzz/`), shared
//! with the replay test below that runs every file of `service/spacy/fuzz/corpus/` in
//! `cargo test` (docs/fuzzing.md). Not part of the crate's API.

use std::path::Path;
use std::sync::OnceLock;

use crate::NlpError;
use crate::pipeline::Pipeline;
use crate::tokenizer::Token;

/// The vendored model, loaded once per process.
fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/spacy");
        Pipeline::load(&models).expect("the vendored spaCy model loads")
    })
}

/// Tokenizes `bytes` when they are UTF-8 (anything else is skipped). Panics when the tokenizer
/// panics or breaks its promises: the tokens' texts, each followed by one space where `spacy` is
/// set, rebuild the input exactly (PORT.md, whitespace pass); no token is empty; a second run
/// (from the memo) gives the same tokens. An error (a pattern that gave up) is allowed; a
/// cancellation nobody asked for is not.
pub fn tokenize(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        checked_tokens(text);
    }
}

/// [`tokenize`], then the whole pipeline on the same text. Panics, besides, when the pipeline
/// panics or breaks its promises: one word per token with the token's text and space, and every
/// head inside the document. An error (a pattern that gave up) is allowed.
pub fn annotate(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Some(tokens) = checked_tokens(text) else {
        return;
    };
    let words = match pipeline().annotate(text) {
        Ok(w) => w,
        Err(e) => return allowed(&e, text),
    };
    assert_eq!(words.len(), tokens.len(), "one word per token in {text:?}");
    for (i, (w, t)) in words.iter().zip(&tokens).enumerate() {
        assert_eq!(
            (&w.text, w.spacy),
            (&t.text, t.spacy),
            "word {i} of {text:?}"
        );
        assert!(
            w.head < words.len(),
            "word {i}'s head {} of {text:?}",
            w.head
        );
    }
}

/// The tokens of `text` after the checks of [`tokenize`]; `None` after an allowed error.
fn checked_tokens(text: &str) -> Option<Vec<Token>> {
    let p = pipeline();
    let tokens = match p.tokenizer().tokenize(text) {
        Ok(t) => t.tokens,
        Err(e) => {
            allowed(&e, text);
            return None;
        }
    };
    let mut rebuilt = String::with_capacity(text.len());
    for t in &tokens {
        assert!(!t.text.is_empty(), "an empty token in {text:?}");
        rebuilt.push_str(&t.text);
        if t.spacy {
            rebuilt.push(' ');
        }
    }
    assert_eq!(rebuilt, text, "the tokens do not rebuild the text");
    let again = p
        .tokenizer()
        .tokenize(text)
        .expect("it tokenized a moment ago");
    assert_eq!(
        again.tokens, tokens,
        "the memo changed the tokens of {text:?}"
    );
    Some(tokens)
}

fn allowed(e: &NlpError, text: &str) {
    assert!(
        matches!(e, NlpError::Match { .. }),
        "unexpected error on a {}-byte text: {e}",
        text.len()
    );
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every file of both committed corpora (both targets read UTF-8 text), regressions
    /// included, through the annotate harness (which runs the tokenize harness first).
    #[test]
    fn the_committed_fuzz_corpus_replays() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        let mut files = Vec::new();
        for target in ["tokenize", "annotate"] {
            let dir = root.join(target);
            let found: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().path())
                .collect();
            assert!(found.len() >= 5, "{}: {} files", dir.display(), found.len());
            files.extend(found);
        }
        files.sort();
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            let run = std::panic::catch_unwind(|| super::annotate(&bytes));
            assert!(run.is_ok(), "corpus file {} fails", f.display());
        }
    }
}
