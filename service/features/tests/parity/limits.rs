//! The per-document limits of `Analyzer::analyse_with` (docs/features.md, Limits): each limit
//! refuses a text over it with its code and a sentence for a person, and takes one at it.

use essay_features::analysis::Analyzer;
use essay_features::{AnalyseError, Cancel, LIMITS, Limit, Limits};

use crate::support::repo_root;

fn analyzer() -> Analyzer {
    Analyzer::load(&repo_root().join("models")).expect("the vendored models load")
}

/// `LIMITS` with one field changed.
fn limits(change: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = LIMITS;
    change(&mut l);
    l
}

fn refused(result: Result<essay_features::Analysis, AnalyseError>) -> (Limit, String) {
    match result {
        Err(AnalyseError::Limited { limit, message }) => (limit, message),
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("the text was taken"),
    }
}

#[test]
fn a_word_over_2000_characters_is_refused_before_tokenizing() {
    let a = analyzer();
    let cancel = Cancel::new();
    let at_limit = format!("ok {} end", "a".repeat(2_000));
    assert!(a.analyse_with(&at_limit, &cancel).is_ok());
    let over = format!("ok {} end", "a".repeat(2_001));
    let (limit, message) = refused(a.analyse_with(&over, &cancel));
    assert_eq!(limit, Limit::WordTooLong);
    assert_eq!(limit.code(), "word_too_long");
    assert_eq!(
        message,
        "a word of 2,001 characters starts at character 3 (counting from 0); the analyser takes \
         words of at most 2,000 characters (see docs/features.md, Limits)"
    );
    // Python's whitespace separates words: U+001C does, U+200B (zero-width space) does not.
    let split = format!("{}\u{1c}{}", "a".repeat(1_500), "a".repeat(1_500));
    assert!(a.analyse_with(&split, &cancel).is_ok());
    let joined = format!("{}\u{200b}{}", "a".repeat(1_500), "a".repeat(1_500));
    assert_eq!(
        refused(a.analyse_with(&joined, &cancel)).0,
        Limit::WordTooLong
    );
}

#[test]
fn tokens_sentences_and_paragraphs_over_their_limits_are_refused() {
    let a = analyzer();
    let cancel = Cancel::new();
    let text = "One two three. Four five six. Seven.\n\nEight nine.\n\nTen.";
    // 17 tokens (two of them "\n\n"), 5 sentence strings, 3 paragraphs; the first longest word
    // is "three." at character 8.
    let ok = a
        .analyse_limited(
            text,
            &cancel,
            &Limits {
                max_word_chars: 6,
                max_tokens: 17,
                max_sentences: 5,
                max_paragraphs: 3,
            },
        )
        .unwrap();
    assert_eq!(ok, a.analyse(text).unwrap());
    let cases = [
        (
            limits(|l| l.max_tokens = 16),
            Limit::TooManyTokens,
            "the text has 17 tokens; the analyser takes at most 16 (see docs/features.md, Limits)",
        ),
        (
            limits(|l| l.max_sentences = 4),
            Limit::TooManySentences,
            "the text has 5 sentences; the analyser takes at most 4 (see docs/features.md, Limits)",
        ),
        (
            limits(|l| l.max_paragraphs = 2),
            Limit::TooManyParagraphs,
            "the text has 3 paragraphs; the analyser takes at most 2 (see docs/features.md, Limits)",
        ),
        (
            limits(|l| l.max_word_chars = 5),
            Limit::WordTooLong,
            "a word of 6 characters starts at character 8 (counting from 0); the analyser takes \
             words of at most 5 characters (see docs/features.md, Limits)",
        ),
    ];
    for (limits, want, sentence) in cases {
        let (limit, message) = refused(a.analyse_limited(text, &cancel, &limits));
        assert_eq!((limit, message.as_str()), (want, sentence));
    }
}

#[test]
fn a_pattern_that_gives_up_is_a_limit() {
    let a = analyzer();
    // The URL pattern backtracks over every ':' of this word and passes its 10,000,000 steps.
    let text = format!("http://x.com/{}", ":a".repeat(4_000));
    let wide = limits(|l| l.max_word_chars = 10_000);
    let (limit, message) = refused(a.analyse_limited(&text, &Cancel::new(), &wide));
    assert_eq!(limit, Limit::PatternGaveUp);
    assert_eq!(limit.code(), "pattern_gave_up");
    assert!(
        message.starts_with(
            "the tokenizer's url pattern gave up on a piece of the text of 8,013 bytes"
        ),
        "{message}"
    );
}

#[test]
fn a_cancelled_request_is_cancelled() {
    let a = analyzer();
    let cancel = Cancel::new();
    cancel.cancel();
    let text = "The essay goes on. ".repeat(1_000);
    assert!(matches!(
        a.analyse_with(&text, &cancel),
        Err(AnalyseError::Cancelled)
    ));
}
