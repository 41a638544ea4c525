//! Reusable buffers for annotating one document, so the large per-document matrices are not
//! allocated (and page-faulted in) again for every text; [`ScratchPool`] hands them out.

use std::sync::Mutex;

use ndarray::{ArrayView2, ArrayViewMut2, linalg::general_mat_mul};

/// The working matrices of one annotation, as flat row-major buffers.
#[derive(Debug, Default)]
pub struct Scratch {
    /// tok2vec: embedded features (n, 576).
    pub embedded: Vec<f32>,
    /// tok2vec: maxout pre-activations (rows, 288).
    pub pieces: Vec<f32>,
    /// tok2vec: padded token vectors (n + 8, 96).
    pub hidden: Vec<f32>,
    /// tok2vec: windows of three rows (n + 8, 288).
    pub windows: Vec<f32>,
    /// tok2vec: one block's residual update (n + 8, 96).
    pub update: Vec<f32>,
    /// tagger logits (n, tags).
    pub logits: Vec<f32>,
    /// parser: projected token vectors (n, 64).
    pub projected: Vec<f32>,
    /// parser: precomputed lower-layer features (n, 8 * 128).
    pub precomputed: Vec<f32>,
}

/// Tokens a kept scratch set is sized for at most: after a longer document, each buffer larger
/// than it needs for this many tokens is dropped when the set is given back, so one giant
/// document does not pin its memory (about 10 KB per token) for the life of the process.
pub const KEEP_TOKENS: usize = 2_048;
/// Scratch sets kept for reuse at most (one per concurrently annotating thread is enough); the
/// ones given back beyond it are dropped.
pub const KEEP_SETS: usize = 16;

/// Floats per token of each buffer, in field order (rows of the tok2vec buffers include the 8
/// pad rows, covered by the margin in [`Scratch::trim`]).
const PER_TOKEN: [usize; 8] = [96 * 6, 96 * 3, 96, 96 * 3, 96, 64, 64, 8 * 128];

impl Scratch {
    /// The buffers, in field order.
    fn buffers(&mut self) -> [&mut Vec<f32>; 8] {
        [
            &mut self.embedded,
            &mut self.pieces,
            &mut self.hidden,
            &mut self.windows,
            &mut self.update,
            &mut self.logits,
            &mut self.projected,
            &mut self.precomputed,
        ]
    }

    /// Drops each buffer whose capacity exceeds what [`KEEP_TOKENS`] tokens need.
    pub fn trim(&mut self) {
        for (buffer, per_token) in self.buffers().into_iter().zip(PER_TOKEN) {
            if buffer.capacity() > (KEEP_TOKENS + 8) * per_token {
                *buffer = Vec::new();
            }
        }
    }

    /// Bytes the buffers hold (their capacity).
    pub fn capacity_bytes(&mut self) -> usize {
        self.buffers()
            .iter()
            .map(|b| b.capacity() * std::mem::size_of::<f32>())
            .sum()
    }
}

/// Scratch buffers shared by the threads of one pipeline: take one per document, give it back.
/// At most [`KEEP_SETS`] sets are kept, each trimmed to [`KEEP_TOKENS`] tokens.
#[derive(Debug, Default)]
pub struct ScratchPool {
    free: Mutex<Vec<Scratch>>,
}

impl ScratchPool {
    /// A scratch set, reused when one is free.
    pub fn take(&self) -> Scratch {
        self.free
            .lock()
            .map(|mut free| free.pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Returns a scratch set for the next document, trimmed; dropped when [`KEEP_SETS`] are
    /// already kept.
    pub fn give_back(&self, mut scratch: Scratch) {
        scratch.trim();
        if let Ok(mut free) = self.free.lock()
            && free.len() < KEEP_SETS
        {
            free.push(scratch);
        }
    }

    /// Scratch sets kept now, and the bytes they hold.
    pub fn kept(&self) -> (usize, usize) {
        self.free.lock().map_or((0, 0), |mut free| {
            let bytes = free.iter_mut().map(Scratch::capacity_bytes).sum();
            (free.len(), bytes)
        })
    }
}

/// `out = a · b` (b given as a view, e.g. a transposed weight), written into `out` resized to
/// (rows of a, columns of b); the same product (and rounding) as `a.dot(&b)`.
pub fn matmul_into<'o>(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    out: &'o mut Vec<f32>,
) -> ArrayViewMut2<'o, f32> {
    let (m, n) = (a.nrows(), b.ncols());
    out.clear();
    out.resize(m * n, 0.0);
    let mut c = ArrayViewMut2::from_shape((m, n), out.as_mut_slice())
        .expect("the buffer was sized to m x n");
    general_mat_mul(1.0, &a, &b, 0.0, &mut c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch set as a document of `tokens` tokens leaves it.
    fn used(tokens: usize) -> Scratch {
        let mut s = Scratch::default();
        for (buffer, per_token) in s.buffers().into_iter().zip(PER_TOKEN) {
            buffer.resize((tokens + 8) * per_token, 1.0);
        }
        s
    }

    #[test]
    fn a_giant_document_does_not_stay_in_the_pool() {
        let per_token_bytes = PER_TOKEN.iter().sum::<usize>() * 4;
        let pool = ScratchPool::default();
        // 5,000 tokens: about 50 MB of buffers, none of it kept.
        pool.give_back(used(5_000));
        assert_eq!(
            pool.kept(),
            (1, 0),
            "every buffer over the bound was dropped"
        );
        // An ordinary document's buffers are kept whole, up to the bound.
        pool.give_back(used(500));
        let (sets, bytes) = pool.kept();
        assert_eq!(sets, 2);
        assert!(bytes >= 500 * per_token_bytes, "{bytes}");
        let pool = ScratchPool::default();
        pool.give_back(used(KEEP_TOKENS));
        let (_, bytes) = pool.kept();
        assert!(bytes >= KEEP_TOKENS * per_token_bytes);
        assert!(bytes <= (KEEP_TOKENS + 8) * per_token_bytes);
    }

    #[test]
    fn at_most_keep_sets_sets_are_kept() {
        let pool = ScratchPool::default();
        for _ in 0..KEEP_SETS + 5 {
            pool.give_back(used(10));
        }
        assert_eq!(pool.kept().0, KEEP_SETS);
        let taken: Vec<Scratch> = (0..KEEP_SETS + 1).map(|_| pool.take()).collect();
        assert_eq!(pool.kept().0, 0);
        drop(taken);
    }
}
