//! Pooling of a last hidden state into one vector per sequence.

use ndarray::{Array2, ArrayView3, s};

/// [CLS] pooling: row 0 of each sequence's last hidden state, [rows, seq, dim] -> [rows, dim].
pub fn cls(hidden: ArrayView3<'_, f32>) -> Array2<f32> {
    hidden.slice(s![.., 0, ..]).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn takes_position_zero_of_every_row() {
        let h = Array3::from_shape_fn((2, 3, 2), |(b, t, d)| (b * 100 + t * 10 + d) as f32);
        assert_eq!(cls(h.view()), ndarray::array![[0.0, 1.0], [100.0, 101.0]]);
    }
}
