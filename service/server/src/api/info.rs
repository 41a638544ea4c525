//! The `Info` answer: what the server runs (model, engine, limits, feature names) and the
//! fingerprint over everything that changes a feature value.

use hemma_embed::model::ModelDir;
use hemma_embed::queue::Embedder;
use hemma_proto::v1::{InfoResponse, Limits, ModelInfo};

use crate::config::Config;
use crate::fingerprint::{self, EmbeddingIdentity, FingerprintInputs, LanguageToolIdentity};

/// Builds `Info` once the engine is loaded (and LanguageTool, when configured, answered).
pub fn info_response(
    config: &Config,
    model: &ModelDir,
    identity: &EmbeddingIdentity,
    embedder: &Embedder,
    nlp_sha256: &str,
    languagetool: Option<LanguageToolIdentity>,
) -> InfoResponse {
    let engine = embedder.info();
    let names = fingerprint::embedding_feature_names(engine.dim);
    let handcrafted: Vec<String> = essay_features::column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let fingerprint = fingerprint::fingerprint(&FingerprintInputs {
        schema_version: hemma_proto::SCHEMA_VERSION,
        embedding: identity.clone(),
        languagetool: languagetool.clone(),
        nlp_sha256: nlp_sha256.to_owned(),
        feature_names: names.clone(),
        handcrafted_feature_names: handcrafted.clone(),
        server_version: env!("CARGO_PKG_VERSION").into(),
        feature_code_version: essay_features::FEATURE_CODE_VERSION,
        limits: essay_features::LIMITS.id(),
    });
    InfoResponse {
        schema_version: hemma_proto::SCHEMA_VERSION,
        fingerprint,
        model: Some(ModelInfo {
            model_id: model.manifest().model_id.clone(),
            model_sha256: identity.model_sha256.clone(),
            tokenizer_sha256: identity.tokenizer_sha256.clone(),
            max_length: identity.max_length as u32,
            pooling: identity.pooling.clone(),
            dim: engine.dim as u32,
            engine: engine.engine.clone(),
            execution_provider: engine.provider.clone(),
            precision: engine.precision.clone(),
        }),
        languagetool_version: languagetool.map(|l| l.version).unwrap_or_default(),
        embedding_feature_names: names,
        limits: Some(Limits {
            max_items_per_request: config.limits.max_items_per_request as u32,
            max_bytes_per_text: config.limits.max_bytes_per_text as u64,
            max_bytes_per_request: config.limits.max_bytes_per_request as u64,
            max_message_bytes: config.limits.max_message_bytes as u64,
        }),
        server_version: env!("CARGO_PKG_VERSION").into(),
        git_sha: env!("HEMMA_GIT_SHA").into(),
        handcrafted_feature_names: handcrafted,
        nlp_sha256: nlp_sha256.to_owned(),
    }
}
