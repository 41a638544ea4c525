//! Dense layers `x · Wᵀ` for the spaCy port. On x86-64 CPUs with AVX-512 the weights are packed
//! once at load and multiplied by a 12×32 register-blocked kernel (twice the width of the AVX2
//! kernels of `matrixmultiply`, which every other machine uses through ndarray). Both sum each
//! output in k order with fused multiply-adds in blocks of 256 inputs, as BLIS does for spaCy:
//! a different summation order flips the parser's rare near-ties (seen on 1 of 2,284 essays).

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use super::scratch::matmul_into;

/// A weight matrix (outputs × inputs) ready to be applied to rows of inputs.
#[derive(Debug)]
pub struct Dense {
    w: Array2<f32>,
    /// The AVX-512 panels, when this CPU has AVX-512.
    packed: Option<Vec<f32>>,
}

impl Dense {
    /// Wraps `w` (outputs × inputs), packing it when the CPU can use the AVX-512 kernel.
    pub fn new(w: Array2<f32>) -> Dense {
        let packed = avx512::available().then(|| {
            let w = w.as_standard_layout();
            let data = w.as_slice().expect("a standard-layout array is one slice");
            avx512::pack(data, w.nrows(), w.ncols())
        });
        Dense { w, packed }
    }

    /// The weights (outputs × inputs).
    pub fn weights(&self) -> ArrayView2<'_, f32> {
        self.w.view()
    }

    /// `out = x · Wᵀ` (rows of x × outputs), written into `out`.
    pub fn apply_into<'o>(
        &self,
        x: ArrayView2<f32>,
        out: &'o mut Vec<f32>,
    ) -> ArrayViewMut2<'o, f32> {
        let (m, k, n) = (x.nrows(), x.ncols(), self.w.nrows());
        assert_eq!(k, self.w.ncols(), "input width must match the weights");
        if let (Some(packed), Some(a)) = (&self.packed, x.as_slice()) {
            // Every element is written by the kernel: grow the buffer, never clear it.
            if out.len() < m * n {
                out.resize(m * n, 0.0);
            }
            out.truncate(m * n);
            // SAFETY: `packed` exists only when `avx512::available()` said the CPU has AVX-512F;
            // the slices have the lengths the kernel indexes (checked inside).
            unsafe { avx512::gemm(a, m, k, packed, n, out) };
            return ArrayViewMut2::from_shape((m, n), out.as_mut_slice())
                .expect("the buffer was sized to m x n");
        }
        matmul_into(x, self.w.t(), out)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
        _mm512_storeu_ps,
    };

    /// Columns per panel: two 16-lane registers.
    pub const NR: usize = 32;
    /// Rows per register block: 12 rows x 2 registers = 24 accumulators of the 32 registers.
    const MR: usize = 12;
    /// Inputs per accumulation chain: each output sums k in blocks of 256 and then adds the
    /// blocks, the order BLIS (spaCy's numpy backend) and `matrixmultiply` use, so the results
    /// agree to the bit with theirs in practice rather than only to rounding.
    const KC: usize = 256;

    /// Whether this CPU runs the kernel.
    pub fn available() -> bool {
        std::is_x86_feature_detected!("avx512f")
    }

    /// Packs `w` (n × k, row-major) into ⌈n/32⌉ panels of k rows × 32 columns, zero-padded.
    pub fn pack(w: &[f32], n: usize, k: usize) -> Vec<f32> {
        let panels = n.div_ceil(NR);
        let mut p = vec![0f32; panels * k * NR];
        for j in 0..n {
            let (panel, col) = (j / NR, j % NR);
            for kk in 0..k {
                p[(panel * k + kk) * NR + col] = w[j * k + kk];
            }
        }
        p
    }

    /// `c (m × n) = a (m × k) · Bᵀ` with B packed by [`pack`].
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn gemm(a: &[f32], m: usize, k: usize, packed: &[f32], n: usize, c: &mut [f32]) {
        assert!(a.len() >= m * k && c.len() >= m * n);
        assert!(packed.len() >= n.div_ceil(NR) * k * NR);
        let mut i = 0;
        while i < m {
            let rows = (m - i).min(MR);
            let a_block = &a[i * k..(i + rows) * k];
            let c_block = &mut c[i * n..(i + rows) * n];
            // SAFETY: the caller guarantees AVX-512F; the blocks were sliced to `rows` rows.
            unsafe {
                match rows {
                    12 => block::<12>(a_block, k, packed, n, c_block),
                    11 => block::<11>(a_block, k, packed, n, c_block),
                    10 => block::<10>(a_block, k, packed, n, c_block),
                    9 => block::<9>(a_block, k, packed, n, c_block),
                    8 => block::<8>(a_block, k, packed, n, c_block),
                    7 => block::<7>(a_block, k, packed, n, c_block),
                    6 => block::<6>(a_block, k, packed, n, c_block),
                    5 => block::<5>(a_block, k, packed, n, c_block),
                    4 => block::<4>(a_block, k, packed, n, c_block),
                    3 => block::<3>(a_block, k, packed, n, c_block),
                    2 => block::<2>(a_block, k, packed, n, c_block),
                    _ => block::<1>(a_block, k, packed, n, c_block),
                }
            }
            i += rows;
        }
    }

    /// R rows of `a` against every panel.
    #[target_feature(enable = "avx512f")]
    unsafe fn block<const R: usize>(a: &[f32], k: usize, packed: &[f32], n: usize, c: &mut [f32]) {
        for p in 0..n.div_ceil(NR) {
            let panel = &packed[p * k * NR..(p + 1) * k * NR];
            let mut total: [[__m512; 2]; R] = [[_mm512_setzero_ps(); 2]; R];
            let mut kb = 0;
            while kb < k {
                let ke = (kb + KC).min(k);
                let mut acc: [[__m512; 2]; R] = [[_mm512_setzero_ps(); 2]; R];
                for kk in kb..ke {
                    // SAFETY: kk < k, so both 16-float loads lie inside this panel's row kk.
                    let (b0, b1) = unsafe {
                        let row = panel.as_ptr().add(kk * NR);
                        (_mm512_loadu_ps(row), _mm512_loadu_ps(row.add(16)))
                    };
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let x = _mm512_set1_ps(a[r * k + kk]);
                        acc[0] = _mm512_fmadd_ps(x, b0, acc[0]);
                        acc[1] = _mm512_fmadd_ps(x, b1, acc[1]);
                    }
                }
                for (t, acc) in total.iter_mut().zip(&acc) {
                    t[0] = _mm512_add_ps(t[0], acc[0]);
                    t[1] = _mm512_add_ps(t[1], acc[1]);
                }
                kb = ke;
            }
            let cols = (n - p * NR).min(NR);
            for (r, acc) in total.iter().enumerate() {
                let mut tmp = [0f32; NR];
                // SAFETY: tmp holds 32 floats, two stores of 16.
                unsafe {
                    _mm512_storeu_ps(tmp.as_mut_ptr(), acc[0]);
                    _mm512_storeu_ps(tmp.as_mut_ptr().add(16), acc[1]);
                }
                c[r * n + p * NR..r * n + p * NR + cols].copy_from_slice(&tmp[..cols]);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    pub fn available() -> bool {
        false
    }
    pub fn pack(_: &[f32], _: usize, _: usize) -> Vec<f32> {
        Vec::new()
    }
    pub unsafe fn gemm(_: &[f32], _: usize, _: usize, _: &[f32], _: usize, _: &mut [f32]) {
        unreachable!("never packed off x86-64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_equals_ndarray_dot_to_the_bit() {
        // Odd sizes: a partial row block, a partial panel and two blocks of inputs.
        let (m, k, n) = (13, 300, 45);
        let x = Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 7.0 - 0.6);
        let w = Array2::from_shape_fn((n, k), |(i, j)| ((i * 5 + j) % 13) as f32 / 9.0 - 0.7);
        let want = x.dot(&w.t());
        let dense = Dense::new(w);
        let mut buf = Vec::new();
        let got = dense.apply_into(x.view(), &mut buf);
        for (g, w) in got.iter().zip(want.iter()) {
            assert_eq!(g.to_bits(), w.to_bits(), "{g} vs {w}");
        }
    }
}
