//! Which waiting sequences form the next batch.
//!
//! A padded batch costs rows x longest row, so batches are cut from the waiting sequences sorted
//! by length: neighbours in that order pad little to each other. The oldest waiting sequence is
//! always in the next batch (nothing starves), and the batch grows around it, taking whichever
//! neighbour is closer in length, while the padded cost stays within the token budget and no row
//! is padded to more than twice its length (short rows excepted, see [`MAX_PAD_RATIO`]).
//!
//! The padding cap matters when one request brings an essay with its sentences and paragraphs:
//! a large budget would otherwise put the sentences in the essay's batch, each padded to the
//! essay's length (docs/architecture.md, step 5 of "One `Extract` request").

use std::ops::Range;

/// Limits of one batch.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// rows x longest row at most (a single longer sequence still runs, alone).
    pub max_tokens: usize,
    /// Rows at most.
    pub max_rows: usize,
}

/// A batch's longest row is at most this many times its shortest, so padding is under half of
/// any row...
pub const MAX_PAD_RATIO: usize = 2;
/// ...unless the longest row is at most this long: short rows cost little even when padded, and
/// each batch has a fixed cost of its own.
pub const SHORT_ROW: usize = 64;

/// Picks the next batch from `lens` (sequence lengths sorted ascending) around index `oldest`.
///
/// Returns a non-empty range of `lens` that contains `oldest`.
pub fn next_batch(lens: &[usize], oldest: usize, budget: Budget) -> Range<usize> {
    debug_assert!(lens.windows(2).all(|w| w[0] <= w[1]), "lens must be sorted");
    let (mut lo, mut hi) = (oldest, oldest + 1);
    let mut longest = lens[oldest];
    let fits = |rows: usize, shortest: usize, longest: usize| {
        rows <= budget.max_rows
            && rows * longest <= budget.max_tokens
            && longest <= (MAX_PAD_RATIO * shortest).max(SHORT_ROW)
    };
    loop {
        let rows = hi - lo + 1;
        let below = (lo > 0).then(|| lens[lo - 1]);
        let above = lens.get(hi).copied();
        let below_ok = below.filter(|&len| fits(rows, len, longest));
        let above_ok = above.filter(|&len| fits(rows, lens[lo], longest.max(len)));
        match (below_ok, above_ok) {
            (Some(b), Some(a)) if lens[oldest] - b <= a - lens[oldest] => lo -= 1,
            (Some(_), None) => lo -= 1,
            (_, Some(a)) => {
                hi += 1;
                longest = longest.max(a);
            }
            (None, None) => return lo..hi,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(max_tokens: usize, max_rows: usize) -> Budget {
        Budget {
            max_tokens,
            max_rows,
        }
    }

    #[test]
    fn short_texts_do_not_pad_to_long_ones() {
        let lens = [8, 9, 10, 500, 510];
        let r = next_batch(&lens, 0, budget(1024, 32));
        assert_eq!(r, 0..3);
        let r = next_batch(&lens, 4, budget(1024, 32));
        assert_eq!(r, 3..5);
    }

    #[test]
    fn an_essays_sentences_are_not_padded_to_the_essay_within_a_large_budget() {
        // One request's strings: sentences, paragraphs and the essay itself, sorted.
        let lens = [12, 18, 20, 25, 31, 40, 120, 180, 250, 430];
        assert_eq!(next_batch(&lens, 9, budget(8192, 32)), 8..10);
        assert_eq!(next_batch(&lens, 0, budget(8192, 32)), 0..6);
        assert_eq!(next_batch(&lens, 6, budget(8192, 32)), 6..8);
        for oldest in 0..lens.len() {
            let r = next_batch(&lens, oldest, budget(8192, 32));
            let (shortest, longest) = (lens[r.start], lens[r.end - 1]);
            assert!(
                longest <= (MAX_PAD_RATIO * shortest).max(SHORT_ROW),
                "{r:?}"
            );
        }
    }

    #[test]
    fn one_sequence_over_budget_still_runs_alone() {
        let r = next_batch(&[600], 0, budget(512, 8));
        assert_eq!(r, 0..1);
    }

    #[test]
    fn respects_rows_and_tokens() {
        let lens = [10; 100];
        assert_eq!(next_batch(&lens, 50, budget(10_000, 16)).len(), 16);
        assert_eq!(next_batch(&lens, 50, budget(45, 16)).len(), 4);
    }

    #[test]
    fn always_contains_the_oldest() {
        let lens = [5, 6, 7, 8, 400];
        for oldest in 0..lens.len() {
            let r = next_batch(&lens, oldest, budget(64, 4));
            assert!(r.contains(&oldest));
            let longest = lens[r.clone()].iter().max().unwrap();
            assert!(r.len() == 1 || r.len() * longest <= 64);
        }
    }
}
