//! `spm.model` -> `tokenizer.json`: the DeBERTa-v3 fast tokenizer built from a sentencepiece
//! unigram model, the same JSON transformers 4.x's `DebertaV2Converter` writes (normalizer
//! Strip + the model's precompiled charsmap + Replace(" {2,}" -> " "), Metaspace "▁" always,
//! Unigram over the pieces and scores, "[CLS] $A [SEP]", the special tokens [PAD] [CLS] [SEP]
//! [UNK] [MASK]). The sentencepiece protobuf is read with prost; only the fields used are declared.

use base64::Engine as _;
use prost::Message;
use serde_json::{Value, json};

/// Why a sentencepiece model cannot be converted.
#[derive(Debug, thiserror::Error)]
pub enum SpmError {
    /// The bytes are not a sentencepiece ModelProto.
    #[error("not a sentencepiece model: {0}")]
    Decode(#[from] prost::DecodeError),
    /// Another algorithm than unigram (DeBERTa-v3 uses unigram).
    #[error("sentencepiece model type {0} is not unigram (1); DeBERTa-v3 models are unigram")]
    ModelType(i32),
    /// A special token DeBERTa needs is missing.
    #[error(
        "the sentencepiece model has no `{0}` piece (a DeBERTa-v3 spm.model has [PAD] [CLS] [SEP] [UNK] as its first pieces)"
    )]
    MissingSpecial(&'static str),
    /// The tokenizers library refused the result.
    #[error("the converted tokenizer does not load: {0}")]
    Tokenizer(String),
}

/// `sentencepiece_model.proto` ModelProto (fields 1-3).
#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(message, repeated, tag = "1")]
    pieces: Vec<SentencePiece>,
    #[prost(message, optional, tag = "2")]
    trainer_spec: Option<TrainerSpec>,
    #[prost(message, optional, tag = "3")]
    normalizer_spec: Option<NormalizerSpec>,
}

/// ModelProto.SentencePiece.
#[derive(Clone, PartialEq, Message)]
struct SentencePiece {
    #[prost(string, optional, tag = "1")]
    piece: Option<String>,
    #[prost(float, optional, tag = "2")]
    score: Option<f32>,
}

/// TrainerSpec: model_type (3), byte_fallback (35), unk_id (40).
#[derive(Clone, PartialEq, Message)]
struct TrainerSpec {
    #[prost(int32, optional, tag = "3")]
    model_type: Option<i32>,
    #[prost(bool, optional, tag = "35")]
    byte_fallback: Option<bool>,
    #[prost(int32, optional, tag = "40")]
    unk_id: Option<i32>,
}

/// NormalizerSpec: precompiled_charsmap (2).
#[derive(Clone, PartialEq, Message)]
struct NormalizerSpec {
    #[prost(bytes = "vec", optional, tag = "2")]
    precompiled_charsmap: Option<Vec<u8>>,
}

const METASPACE: &str = "\u{2581}";
/// Special tokens of DeBERTa-v3, in id order; `[UNK]` is the one normalised.
const SPECIALS: [&str; 5] = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"];

/// The `tokenizer.json` value for the sentencepiece model `bytes`.
pub fn tokenizer_json(bytes: &[u8]) -> Result<Value, SpmError> {
    let model = ModelProto::decode(bytes)?;
    let trainer = model.trainer_spec.clone().unwrap_or_default();
    let model_type = trainer.model_type.unwrap_or(1);
    if model_type != 1 {
        return Err(SpmError::ModelType(model_type));
    }
    let vocab: Vec<Value> = model
        .pieces
        .iter()
        .map(|p| {
            json!([
                p.piece.clone().unwrap_or_default(),
                f64::from(p.score.unwrap_or(0.0))
            ])
        })
        .collect();
    let id_of = |name: &str| {
        model
            .pieces
            .iter()
            .position(|p| p.piece.as_deref() == Some(name))
    };
    let mut next = model.pieces.len();
    let mut added = Vec::new();
    let mut ids = std::collections::HashMap::new();
    for name in SPECIALS {
        let id = match id_of(name) {
            Some(id) => id,
            None if name == "[MASK]" => {
                next += 1;
                next - 1
            }
            None => return Err(SpmError::MissingSpecial(name)),
        };
        ids.insert(name, id);
        added.push(json!({
            "id": id, "content": name, "single_word": false, "lstrip": false, "rstrip": false,
            "normalized": name == "[UNK]", "special": true,
        }));
    }
    let mut normalizers = vec![json!({"type": "Strip", "strip_left": true, "strip_right": true})];
    if let Some(map) = model
        .normalizer_spec
        .and_then(|n| n.precompiled_charsmap)
        .filter(|m| !m.is_empty())
    {
        let encoded = base64::engine::general_purpose::STANDARD.encode(map);
        normalizers.push(json!({"type": "Precompiled", "precompiled_charsmap": encoded}));
    }
    normalizers.push(json!({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}));
    let metaspace = json!({"type": "Metaspace", "replacement": METASPACE, "prepend_scheme": "always", "split": true});
    let special = |name: &str| json!({"id": name, "ids": [ids[name]], "tokens": [name]});
    let value = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [metaspace.clone()]},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 1}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 1}},
            ],
            "special_tokens": {"[CLS]": special("[CLS]"), "[SEP]": special("[SEP]")},
        },
        "decoder": metaspace,
        "model": {
            "type": "Unigram",
            "unk_id": trainer.unk_id.unwrap_or(0),
            "vocab": vocab,
            "byte_fallback": trainer.byte_fallback.unwrap_or(false),
        },
    });
    // The tokenizers library must accept what we write.
    tokenizers::Tokenizer::from_bytes(value.to_string().as_bytes())
        .map_err(|e| SpmError::Tokenizer(e.to_string()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/tiny-deberta")
            .join(name)
    }

    #[test]
    fn the_fixture_spm_converts_to_the_python_converters_tokenizer_json() {
        let spm = std::fs::read(fixture("spm.model")).unwrap();
        let ours = tokenizer_json(&spm).unwrap();
        let text = std::fs::read_to_string(fixture("tokenizer.json")).unwrap();
        let theirs: Value = serde_json::from_str(&text).unwrap();
        for key in [
            "version",
            "truncation",
            "padding",
            "added_tokens",
            "normalizer",
            "pre_tokenizer",
            "post_processor",
            "decoder",
        ] {
            assert!(
                ours[key] == theirs[key],
                "{key} differs from transformers' conversion"
            );
        }
        let (a, b) = (&ours["model"], &theirs["model"]);
        for key in ["type", "unk_id", "byte_fallback"] {
            assert_eq!(a[key], b[key], "model.{key}");
        }
        let (va, vb) = (
            a["vocab"].as_array().unwrap(),
            b["vocab"].as_array().unwrap(),
        );
        assert_eq!(va.len(), vb.len());
        for (x, y) in va.iter().zip(vb) {
            assert_eq!(x[0], y[0], "piece");
            // Scores are sentencepiece f32s; serde_json's default float parsing may be off by an
            // ulp of f64, so compare them as the f32s they are.
            let (sa, sb) = (x[1].as_f64().unwrap() as f32, y[1].as_f64().unwrap() as f32);
            assert!(sa == sb, "score of {}: {sa} vs {sb}", x[0]);
        }
        assert_eq!(
            ours.as_object().unwrap().len(),
            theirs.as_object().unwrap().len()
        );
    }

    #[test]
    fn not_a_model_is_refused() {
        assert!(tokenizer_json(b"\xff\xff\xff\xff not protobuf").is_err());
    }
}
