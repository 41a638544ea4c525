//! The 25 handcrafted features as the extract call will use them: one essay analysed, the
//! distinct strings it needs embedded, and the columns from counts and embeddings.

use std::collections::HashMap;

use essay_features::analysis::Analyzer;
use essay_features::{
    COLUMNS, ErrorCounts, embedding_inputs, handcrafted, oracle_features,
    similarity::{cosine, sentence_texts},
};

use crate::support::repo_root;

fn analyzer() -> Analyzer {
    Analyzer::load(&repo_root().join("models")).expect("the vendored models load")
}

/// A deterministic stand-in embedding: letter frequencies a..z of the string.
fn letters(s: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; 26];
    for c in s.to_lowercase().chars() {
        if c.is_ascii_lowercase() {
            v[(c as u8 - b'a') as usize] += 1.0;
        }
    }
    v
}

fn table(strings: &[String]) -> HashMap<String, Vec<f32>> {
    strings.iter().map(|s| (s.clone(), letters(s))).collect()
}

fn col(name: &str) -> usize {
    COLUMNS.iter().position(|c| c.name == name).unwrap()
}

const ESSAY: &str = "I think phones help students learn. They can find facts fast.\n\n\
                     But phones also distract us in class! Teachers should set rules.\n\n\
                     In conclusion, phones are useful when we use them well.";
const PROMPT: &str = "Should students use phones at school?";

#[test]
fn sentences_and_paragraphs_are_the_strings_to_embed() {
    let a = analyzer().analyse(ESSAY).unwrap();
    assert_eq!(
        sentence_texts(&a.raw),
        vec![
            "I think phones help students learn.",
            "They can find facts fast.",
            "But phones also distract us in class!",
            "Teachers should set rules.",
            "In conclusion, phones are useful when we use them well.",
        ]
    );
    let strings = embedding_inputs(&a, PROMPT);
    // essay, prompt, 5 sentences, 3 paragraphs, each once: the last paragraph is the last
    // sentence, so 9 strings.
    assert_eq!(strings.len(), 9, "{strings:#?}");
    assert_eq!(strings[0], ESSAY);
    assert_eq!(strings[1], PROMPT);
    assert_eq!(
        strings[7],
        "I think phones help students learn. They can find facts fast."
    );
    // A one-sentence essay is its own sentence and paragraph: embedded once.
    let one = analyzer().analyse("Phones are useful.").unwrap();
    assert_eq!(
        embedding_inputs(&one, PROMPT),
        vec!["Phones are useful.".to_owned(), PROMPT.to_owned()]
    );
}

#[test]
fn the_25_columns_combine_counts_parse_and_embeddings() {
    let a = analyzer().analyse(ESSAY).unwrap();
    let strings = embedding_inputs(&a, PROMPT);
    let counts = ErrorCounts {
        grammar: 2,
        spelling: 3,
        punctuation: 1,
    };
    let got = handcrafted(&a, PROMPT, counts, &table(&strings)).unwrap();
    assert_eq!(got.len(), COLUMNS.len());
    // The spaCy-derived 18 are exactly the oracle functions' values.
    for (name, value) in oracle_features(&a.text, &a.normalised, &a.raw, &a.readability) {
        let v = got[col(name)];
        assert!(v == value || (v.is_nan() && value.is_nan()), "{name}");
    }
    let words = got[col("word_count")];
    assert_eq!(words, 32.0);
    assert_eq!(got[col("grammar_errors_per_100_words")], 200.0 / words);
    assert_eq!(got[col("spelling_errors_per_100_words")], 300.0 / words);
    assert_eq!(got[col("punctuation_errors_per_100_words")], 100.0 / words);
    let p = letters(PROMPT);
    let cos = |s: &str| cosine(&letters(s), &p).unwrap();
    assert_eq!(got[col("prompt_similarity")], cos(ESSAY));
    let paragraphs: Vec<&str> = ESSAY.split("\n\n").collect();
    assert_eq!(got[col("intro_prompt_sim")], cos(paragraphs[0]));
    let min = paragraphs
        .iter()
        .map(|s| cos(s))
        .fold(f64::INFINITY, f64::min);
    assert_eq!(got[col("min_para_relevance")], min);
    let sentences = sentence_texts(&a.raw);
    let mut pairs = Vec::new();
    for i in 0..sentences.len() {
        for j in i + 1..sentences.len() {
            pairs.push(cosine(&letters(&sentences[i]), &letters(&sentences[j])).unwrap());
        }
    }
    let mean = pairs.iter().sum::<f64>() / pairs.len() as f64;
    let var = pairs.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / pairs.len() as f64;
    assert!((got[col("sent_similarity_variance")] - var).abs() < 1e-15);
    assert!(var > 0.0);
    assert_eq!(got[col("paragraph_count")], 3.0);
    assert_eq!(got[col("has_conclusion")], 1.0);
}

#[test]
fn empty_and_blank_essays_have_defined_features() {
    let analyzer = analyzer();
    for text in ["", " \n\t\n "] {
        let a = analyzer.analyse(text).unwrap();
        let strings = embedding_inputs(&a, PROMPT);
        assert_eq!(strings, vec![text.to_owned(), PROMPT.to_owned()]);
        let got = handcrafted(&a, PROMPT, ErrorCounts::default(), &table(&strings)).unwrap();
        for name in [
            "word_count",
            "grammar_errors_per_100_words",
            "paragraph_count",
            "sent_similarity_variance",
            "intro_prompt_sim",
            "min_para_relevance",
            "prompt_similarity",
            "parse_tree_depth",
        ] {
            assert_eq!(got[col(name)], 0.0, "{text:?} {name}");
        }
    }
}

#[test]
fn a_missing_embedding_is_an_error_naming_the_string() {
    let a = analyzer().analyse(ESSAY).unwrap();
    let mut t = table(&embedding_inputs(&a, PROMPT));
    t.remove("Teachers should set rules.");
    let err = handcrafted(&a, PROMPT, ErrorCounts::default(), &t).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no embedding was given for the sentence \"Teachers should set rules.\""
    );
}
