//! Tier 2 syntax and the Tier 3 features that need the parse, over the raw document.

use std::collections::HashSet;

use super::safe_divide;
use crate::readability::sentence_ranges;
use spacy_en_core_sm::pipeline::Word;

const CLAUSE_DEPS: [&str; 6] = ["ccomp", "xcomp", "advcl", "relcl", "csubj", "csubjpass"];

/// Parse-based features of one document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Syntax {
    /// Mean over sentences of the deepest head-hop count (root 0).
    pub parse_tree_depth: f64,
    /// Tokens heading a clause (ccomp, xcomp, advcl, relcl, csubj, csubjpass).
    pub clause_count: f64,
    /// auxpass tokens / VERB tokens.
    pub passive_ratio: f64,
    /// Mean |i - head| over non-root tokens.
    pub dep_distance: f64,
    /// Mean Jaccard overlap of adjacent sentences' lower-cased non-space tokens.
    pub lexical_overlap: f64,
    /// PRON tokens / NOUN or PROPN tokens.
    pub pronoun_noun_ratio: f64,
}

fn depth(words: &[Word], mut i: usize) -> usize {
    let mut d = 0;
    // A well-formed parse reaches a root within len steps; the bound guards a malformed one.
    while words[i].head != i && d <= words.len() {
        d += 1;
        i = words[i].head;
    }
    d
}

/// Syntax features of an annotated raw document.
pub fn syntax(words: &[Word]) -> Syntax {
    let sentences = sentence_ranges(words);
    let depths: Vec<usize> = sentences
        .iter()
        .filter(|(a, b)| b > a)
        .map(|&(a, b)| (a..b).map(|i| depth(words, i)).max().unwrap_or(0))
        .collect();
    let parse_tree_depth = if depths.is_empty() {
        0.0
    } else {
        depths.iter().sum::<usize>() as f64 / depths.len() as f64
    };
    let dists: Vec<usize> = words
        .iter()
        .enumerate()
        .filter(|(i, w)| w.head != *i)
        .map(|(i, w)| i.abs_diff(w.head))
        .collect();
    let dep_distance = if dists.is_empty() {
        0.0
    } else {
        dists.iter().sum::<usize>() as f64 / dists.len() as f64
    };
    let count = |f: &dyn Fn(&Word) -> bool| words.iter().filter(|w| f(w)).count() as f64;
    let mut overlaps = Vec::new();
    for pair in sentences.windows(2) {
        let set = |(a, b): (usize, usize)| -> HashSet<String> {
            words[a..b]
                .iter()
                .filter(|w| !w.is_space)
                .map(|w| w.text.to_lowercase())
                .collect()
        };
        let (sa, sb) = (set(pair[0]), set(pair[1]));
        overlaps.push(if sa.is_empty() || sb.is_empty() {
            0.0
        } else {
            let inter = sa.intersection(&sb).count() as f64;
            let union = sa.union(&sb).count() as f64;
            safe_divide(inter, union)
        });
    }
    let lexical_overlap = if overlaps.is_empty() {
        0.0
    } else {
        overlaps.iter().fold(0.0, |acc, v| acc + v) / overlaps.len() as f64
    };
    Syntax {
        parse_tree_depth,
        clause_count: count(&|w| CLAUSE_DEPS.contains(&w.dep.as_str())),
        passive_ratio: safe_divide(count(&|w| w.dep == "auxpass"), count(&|w| w.pos == "VERB")),
        dep_distance,
        lexical_overlap,
        pronoun_noun_ratio: safe_divide(
            count(&|w| w.pos == "PRON"),
            count(&|w| w.pos == "NOUN" || w.pos == "PROPN"),
        ),
    }
}
