//! The wire layout of [`Matrix`]: little-endian, row-major, f32 or f16.

use crate::v1::{Dtype, Matrix};

/// Why a received [`Matrix`] cannot be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MatrixError {
    /// `data` does not hold `rows * cols` elements of the dtype.
    #[error("matrix of {rows}x{cols} {dtype:?} needs {expected} bytes but carries {actual}")]
    Size {
        /// Declared rows.
        rows: u32,
        /// Declared columns.
        cols: u32,
        /// Declared element type.
        dtype: Dtype,
        /// Bytes the shape needs (a u128: 2^32 x 2^32 x 4 does not fit in 64 bits).
        expected: u128,
        /// Bytes received.
        actual: usize,
    },
    /// The dtype field holds a value this version does not know.
    #[error("unknown matrix dtype {0}")]
    UnknownDType(i32),
}

/// Encodes `values` (row-major, `rows * cols` long) as a [`Matrix`] of `dtype`.
///
/// `Dtype::Unspecified` is encoded as f32.
pub fn encode(values: &[f32], rows: usize, cols: usize, dtype: Dtype) -> Matrix {
    debug_assert_eq!(
        values.len(),
        rows * cols,
        "matrix shape must match its values"
    );
    let (dtype, data) = match dtype {
        Dtype::F16 => (
            Dtype::F16,
            values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect(),
        ),
        Dtype::F32 | Dtype::Unspecified => (
            Dtype::F32,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
    };
    Matrix {
        rows: rows as u32,
        cols: cols as u32,
        dtype: dtype as i32,
        data,
    }
}

/// Decodes a [`Matrix`] into row-major f32 values, checking that its size matches its shape.
pub fn decode(matrix: &Matrix) -> Result<Vec<f32>, MatrixError> {
    let dtype =
        Dtype::try_from(matrix.dtype).map_err(|_| MatrixError::UnknownDType(matrix.dtype))?;
    let width = match dtype {
        Dtype::F16 => 2,
        Dtype::F32 | Dtype::Unspecified => 4,
    };
    // Exact for every u32 shape: a huge shape is refused, never wrapped into a small one.
    let expected = u128::from(matrix.rows) * u128::from(matrix.cols) * width;
    if matrix.data.len() as u128 != expected {
        return Err(MatrixError::Size {
            rows: matrix.rows,
            cols: matrix.cols,
            dtype,
            expected,
            actual: matrix.data.len(),
        });
    }
    Ok(match dtype {
        Dtype::F16 => matrix
            .data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::F32 | Dtype::Unspecified => matrix
            .data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_round_trip_is_exact_and_little_endian() {
        let m = encode(&[1.0, -2.5, 3.25, 0.0], 2, 2, Dtype::F32);
        assert_eq!(&m.data[..4], &1.0f32.to_le_bytes());
        assert_eq!(decode(&m).unwrap(), vec![1.0, -2.5, 3.25, 0.0]);
    }

    #[test]
    fn f16_halves_the_bytes_and_rounds() {
        let m = encode(&[0.1, 1000.0], 1, 2, Dtype::F16);
        assert_eq!(m.data.len(), 4);
        let back = decode(&m).unwrap();
        assert!((back[0] - 0.1).abs() < 1e-3);
        assert_eq!(back[1], 1000.0);
    }

    /// Found by the `matrix_decode` fuzz target (corpus file `regression-size-overflow`): rows x
    /// cols x 4 overflowed usize, a panic in debug builds and in release a wrapped size that let
    /// a 2^31 x 2^31 matrix pass with no data.
    #[test]
    fn a_huge_shape_is_refused_not_wrapped() {
        for (rows, cols, dtype) in [
            (1 << 31, 1 << 31, Dtype::F32),
            (1 << 31, 1 << 31, Dtype::F16),
            (u32::MAX, u32::MAX, Dtype::F32),
            (0xFFFF_F73B, 0x6301_0000, Dtype::Unspecified),
        ] {
            let m = Matrix {
                rows,
                cols,
                dtype: dtype as i32,
                data: Vec::new(),
            };
            match decode(&m) {
                Err(MatrixError::Size {
                    expected, actual, ..
                }) => {
                    assert!(expected > u128::from(u64::MAX) / 4 && actual == 0);
                }
                other => panic!("{rows}x{cols}: {other:?}"),
            }
        }
    }

    #[test]
    fn wrong_size_is_an_error_naming_the_shape() {
        let mut m = encode(&[1.0, 2.0], 1, 2, Dtype::F32);
        m.data.pop();
        let err = decode(&m).unwrap_err();
        assert!(err.to_string().contains("1x2"), "{err}");
    }
}
