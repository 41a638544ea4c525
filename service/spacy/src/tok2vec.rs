//! tok2vec (PORT.md): six hash embeddings, a maxout + layer-norm reduction, and four residual
//! window-encoder blocks over the document padded with four rows each side.

use std::path::Path;

use ndarray::{Array2, ArrayView2};

use super::NlpError;
use super::cancel::Cancel;
use super::gemm::Dense;
use super::scratch::Scratch;
use super::thinc::ThincModel;

/// Width of the token vectors.
pub const WIDTH: usize = 96;
const PIECES: usize = 3;
const PAD: usize = 4;
/// (node, rows, seed) of the hash embeddings, in feature-column order.
const EMBEDS: [(usize, usize, u64); 6] = [
    (28, 5000, 8),
    (30, 1000, 9),
    (32, 2500, 10),
    (34, 2500, 11),
    (36, 50, 12),
    (38, 50, 13),
];
const BLOCKS: [(usize, usize); 4] = [(57, 58), (59, 60), (61, 62), (63, 64)];

/// A maxout layer with its layer norm.
#[derive(Debug)]
struct MaxoutNorm {
    /// (nO*nP, nI): row `o*3 + p`.
    w: Dense,
    b: Vec<f32>,
    g: Vec<f32>,
    beta: Vec<f32>,
}

impl MaxoutNorm {
    fn load(model: &ThincModel, maxout: usize, norm: usize, n_in: usize) -> Result<Self, NlpError> {
        model.expect_node(maxout, "maxout")?;
        model.expect_node(norm, "layernorm")?;
        let w = model.param(maxout, "W", &[WIDTH, PIECES, n_in])?;
        let w = Array2::from_shape_vec((WIDTH * PIECES, n_in), w.data)
            .expect("the shape was checked against the parameter");
        Ok(MaxoutNorm {
            w: Dense::new(w),
            b: model.param(maxout, "b", &[WIDTH, PIECES])?.data,
            g: model.param(norm, "G", &[WIDTH])?.data,
            beta: model.param(norm, "b", &[WIDTH])?.data,
        })
    }

    /// `layernorm(maxout(x))`, row by row, into `out` (rows, 96); `pieces` is scratch.
    fn forward_into(&self, x: ArrayView2<f32>, pieces: &mut Vec<f32>, out: &mut [f32]) {
        let z = self.w.apply_into(x, pieces);
        let z = z
            .as_slice()
            .expect("matmul_into gives a standard-layout view");
        for (zr, or) in z
            .chunks_exact(WIDTH * PIECES)
            .zip(out.chunks_exact_mut(WIDTH))
        {
            let mut row = [0f32; WIDTH];
            for (o, r) in row.iter_mut().enumerate() {
                let mut best = f32::NEG_INFINITY;
                for p in 0..PIECES {
                    let j = o * PIECES + p;
                    best = best.max(zr[j] + self.b[j]);
                }
                *r = best;
            }
            let mu = numpy_mean(&row);
            let mut sq = [0f32; WIDTH];
            for (s, &v) in sq.iter_mut().zip(&row) {
                *s = (v - mu) * (v - mu);
            }
            let var = numpy_mean(&sq) + 1e-8;
            let inv = var.powf(-0.5);
            for (k, o) in or.iter_mut().enumerate() {
                *o = ((row[k] - mu) * inv) * self.g[k] + self.beta[k];
            }
        }
    }
}

/// numpy's float32 `mean` of 96 values: pairwise summation with 8 accumulators (PORT.md).
fn numpy_mean(x: &[f32; WIDTH]) -> f32 {
    let mut r = [0f32; 8];
    r.copy_from_slice(&x[..8]);
    for block in x[8..].chunks_exact(8) {
        for (acc, v) in r.iter_mut().zip(block) {
            *acc += v;
        }
    }
    (((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))) / WIDTH as f32
}

/// thinc's `MurmurHash3_x86_128_uint64`: MurmurHash3_x64_128 of one u64, as four u32.
pub fn murmur3_u64(key: u64, seed: u64) -> [u32; 4] {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    fn fmix(mut k: u64) -> u64 {
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^= k >> 33;
        k
    }
    let (mut h1, mut h2) = (seed, seed);
    let k1 = key.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    h1 ^= k1;
    h1 ^= 8;
    h2 ^= 8;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    [h1 as u32, (h1 >> 32) as u32, h2 as u32, (h2 >> 32) as u32]
}

/// The tok2vec model.
#[derive(Debug)]
pub struct Tok2Vec {
    embeds: Vec<(Array2<f32>, u64)>,
    reduce: MaxoutNorm,
    blocks: Vec<MaxoutNorm>,
}

impl Tok2Vec {
    /// Loads `<model_dir>/tok2vec/model`.
    pub fn load(model_dir: &Path) -> Result<Tok2Vec, NlpError> {
        let model = ThincModel::load(&model_dir.join("tok2vec/model"))?;
        let mut embeds = Vec::new();
        for (node, rows, seed) in EMBEDS {
            model.expect_node(node, "hashembed")?;
            let found = model.attr(node, "seed")?.as_u64();
            if found != Some(seed) {
                return Err(NlpError::Format {
                    path: model_dir.join("tok2vec/model"),
                    message: format!("hashembed node {node} has seed {found:?}, expected {seed}"),
                });
            }
            let e = model.param(node, "E", &[rows, WIDTH])?;
            let e = Array2::from_shape_vec((rows, WIDTH), e.data)
                .expect("the shape was checked against the parameter");
            embeds.push((e, seed));
        }
        let reduce = MaxoutNorm::load(&model, 39, 40, WIDTH * 6)?;
        let blocks = BLOCKS
            .iter()
            .map(|&(m, n)| MaxoutNorm::load(&model, m, n, WIDTH * 3))
            .collect::<Result<_, _>>()?;
        Ok(Tok2Vec {
            embeds,
            reduce,
            blocks,
        })
    }

    /// Token vectors [N, 96] from the six feature ids of each token, computed in `scratch`;
    /// stops with [`NlpError::Cancelled`] between layers once `cancel` is set.
    pub fn forward<'s>(
        &self,
        features: &[[u64; 6]],
        scratch: &'s mut Scratch,
        cancel: &Cancel,
    ) -> Result<ArrayView2<'s, f32>, NlpError> {
        let n = features.len();
        let x = &mut scratch.embedded;
        x.clear();
        x.resize(n * WIDTH * 6, 0.0);
        for (f, xrow) in features.iter().zip(x.chunks_exact_mut(WIDTH * 6)) {
            for (c, ((table, seed), acc)) in self
                .embeds
                .iter()
                .zip(xrow.chunks_exact_mut(WIDTH))
                .enumerate()
            {
                let rows = table.nrows() as u64;
                let data = table
                    .as_slice()
                    .expect("embedding tables are loaded in standard layout");
                for h in murmur3_u64(f[c], *seed) {
                    let at = (u64::from(h) % rows) as usize * WIDTH;
                    for (a, v) in acc.iter_mut().zip(&data[at..at + WIDTH]) {
                        *a += v;
                    }
                }
            }
        }
        let x = ArrayView2::from_shape((n, WIDTH * 6), x.as_slice()).expect("n rows of 6 x 96");
        let rows = n + 2 * PAD;
        let h = &mut scratch.hidden;
        h.clear();
        h.resize(rows * WIDTH, 0.0);
        self.reduce.forward_into(
            x,
            &mut scratch.pieces,
            &mut h[PAD * WIDTH..(PAD + n) * WIDTH],
        );
        for block in &self.blocks {
            cancel.check()?;
            seq2col(h, &mut scratch.windows);
            let cols = ArrayView2::from_shape((rows, WIDTH * 3), scratch.windows.as_slice())
                .expect("rows x 3 widths");
            scratch.update.clear();
            scratch.update.resize(rows * WIDTH, 0.0);
            block.forward_into(cols, &mut scratch.pieces, &mut scratch.update);
            h.iter_mut().zip(&scratch.update).for_each(|(a, u)| *a += u);
        }
        Ok(
            ArrayView2::from_shape((n, WIDTH), &scratch.hidden[PAD * WIDTH..(PAD + n) * WIDTH])
                .expect("n rows of 96"),
        )
    }
}

/// Each row next to its neighbours: `[h[i-1], h[i], h[i+1]]`, zeros beyond the ends.
fn seq2col(h: &[f32], out: &mut Vec<f32>) {
    let n = h.len() / WIDTH;
    out.clear();
    out.resize(n * WIDTH * 3, 0.0);
    for (i, row) in out.chunks_exact_mut(WIDTH * 3).enumerate() {
        if i > 0 {
            row[..WIDTH].copy_from_slice(&h[(i - 1) * WIDTH..i * WIDTH]);
        }
        row[WIDTH..2 * WIDTH].copy_from_slice(&h[i * WIDTH..(i + 1) * WIDTH]);
        if i + 1 < n {
            row[2 * WIDTH..].copy_from_slice(&h[(i + 1) * WIDTH..(i + 2) * WIDTH]);
        }
    }
}
