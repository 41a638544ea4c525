//! The harness of the `matrix_decode` fuzz target (`proto/fuzz/`), shared with the replay test
//! below that runs every file of `proto/fuzz/corpus/matrix_decode/` in `cargo test`
//! (docs/fuzzing.md). Not part of the crate's API.

use prost::Message;

use crate::matrix::{MatrixError, decode, encode};
use crate::v1::{Dtype, Matrix};

/// Decodes a [`Matrix`] built from `bytes` twice: from a fixed layout (rows, cols and dtype as
/// little-endian 32-bit words, zero-padded, then the data) and from the bytes as a protobuf
/// message, the way one arrives. Panics when [`decode`] panics or breaks its contract: a result
/// holds exactly `rows * cols` values and never more than the data implies, re-encodes to the
/// same bytes (f32 exactly, f16 up to NaN payloads), and an error names the matrix as sent.
pub fn matrix_decode(bytes: &[u8]) {
    let word = |at: usize| {
        let mut w = [0u8; 4];
        for (i, b) in w.iter_mut().enumerate() {
            *b = bytes.get(at + i).copied().unwrap_or(0);
        }
        w
    };
    let laid_out = Matrix {
        rows: u32::from_le_bytes(word(0)),
        cols: u32::from_le_bytes(word(4)),
        dtype: i32::from_le_bytes(word(8)),
        data: bytes.get(12..).unwrap_or_default().to_vec(),
    };
    check(&laid_out);
    if let Ok(wire) = Matrix::decode(bytes) {
        check(&wire);
    }
}

fn check(m: &Matrix) {
    let width = match Dtype::try_from(m.dtype) {
        Ok(Dtype::F16) => 2,
        Ok(Dtype::F32 | Dtype::Unspecified) => 4,
        Err(_) => {
            assert_eq!(decode(m), Err(MatrixError::UnknownDType(m.dtype)));
            return;
        }
    };
    let cells = u128::from(m.rows) * u128::from(m.cols);
    match decode(m) {
        Ok(values) => {
            assert_eq!(values.len() as u128, cells, "{}x{}", m.rows, m.cols);
            assert_eq!(
                values.len() * width,
                m.data.len(),
                "no value beyond the data"
            );
            let dtype = if width == 2 { Dtype::F16 } else { Dtype::F32 };
            let again = encode(&values, m.rows as usize, m.cols as usize, dtype);
            assert_eq!((again.rows, again.cols), (m.rows, m.cols));
            assert_eq!(again.data.len(), m.data.len());
            if width == 4 {
                assert_eq!(again.data, m.data, "f32 round trip is bit-exact");
            } else {
                for (a, b) in again.data.chunks_exact(2).zip(m.data.chunks_exact(2)) {
                    let (a, b) = (
                        half::f16::from_le_bytes([a[0], a[1]]),
                        half::f16::from_le_bytes([b[0], b[1]]),
                    );
                    assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
                }
            }
        }
        Err(MatrixError::Size {
            rows,
            cols,
            expected,
            actual,
            ..
        }) => {
            assert_eq!((rows, cols, actual), (m.rows, m.cols, m.data.len()));
            assert_eq!(
                expected,
                cells * width as u128,
                "the size a {rows}x{cols} shape needs"
            );
            assert_ne!(expected, actual as u128, "refused a matching size");
        }
        Err(e) => panic!("unexpected error for dtype {}: {e}", m.dtype),
    }
}

/// Runs `harness` on every file of the committed corpus `dir` (at least 5, in name order) and
/// panics naming the first file it fails on: the replay test of each crate's fuzz target.
pub fn replay_corpus(dir: &std::path::Path, mut harness: impl FnMut(&[u8])) {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "{}: {} corpus files",
        dir.display(),
        files.len()
    );
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| harness(&bytes)));
        assert!(run.is_ok(), "corpus file {} fails", f.display());
    }
}

#[cfg(test)]
mod tests {
    /// Every file of the committed corpus, regressions included, through the fuzz harness.
    #[test]
    fn the_committed_fuzz_corpus_replays() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/matrix_decode");
        super::replay_corpus(&dir, super::matrix_decode);
    }
}
