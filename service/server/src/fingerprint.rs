//! The server fingerprint: sha256 over canonical JSON of everything that changes a feature value.
//!
//! Clients key their caches on it, so any change to the model, tokenizer, truncation, pooling,
//! precision, engine or device, the NLP model files, LanguageTool's version or options, the
//! feature names, the feature code's version, the analyser's limits or the server's version yields
//! a new fingerprint and never serves stale features.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// What the embedding features depend on.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingIdentity {
    /// sha256 of the weight file.
    pub model_sha256: String,
    /// sha256 of tokenizer.json.
    pub tokenizer_sha256: String,
    /// Truncation length, special tokens included.
    pub max_length: usize,
    /// Pooling (`cls`).
    pub pooling: String,
    /// `fp32` or `fp16`.
    pub precision: String,
    /// `ort` or `candle`: engines round differently.
    pub engine: String,
    /// The execution provider (`cpu`, `cuda`, `migraphx`, `rocm`): devices round differently.
    pub execution_provider: String,
}

/// What the LanguageTool-derived features depend on.
#[derive(Debug, Clone, Serialize)]
pub struct LanguageToolIdentity {
    /// The version the upstream reports.
    pub version: String,
    /// Language, level and rule/category selections.
    pub options: languagetool_pool::CheckOptions,
    /// Longest piece a text is checked in (`languagetool_pool::MAX_PART_UTF16`): longer texts
    /// are split, which can change their matches at the cuts.
    pub max_part_utf16: usize,
}

/// Everything the fingerprint covers.
#[derive(Debug, Clone, Serialize)]
pub struct FingerprintInputs {
    /// Feature schema version.
    pub schema_version: u32,
    /// The embedding model.
    pub embedding: EmbeddingIdentity,
    /// LanguageTool, when configured (absent: the field is left out of the hash input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub languagetool: Option<LanguageToolIdentity>,
    /// sha256 of the native NLP model files (spaCy port and hyphenation patterns).
    pub nlp_sha256: String,
    /// Embedding feature names in order.
    pub feature_names: Vec<String>,
    /// Handcrafted feature names in order.
    pub handcrafted_feature_names: Vec<String>,
    /// The server's version.
    pub server_version: String,
    /// Version of the code computing the handcrafted features (`essay_features::FEATURE_CODE_VERSION`,
    /// bumped whenever a value can change; a golden-values test guards it).
    pub feature_code_version: u32,
    /// The analyser's per-text limits (`essay_features::LIMITS`): they decide which rows are NaN.
    pub limits: String,
}

/// Hex sha256 of the canonical JSON (keys sorted, no whitespace) of `inputs`.
pub fn fingerprint(inputs: &FingerprintInputs) -> String {
    // Going through `Value` sorts object keys (serde_json's map is a BTreeMap).
    let value = serde_json::to_value(inputs).expect("fingerprint inputs are plain data");
    let canonical = value.to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// `embedding_000 .. embedding_{dim-1}`.
pub fn embedding_feature_names(dim: usize) -> Vec<String> {
    (0..dim).map(|i| format!("embedding_{i:03}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> FingerprintInputs {
        FingerprintInputs {
            schema_version: 1,
            embedding: EmbeddingIdentity {
                model_sha256: "a".into(),
                tokenizer_sha256: "b".into(),
                max_length: 512,
                pooling: "cls".into(),
                precision: "fp32".into(),
                engine: "ort".into(),
                execution_provider: "cpu".into(),
            },
            languagetool: None,
            nlp_sha256: "c".into(),
            feature_names: embedding_feature_names(2),
            handcrafted_feature_names: vec!["word_count".into()],
            server_version: "0.1.0".into(),
            feature_code_version: 1,
            limits: "tokens<=20000".into(),
        }
    }

    #[test]
    fn stable_and_sensitive_to_every_input() {
        let base = fingerprint(&inputs());
        assert_eq!(base, fingerprint(&inputs()));
        assert_eq!(base.len(), 64);
        let mut changed = inputs();
        changed.embedding.max_length = 256;
        assert_ne!(base, fingerprint(&changed));
        let mut changed = inputs();
        changed.embedding.precision = "fp16".into();
        assert_ne!(base, fingerprint(&changed));
        let mut changed = inputs();
        changed.embedding.execution_provider = "migraphx".into();
        assert_ne!(base, fingerprint(&changed));
        let mut changed = inputs();
        changed.nlp_sha256 = "d".into();
        assert_ne!(base, fingerprint(&changed));
        let mut changed = inputs();
        changed.handcrafted_feature_names.push("ttr".into());
        assert_ne!(base, fingerprint(&changed));
        let mut changed = inputs();
        changed.server_version = "0.2.0".into();
        assert_ne!(base, fingerprint(&changed));
        let mut changed = inputs();
        changed.feature_code_version = 2;
        assert_ne!(base, fingerprint(&changed));
        let mut changed = inputs();
        changed.limits = "tokens<=10000".into();
        assert_ne!(base, fingerprint(&changed));
        let with_lt = |version: &str, level: &str| {
            let mut c = inputs();
            c.languagetool = Some(LanguageToolIdentity {
                version: version.into(),
                options: languagetool_pool::CheckOptions {
                    level: level.into(),
                    ..Default::default()
                },
                max_part_utf16: 20_000,
            });
            fingerprint(&c)
        };
        assert_ne!(base, with_lt("6.7", "default"));
        assert_ne!(with_lt("6.7", "default"), with_lt("6.8", "default"));
        assert_ne!(with_lt("6.7", "default"), with_lt("6.7", "picky"));
    }

    #[test]
    fn names_are_zero_padded() {
        assert_eq!(embedding_feature_names(768)[7], "embedding_007");
        assert_eq!(embedding_feature_names(768)[767], "embedding_767");
    }
}
