//! The native spaCy port against spaCy. Tokenizer: hand-written edge cases, and token texts and whitespace
//! flags equal to the spaCy oracle on every essay that has token data (raw and normalised).
//!
//! The oracle lives in the team's shared data (`../shared/data/oracle`, or `$HEMMA_ORACLE_DIR`
//! with the essays in `$HEMMA_ESSAYS_FILE`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use hemma_offload::nlp::lexeme::Lexicon;
use hemma_offload::nlp::pipeline::Pipeline;
use hemma_offload::nlp::pychar::is_space;
use hemma_offload::nlp::tokenizer::{Tokenizer, Tokens};
use hemma_offload_e2e::repo_root;

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

/// Python's `re.sub(r"\s+", " ", text).strip()`.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if is_space(c) {
            in_space = true;
        } else {
            if in_space && !out.is_empty() {
                out.push(' ');
            }
            in_space = false;
            out.push(c);
        }
    }
    out
}

fn shared(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(default))
}

#[test]
fn tokens_and_whitespace_equal_the_spacy_oracle() {
    let oracle = shared("HEMMA_ORACLE_DIR", "../shared/data/oracle").join("tokens.jsonl.gz");
    let essays_file = shared(
        "HEMMA_ESSAYS_FILE",
        "../shared/data/essays/ellipse_sample.jsonl",
    );
    assert!(
        oracle.exists() && essays_file.exists(),
        "the spaCy oracle is not at {} / {}: set HEMMA_ORACLE_DIR and HEMMA_ESSAYS_FILE",
        oracle.display(),
        essays_file.display()
    );
    let essays: HashMap<String, String> = std::fs::read_to_string(&essays_file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["id"].as_str().unwrap().to_owned(),
                v["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let tok = tokenizer();
    let reader = BufReader::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&oracle).unwrap(),
    ));
    let (mut docs, mut tokens, mut mismatched) = (0, 0, Vec::new());
    for line in reader.lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let id = v["id"].as_str().unwrap();
        let raw = &essays[id];
        for (variant, text) in [("raw", raw.clone()), ("norm", normalise(raw))] {
            let want: Vec<(String, bool)> = v[variant]["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| (t[0].as_str().unwrap().to_owned(), t[1].as_bool().unwrap()))
                .collect();
            let got: Vec<(String, bool)> = tok
                .tokenize(&text)
                .unwrap()
                .tokens
                .into_iter()
                .map(|t| (t.text, t.spacy))
                .collect();
            docs += 1;
            tokens += want.len();
            if got != want {
                let at = got
                    .iter()
                    .zip(&want)
                    .position(|(a, b)| a != b)
                    .unwrap_or(got.len().min(want.len()));
                mismatched.push(format!(
                    "{id} {variant}: first difference at token {at}: got {:?}, spaCy {:?}",
                    got.get(at),
                    want.get(at)
                ));
            }
        }
    }
    println!(
        "tokenizer parity: {docs} documents, {tokens} tokens, {} documents differ",
        mismatched.len()
    );
    assert!(
        docs >= 1200,
        "the oracle has 600 essays x 2 variants, read {docs}"
    );
    assert!(mismatched.is_empty(), "{}", mismatched.join("\n"));
}

/// The oracle's documents: (id, variant, text, tokens as JSON arrays).
fn oracle_docs(limit: usize) -> Vec<(String, &'static str, String, Vec<serde_json::Value>)> {
    let oracle = shared("HEMMA_ORACLE_DIR", "../shared/data/oracle").join("tokens.jsonl.gz");
    let essays_file = shared(
        "HEMMA_ESSAYS_FILE",
        "../shared/data/essays/ellipse_sample.jsonl",
    );
    let essays: HashMap<String, String> = std::fs::read_to_string(&essays_file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["id"].as_str().unwrap().to_owned(),
                v["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let reader = BufReader::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&oracle).unwrap(),
    ));
    let mut out = Vec::new();
    for line in reader.lines().take(limit) {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let id = v["id"].as_str().unwrap().to_owned();
        let raw = essays[&id].clone();
        for (variant, text) in [("raw", raw.clone()), ("norm", normalise(&raw))] {
            let tokens = v[variant]["tokens"].as_array().unwrap().clone();
            out.push((id.clone(), variant, text, tokens));
        }
    }
    out
}

/// Per field: tokens compared and tokens that differ.
#[derive(Default)]
struct Tally {
    compared: usize,
    differ: [usize; 5],
    examples: Vec<String>,
}

const FIELDS: [&str; 5] = ["tag", "pos", "dep", "head", "sent_start"];

#[test]
fn the_pipeline_equals_the_spacy_oracle() {
    let pipeline = Pipeline::load(&repo_root().join("models/spacy")).unwrap();
    let limit: usize = std::env::var("HEMMA_PARITY_ESSAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let mut tally = Tally::default();
    for (id, variant, text, want) in oracle_docs(limit) {
        let words = pipeline.annotate(&text).unwrap();
        assert_eq!(words.len(), want.len(), "{id} {variant}: token count");
        for (k, (w, o)) in words.iter().zip(&want).enumerate() {
            tally.compared += 1;
            let got = [
                w.tag.clone(),
                w.pos.clone(),
                w.dep.clone(),
                w.head.to_string(),
                w.sent_start.to_string(),
            ];
            let oracle = [
                o[2].as_str().unwrap().to_owned(),
                o[3].as_str().unwrap().to_owned(),
                o[4].as_str().unwrap().to_owned(),
                o[5].as_u64().unwrap().to_string(),
                o[6].as_bool().unwrap().to_string(),
            ];
            for f in 0..5 {
                if got[f] != oracle[f] {
                    tally.differ[f] += 1;
                    if tally.examples.len() < 10 {
                        tally.examples.push(format!(
                            "{id} {variant} token {k} {:?}: {} {} vs spaCy {}",
                            w.text, FIELDS[f], got[f], oracle[f]
                        ));
                    }
                }
            }
        }
    }
    println!("pipeline parity over {} tokens:", tally.compared);
    for (f, name) in FIELDS.iter().enumerate() {
        println!("  {name:<10} {} differ", tally.differ[f]);
    }
    assert!(tally.compared > 50_000 || limit < 600, "{}", tally.compared);
    assert_eq!(tally.differ, [0; 5], "{}", tally.examples.join("\n"));
}

#[test]
fn the_18_oracle_features_equal_on_every_essay() {
    use hemma_offload::features::oracle_features;
    use hemma_offload::nlp::hyphenate::Hyphenator;
    use hemma_offload::nlp::readability::readability;
    let pipeline = Pipeline::load(&repo_root().join("models/spacy")).unwrap();
    let hyphenator =
        Hyphenator::load(&repo_root().join("models/hyphenation/hyph_en_GB.dic")).unwrap();
    let features = shared("HEMMA_ORACLE_DIR", "../shared/data/oracle").join("features.jsonl");
    let essays_file = shared(
        "HEMMA_ESSAYS_FILE",
        "../shared/data/essays/ellipse_sample.jsonl",
    );
    let essays: HashMap<String, String> = std::fs::read_to_string(&essays_file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["id"].as_str().unwrap().to_owned(),
                v["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let limit: usize = std::env::var("HEMMA_PARITY_FEATURE_ESSAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&features)
        .unwrap()
        .lines()
        .take(limit)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Two threads: the pipeline is shared read-only.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = rows.len().div_ceil(threads).max(1);
    let results: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(chunk)
            .map(|part| {
                let (pipeline, hyphenator, essays) = (&pipeline, &hyphenator, &essays);
                scope.spawn(move || {
                    let mut wrong = Vec::new();
                    for v in part {
                        let id = v["id"].as_str().unwrap();
                        let text = &essays[id];
                        let norm = pipeline.annotate(&normalise(text)).unwrap();
                        let raw = pipeline.annotate(text).unwrap();
                        let r = readability(&norm, hyphenator);
                        for (name, got) in oracle_features(text, &norm, &raw, &r) {
                            let want = v["features"][name].as_f64();
                            let same = match want {
                                None => got.is_nan(),
                                Some(w) => (got - w).abs() <= 1e-9 * w.abs().max(1.0),
                            };
                            if !same {
                                wrong.push(format!("{id} {name}: {got} vs oracle {want:?}"));
                            }
                        }
                    }
                    wrong
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wrong: Vec<String> = results.into_iter().flatten().collect();
    println!(
        "feature parity over {} essays x 18 features: {} values differ",
        rows.len(),
        wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "{}",
        wrong[..wrong.len().min(20)].join("\n")
    );
}
