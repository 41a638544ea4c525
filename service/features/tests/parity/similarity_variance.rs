//! `sent_similarity_variance` in O(sentences) memory against the implementation it replaced,
//! which listed every sentence pair: equal after f32 rounding (the value the wire carries) on
//! every oracle essay's sentences, on long documents made of many essays' sentences, and on the
//! edge cases.

use essay_features::FeatureError;
use essay_features::similarity::{cosine, sent_similarity_variance, sentence_texts};
use spacy_en_core_sm::pipeline::Word;

use crate::oracle;

/// The replaced implementation: the population variance over a list of all pairs i < j.
fn listing_every_pair(sentences: &[&[f32]]) -> Result<f64, FeatureError> {
    let mut pairs = Vec::new();
    for i in 0..sentences.len() {
        for j in i + 1..sentences.len() {
            pairs.push(cosine(sentences[i], sentences[j])?);
        }
    }
    Ok(if sentences.len() < 2 {
        0.0
    } else {
        let n = pairs.len() as f64;
        let mean = pairs.iter().sum::<f64>() / n;
        pairs.iter().map(|c| (c - mean) * (c - mean)).sum::<f64>() / n
    })
}

/// A deterministic pseudo-random embedding of `text` (FNV-1a seeds a xorshift generator).
fn fake_embedding(text: &str, dim: usize) -> Vec<f32> {
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) | 1;
    (0..dim)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Asserts the two implementations agree on the embeddings of `sentences`.
fn assert_same(what: &str, sentences: &[String]) {
    let vectors: Vec<Vec<f32>> = sentences.iter().map(|s| fake_embedding(s, 24)).collect();
    let views: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
    let got = sent_similarity_variance(&views).unwrap();
    let want = listing_every_pair(&views).unwrap();
    assert_eq!(
        got as f32,
        want as f32,
        "{what}: {got} vs {want} over {} sentences",
        sentences.len()
    );
}

#[test]
fn the_edge_cases_equal_the_pair_list() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    for sentences in [
        s(&[]),
        s(&["One."]),
        s(&["One.", "Two."]),
        s(&["One.", "One."]),
        s(&["One.", "One.", "One."]),
        s(&["One.", "Two.", "One.", "Three.", "Two."]),
        (0..37).map(|i| format!("Sentence {}.", i % 5)).collect(),
    ] {
        assert_same(&format!("{sentences:?}"), &sentences);
    }
    // Values of the two hand-checkable cases.
    let one = [1.0f32, 0.0];
    assert_eq!(sent_similarity_variance(&[&one]).unwrap(), 0.0);
    assert_eq!(sent_similarity_variance(&[&one, &one, &one]).unwrap(), 0.0);
    // A zero vector's cosines are 0: pairs 1, 0, 0 have variance 2/9.
    let zero = [0.0f32, 0.0];
    let v = sent_similarity_variance(&[&one, &one, &zero]).unwrap();
    assert!((v - 2.0 / 9.0).abs() < 1e-15, "{v}");
    // Embeddings of different dimensions are the same error as before.
    let short = [1.0f32];
    assert_eq!(
        sent_similarity_variance(&[&one, &one, &short])
            .unwrap_err()
            .to_string(),
        listing_every_pair(&[&one, &one, &short])
            .unwrap_err()
            .to_string()
    );
}

/// The raw documents' sentence strings, from spaCy's own annotations in the oracle.
fn oracle_sentences() -> Option<Vec<(String, Vec<String>)>> {
    let set = oracle(usize::MAX, 0)?;
    Some(
        set.docs
            .iter()
            .filter(|d| d.variant == "raw")
            .map(|d| {
                let words: Vec<Word> = d
                    .tokens
                    .iter()
                    .map(|t| Word {
                        text: t.text.clone(),
                        spacy: t.ws,
                        tag: t.fields[0].clone(),
                        pos: t.fields[1].clone(),
                        dep: t.fields[2].clone(),
                        head: t.fields[3].parse().unwrap_or(0),
                        sent_start: t.fields[4] == "true",
                        is_space: false,
                        is_punct: false,
                    })
                    .collect();
                (d.id.clone(), sentence_texts(&words))
            })
            .collect(),
    )
}

#[test]
fn every_oracle_essays_sentences_give_the_pair_lists_value() {
    let Some(essays) = oracle_sentences() else {
        return;
    };
    assert!(essays.len() >= 600, "{} essays", essays.len());
    for (id, sentences) in &essays {
        assert_same(id, sentences);
    }
    // Long documents: the sentences of 60 essays at a time (about a thousand sentences).
    for (k, group) in essays.chunks(60).enumerate() {
        let all: Vec<String> = group.iter().flat_map(|(_, s)| s.iter().cloned()).collect();
        assert!(all.len() > 300, "{}", all.len());
        assert_same(
            &format!("essays {}..{}", k * 60, k * 60 + group.len()),
            &all,
        );
    }
}
