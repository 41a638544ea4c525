//! The tokenizer and lexeme attributes on hand-written cases whose spaCy answers are known (the
//! stress and oracle parity runs are in `essay-features`' tests, which hold the normalised texts).

use std::path::PathBuf;

use spacy_en_core_sm::lexeme::Lexicon;
use spacy_en_core_sm::tokenizer::{Tokenizer, Tokens};

/// The repository root (the vendored model is under `models/spacy`).
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tokenizer() -> Tokenizer {
    let models = repo_root().join("models/spacy");
    Tokenizer::load(
        &models.join("en_core_web_sm-3.8.0"),
        &models.join("tables/tok_url_match_rustsafe.txt"),
    )
    .expect("the vendored model loads")
}

fn texts(t: &Tokens) -> Vec<(&str, bool)> {
    t.tokens
        .iter()
        .map(|t| (t.text.as_str(), t.spacy))
        .collect()
}

#[test]
fn edge_cases_follow_spacy() {
    let tok = tokenizer();
    let cases: Vec<(&str, Vec<(&str, bool)>)> = vec![
        ("", vec![]),
        (" x", vec![(" ", false), ("x", false)]),
        ("a  b", vec![("a", true), (" ", false), ("b", false)]),
        ("a\n\nb", vec![("a", false), ("\n\n", false), ("b", false)]),
        ("a \n b", vec![("a", true), ("\n ", false), ("b", false)]),
        (
            "I can't go.",
            vec![
                ("I", true),
                ("ca", false),
                ("n't", true),
                ("go", false),
                (".", false),
            ],
        ),
        (
            "(hello)",
            vec![("(", false), ("hello", false), (")", false)],
        ),
        ("end. ", vec![("end", false), (".", true)]),
    ];
    for (text, want) in cases {
        let got = tok.tokenize(text).unwrap();
        assert_eq!(texts(&got), want, "{text:?}");
        let rebuilt: String = got
            .tokens
            .iter()
            .map(|t| format!("{}{}", t.text, if t.spacy { " " } else { "" }))
            .collect();
        assert_eq!(rebuilt, text);
    }
    let dont = tok.tokenize("don't").unwrap();
    assert_eq!(dont.tokens[1].norm.as_deref(), Some("not"));
}

#[test]
fn lexeme_norms_come_from_the_model_then_base_norms_then_lowercase() {
    let models = repo_root().join("models/spacy");
    let lex = Lexicon::load(&models.join("en_core_web_sm-3.8.0"), &models.join("tables")).unwrap();
    assert_eq!(lex.lex_norm("colour"), "color");
    assert_eq!(lex.lex_norm("Colour"), "color");
    assert_eq!(lex.lex_norm("cos"), "because");
    assert_eq!(lex.lex_norm("\u{2019}"), "'");
    assert_eq!(lex.lex_norm("Hello"), "hello");
    let tok = tokenizer();
    let t = tok.tokenize("I can't").unwrap();
    let f = lex.features(&t.tokens[2]);
    // "n't" carries the exception NORM "not"; SPACY 0; not whitespace.
    assert_eq!(f[0], lex.id("not"));
    assert_eq!(f[1], lex.id("n"));
    assert_eq!(f[3], lex.id("x'x"));
    assert_eq!(&f[4..], &[0, 0]);
    // "I": shape "X" and prefix "X"... are reserved symbols (id 101), not hashes.
    assert_eq!(lex.features(&t.tokens[0])[3], 101);
}

/// Hostile single texts: long runs of affixes, nested brackets, many short words, a long URL.
fn hostile(n: usize) -> Vec<(&'static str, String)> {
    let mixed: String = "(),.;:!?\"'[]{}-…%$#*&".chars().cycle().take(n).collect();
    vec![
        ("x + )*n", format!("x{}", ")".repeat(n))),
        (
            "(*n + a + )*n",
            format!("{}a{}", "(".repeat(n), ")".repeat(n)),
        ),
        ("'a '*n", "a ".repeat(n)),
        (".*n", ".".repeat(n)),
        ("http:// + a*n", format!("http://{}", "a".repeat(n))),
        ("mixed punctuation word", mixed),
        ("+5 + )*n", format!("+5{}", ")".repeat(n))),
        ("x + .)*n", format!("x{}", ".)".repeat(n / 2))),
        ("x + 's*n", format!("x{}", "'s".repeat(n / 2))),
        ("a. + a.*n", "a.".repeat(n / 2)),
        ("5km*n", "5km".repeat(n / 3)),
        ("a:*n", "a:".repeat(n / 2)),
    ]
}

#[test]
fn the_work_per_text_grows_linearly_on_hostile_inputs() {
    let tok = tokenizer();
    assert!(
        tok.is_linear(),
        "the vendored patterns get windowed searches"
    );
    let n = 2_000;
    for ((name, small), (_, large)) in hostile(n).into_iter().zip(hostile(2 * n)) {
        let (tokens_small, work_small) = tok.tokenize_counted(&small).unwrap();
        let (tokens_large, work_large) = tok.tokenize_counted(&large).unwrap();
        // The counted path tokenizes exactly as the memoised one.
        assert_eq!(tokens_small, tok.tokenize(&small).unwrap(), "{name}");
        assert_eq!(tokens_large, tok.tokenize(&large).unwrap(), "{name}");
        let ratio = work_large.total_bytes() as f64 / work_small.total_bytes().max(1) as f64;
        println!(
            "{name:24} n={n}: {:>9} bytes, 2n: {:>9} bytes, ratio {ratio:.2}; {} tokens",
            work_small.total_bytes(),
            work_large.total_bytes(),
            tokens_small.tokens.len()
        );
        assert!(
            ratio < 2.5,
            "{name}: the work grew {ratio:.2}x when the text doubled ({work_small:?} -> {work_large:?})"
        );
        assert!(
            work_large.total_bytes() < 200 * large.len() as u64,
            "{name}: {work_large:?} for {} bytes",
            large.len()
        );
    }
}
