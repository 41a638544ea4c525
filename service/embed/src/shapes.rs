//! Static batch shapes for execution providers that compile per input shape (MIGraphX).
//!
//! MIGraphX compiles the graph for every new input shape (a first compile at 512 tokens took
//! ~97 s in a public report), so dynamic shapes would stall requests. With buckets, a batch is
//! padded up to the smallest bucketed row count and sequence length that hold it, and every
//! bucket shape is run once at start-up, so no request waits for a compile.

/// The allowed batch shapes; empty lists mean dynamic shapes (pad to the longest row only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShapeBuckets {
    rows: Vec<usize>,
    seq: Vec<usize>,
}

impl ShapeBuckets {
    /// Dynamic shapes: batches keep their own row count and longest length.
    pub fn dynamic() -> Self {
        Self::default()
    }

    /// Buckets of row counts and sequence lengths, for texts of at most `max_length` tokens.
    ///
    /// When anything is bucketed, the sequence buckets are capped at `max_length` and always
    /// include it, so every batch fits a bucket. Lists are sorted and de-duplicated here.
    pub fn new(mut rows: Vec<usize>, mut seq: Vec<usize>, max_length: usize) -> Self {
        rows.sort_unstable();
        rows.dedup();
        if !rows.is_empty() || !seq.is_empty() {
            seq.retain(|&s| s < max_length);
            seq.push(max_length);
        }
        seq.sort_unstable();
        seq.dedup();
        ShapeBuckets { rows, seq }
    }

    /// Whether batches keep their own shape.
    pub fn is_dynamic(&self) -> bool {
        self.rows.is_empty() && self.seq.is_empty()
    }

    /// The largest row bucket, if rows are bucketed.
    pub fn max_rows(&self) -> Option<usize> {
        self.rows.last().copied()
    }

    /// The shape a batch of `rows` x `longest` runs as.
    pub fn shape_for(&self, rows: usize, longest: usize) -> (usize, usize) {
        let up =
            |buckets: &[usize], v: usize| buckets.iter().copied().find(|&b| b >= v).unwrap_or(v);
        (up(&self.rows, rows), up(&self.seq, longest))
    }

    /// Every bucket shape (rows, seq), for warm-up; empty when dynamic.
    pub fn all_shapes(&self) -> Vec<(usize, usize)> {
        if self.is_dynamic() {
            return Vec::new();
        }
        let rows = if self.rows.is_empty() {
            vec![1]
        } else {
            self.rows.clone()
        };
        let seq = if self.seq.is_empty() {
            vec![1]
        } else {
            self.seq.clone()
        };
        rows.iter()
            .flat_map(|&r| seq.iter().map(move |&s| (r, s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_up_to_the_smallest_bucket_that_holds_the_batch() {
        let b = ShapeBuckets::new(vec![8, 1, 4], vec![1024, 128, 256], 512);
        assert_eq!(b.shape_for(1, 20), (1, 128));
        assert_eq!(b.shape_for(3, 130), (4, 256));
        assert_eq!(b.shape_for(8, 512), (8, 512));
        assert_eq!(b.all_shapes().len(), 9, "1024 is capped to max_length 512");
        assert_eq!(b.max_rows(), Some(8));
    }

    #[test]
    fn bucketed_rows_alone_still_cover_max_length() {
        let b = ShapeBuckets::new(vec![4], vec![], 64);
        assert_eq!(b.all_shapes(), vec![(4, 64)]);
    }

    #[test]
    fn dynamic_keeps_the_batch_shape() {
        let b = ShapeBuckets::new(vec![], vec![], 512);
        assert_eq!(b, ShapeBuckets::dynamic());
        assert_eq!(b.shape_for(3, 77), (3, 77));
        assert!(b.all_shapes().is_empty());
    }
}
