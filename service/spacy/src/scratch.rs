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

/// Scratch buffers shared by the threads of one pipeline: take one per document, give it back.
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

    /// Returns a scratch set for the next document.
    pub fn give_back(&self, scratch: Scratch) {
        if let Ok(mut free) = self.free.lock() {
            free.push(scratch);
        }
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
