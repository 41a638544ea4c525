//! Typed answers of `Extract` and `ExtractStream`: decoded matrices, names and stage timings.

use hemma_proto::v1::{ExtractResponse, RowStatus, StageTimings};
use ndarray::Array2;

use crate::ClientError;

/// One decoded extraction, rows in request order.
#[derive(Debug, Clone)]
pub struct Extraction {
    /// [texts, dim] (f16 answers are widened); None for the handcrafted set.
    pub embeddings: Option<Array2<f32>>,
    /// [texts, 25], NaN kept; None for the embeddings set.
    pub handcrafted: Option<Array2<f32>>,
    /// Names of the embedding columns.
    pub embedding_names: Vec<String>,
    /// Names of the handcrafted columns (docs/features.md order).
    pub handcrafted_names: Vec<String>,
    /// Feature schema version.
    pub schema_version: u32,
    /// Server fingerprint the rows belong to.
    pub fingerprint: String,
    /// Per-stage seconds of the call.
    pub timings: StageTimings,
    /// Rows whose text exceeded the analyser's limits (NaN handcrafted features), by index.
    pub limited: Vec<RowStatus>,
}

impl Extraction {
    /// Decodes `resp`, checking that each matrix present has `rows` rows and its names fit.
    pub fn decode(resp: ExtractResponse, rows: usize) -> Result<Extraction, ClientError> {
        let embeddings = resp
            .embeddings
            .as_ref()
            .map(|m| matrix(m, rows, "embeddings"))
            .transpose()?;
        let handcrafted = resp
            .handcrafted
            .as_ref()
            .map(|m| matrix(m, rows, "handcrafted"))
            .transpose()?;
        if let Some(h) = &handcrafted
            && h.ncols() != resp.handcrafted_feature_names.len()
        {
            return Err(ClientError::Malformed(format!(
                "{} handcrafted columns but {} names",
                h.ncols(),
                resp.handcrafted_feature_names.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for status in &resp.limited_rows {
            if status.index as usize >= rows || !seen.insert(status.index) {
                return Err(ClientError::Malformed(format!(
                    "row status for row {} of {rows} (out of range or repeated)",
                    status.index
                )));
            }
        }
        Ok(Extraction {
            limited: resp.limited_rows,
            embeddings,
            handcrafted,
            embedding_names: resp.embedding_feature_names,
            handcrafted_names: resp.handcrafted_feature_names,
            schema_version: resp.schema_version,
            fingerprint: resp.fingerprint,
            timings: resp.timings.unwrap_or_default(),
        })
    }
}

fn matrix(
    m: &hemma_proto::v1::Matrix,
    rows: usize,
    what: &str,
) -> Result<Array2<f32>, ClientError> {
    if m.rows as usize != rows {
        return Err(ClientError::Malformed(format!(
            "{what}: {} rows for {rows} texts",
            m.rows
        )));
    }
    let values = hemma_proto::matrix::decode(m)
        .map_err(|e| ClientError::Malformed(format!("{what}: {e}")))?;
    Array2::from_shape_vec((rows, m.cols as usize), values)
        .map_err(|e| ClientError::Malformed(format!("{what}: {e}")))
}
