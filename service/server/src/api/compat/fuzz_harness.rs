//! The harness of the `compat_request` fuzz target (`service/server/fuzz/`), shared with the
//! replay test below that runs every file of `service/server/fuzz/corpus/compat_request/` in
//! `cargo test` (docs/fuzzing.md). Not part of the crate's API.
//!
//! It takes a body through the steps the two routes run before they need the loaded model, with
//! the routes' own types and functions (`parse`, `ExtractBody`, `EmbedBody`, `validate`,
//! `ApiError`), in the routes' order; keep the two in step when a route changes.

use axum::http::{StatusCode, header};
use serde_json::Value;

use super::{ApiError, EmbedBody, ExtractBody, parse, validate};
use crate::config::RequestLimits;
use crate::extract::{FeatureSet, Job};

/// Limits small enough for short inputs to reach every refusal.
const TIGHT: RequestLimits = RequestLimits {
    max_items_per_request: 3,
    max_bytes_per_text: 16,
    max_bytes_per_request: 40,
    max_message_bytes: 4096,
    max_strings_per_request: 8,
};

/// The defaults of `hemma-offload serve`.
const SERVED: RequestLimits = RequestLimits {
    max_items_per_request: 256,
    max_bytes_per_text: 200_000,
    max_bytes_per_request: 8 << 20,
    max_message_bytes: 64 << 20,
    max_strings_per_request: 131_072,
};

/// Reads `bytes` as the body of `POST /v1/extract` and of `POST /v1/embed`, under tight and
/// under the default limits. Panics when a step panics or breaks its promises: an accepted
/// extraction has one prompt per text for the handcrafted sets (none for embeddings) and stays
/// under the limits; a refusal is a 400 or 413 whose body is the documented JSON error
/// (`schema_version`, `error`, a non-empty `detail`, `correlation_id`, `extra`).
pub fn compat_request(bytes: &[u8]) {
    for limits in [TIGHT, SERVED] {
        match extract_job(bytes, &limits) {
            Ok(job) => {
                assert_within(&job.texts, &job.prompts, &limits);
                match job.set {
                    FeatureSet::Embeddings => assert!(job.prompts.is_empty()),
                    _ => assert_eq!(job.prompts.len(), job.texts.len()),
                }
            }
            Err(e) => check_refusal(e),
        }
        match embed_texts(bytes, &limits) {
            Ok(texts) => assert_within(&texts, &[], &limits),
            Err(e) => check_refusal(e),
        }
    }
}

/// `/v1/extract` up to the extractor.
fn extract_job(bytes: &[u8], limits: &RequestLimits) -> Result<Job, ApiError> {
    let body: ExtractBody = parse(bytes)?;
    let set = FeatureSet::from_name(&body.feature_set)
        .ok_or_else(|| ApiError::invalid(format!("feature_set {:?}", body.feature_set)))?;
    if body.prompts.len() != body.texts.len() {
        return Err(ApiError::invalid("one prompt per text"));
    }
    validate::job(
        set,
        body.texts,
        body.prompts,
        limits,
        validate::EmptyPrompt::Allow,
    )
    .map_err(ApiError::refused)
}

/// `/v1/embed` up to the embedder, without the model checks (they need the loaded model).
fn embed_texts(bytes: &[u8], limits: &RequestLimits) -> Result<Vec<String>, ApiError> {
    let body: EmbedBody = parse(bytes)?;
    validate::texts(&body.texts, limits).map_err(ApiError::refused)?;
    Ok(body.texts)
}

fn assert_within(texts: &[String], prompts: &[String], limits: &RequestLimits) {
    assert!(!texts.is_empty() && texts.len() <= limits.max_items_per_request);
    let each = texts.iter().chain(prompts).map(String::len);
    assert!(each.clone().all(|n| n <= limits.max_bytes_per_text));
    assert!(each.sum::<usize>() <= limits.max_bytes_per_request);
}

fn check_refusal(e: ApiError) {
    let (status, error) = (e.status, e.error);
    assert!(
        matches!(
            (status, error),
            (StatusCode::BAD_REQUEST, "invalid_request")
                | (StatusCode::PAYLOAD_TOO_LARGE, "too_many_items")
                | (StatusCode::PAYLOAD_TOO_LARGE, "request_too_large")
        ),
        "{status} {error}: {}",
        e.detail
    );
    let response = e.into_response("fuzz");
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers().get(header::CONTENT_TYPE).unwrap(),
        "application/json"
    );
    let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
        .expect("the error body is in memory");
    let json: Value = serde_json::from_slice(&body).expect("the error body is JSON");
    assert_eq!(json["schema_version"], hemma_proto::SCHEMA_VERSION);
    assert_eq!(json["error"], error);
    assert!(json["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(json["correlation_id"], "fuzz");
    assert!(json["extra"].is_object());
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every file of the committed corpus, regressions included, through the fuzz harness.
    #[test]
    fn the_committed_fuzz_corpus_replays() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/compat_request");
        hemma_proto::fuzz_harness::replay_corpus(&dir, super::compat_request);
    }
}
