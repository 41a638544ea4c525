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

/// Head hops from each token to its root (a root has 0), in linear time: each token's depth is
/// computed once, from the first known depth on its way up. A token that never reaches a root
/// (a malformed parse with a cycle) gets `len + 1`, as a walk bounded by `len + 1` steps would.
fn depths(words: &[Word]) -> Vec<usize> {
    const UNKNOWN: usize = usize::MAX;
    let n = words.len();
    let mut depth = vec![UNKNOWN; n];
    let mut path = Vec::new();
    for start in 0..n {
        path.clear();
        let mut i = start;
        let base = loop {
            if depth[i] != UNKNOWN {
                break depth[i];
            }
            if words[i].head == i {
                depth[i] = 0;
                break 0;
            }
            if path.len() > n {
                break n + 1;
            }
            path.push(i);
            i = words[i].head;
        };
        for (k, &t) in path.iter().enumerate() {
            depth[t] = (base + (path.len() - k)).min(n + 1);
        }
    }
    depth
}

/// Syntax features of an annotated raw document.
pub fn syntax(words: &[Word]) -> Syntax {
    let sentences = sentence_ranges(words);
    let depth = depths(words);
    let depths: Vec<usize> = sentences
        .iter()
        .filter(|(a, b)| b > a)
        .map(|&(a, b)| depth[a..b].iter().copied().max().unwrap_or(0))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn word(head: usize) -> Word {
        Word {
            text: "w".into(),
            spacy: true,
            tag: String::new(),
            pos: String::new(),
            dep: String::new(),
            head,
            sent_start: false,
            is_space: false,
            is_punct: false,
        }
    }

    /// The walk from each token to its root, bounded by `len + 1` steps.
    fn walked(words: &[Word], mut i: usize) -> usize {
        let mut d = 0;
        while words[i].head != i && d <= words.len() {
            d += 1;
            i = words[i].head;
        }
        d
    }

    #[test]
    fn depths_equal_the_bounded_walk() {
        let trees: Vec<Vec<usize>> = vec![
            vec![],
            vec![0],
            vec![1, 1, 1],
            // A chain: token i's head is i + 1, the last is the root.
            (1..=200).map(|h| h.min(199)).collect(),
            vec![2, 0, 2, 2, 3],
            // Malformed: 0 -> 1 -> 0 never reaches a root; 2 leads into that cycle.
            vec![1, 0, 1, 3],
        ];
        for heads in trees {
            let words: Vec<Word> = heads.iter().map(|&h| word(h)).collect();
            let want: Vec<usize> = (0..words.len()).map(|i| walked(&words, i)).collect();
            assert_eq!(depths(&words), want, "{heads:?}");
        }
    }
}
