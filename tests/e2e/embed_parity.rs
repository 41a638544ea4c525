//! The Rust tokenizer and both engines against the Python/torch reference of the fixture.

use hemma_e2e::{fixture_dir, max_abs_diff, ort_dylib, reference};
use hemma_embed::candle::{CandleEngine, CandleOptions};
use hemma_embed::ort::{OrtEngine, OrtOptions};
use hemma_embed::tokenize::TextTokenizer;
use hemma_embed::{Engine, TokenBatch};
use hemma_server::config::{Precision, Provider};

/// Engines must match torch this closely on the fixture (fp32).
const TOLERANCE: f32 = 1e-4;

#[test]
fn tokenizer_ids_equal_python_tokenizers() {
    let r = reference();
    let tok =
        TextTokenizer::from_file(&fixture_dir().join("tokenizer.json"), r.max_length).unwrap();
    for case in &r.cases {
        let enc = tok.encode(0, &case.text).unwrap();
        assert_eq!(enc.ids, case.ids, "case {}", case.name);
        assert_eq!(
            enc.truncated,
            case.name == "long_essay",
            "case {}",
            case.name
        );
    }
    for t in &r.truncation {
        let tok =
            TextTokenizer::from_file(&fixture_dir().join("tokenizer.json"), t.max_length).unwrap();
        let enc = tok.encode(0, &t.text).unwrap();
        assert_eq!(enc.ids, t.ids, "truncation at {}", t.max_length);
        assert_eq!(enc.ids.first(), Some(&1), "[CLS] kept");
        assert_eq!(enc.ids.last(), Some(&2), "[SEP] kept");
    }
}

fn ort_engine(precision: Precision) -> OrtEngine {
    let file = match precision {
        Precision::Fp32 => "model.onnx",
        Precision::Fp16 => "model.fp16.onnx",
    };
    OrtEngine::load(&OrtOptions {
        model: fixture_dir().join(file),
        model_sha256: String::new(),
        dylib: Some(ort_dylib()),
        provider: Provider::Cpu,
        device_id: 0,
        precision,
        threads: 1,
        dim: reference().dim,
    })
    .unwrap()
}

fn candle_engine() -> CandleEngine {
    CandleEngine::load(&CandleOptions {
        weights: fixture_dir().join("model.safetensors"),
        weights_sha256: String::new(),
        config: fixture_dir().join("config.json"),
        threads: 1,
        dim: reference().dim,
    })
    .unwrap()
}

/// Every single-text case, then the padded batch, within `tolerance` of torch.
fn assert_matches_torch(engine: &mut dyn Engine, tolerance: f32) {
    let r = reference();
    let name = engine.info().engine;
    for case in &r.cases {
        let out = engine.embed(&TokenBatch::pad(&[&case.ids])).unwrap();
        let diff = max_abs_diff(out.row(0).as_slice().unwrap(), &case.cls);
        assert!(
            diff <= tolerance,
            "{name} case {}: max abs diff {diff}",
            case.name
        );
    }
    let rows: Vec<&[u32]> = r.batch.ids.iter().map(|v| v.as_slice()).collect();
    let out = engine.embed(&TokenBatch::pad(&rows)).unwrap();
    for (i, want) in r.batch.cls.iter().enumerate() {
        let diff = max_abs_diff(out.row(i).as_slice().unwrap(), want);
        assert!(
            diff <= tolerance,
            "{name} padded batch row {i}: max abs diff {diff}"
        );
    }
}

#[test]
fn ort_cpu_matches_torch() {
    assert_matches_torch(&mut ort_engine(Precision::Fp32), TOLERANCE);
}

#[test]
fn candle_matches_torch() {
    assert_matches_torch(&mut candle_engine(), TOLERANCE);
}

#[test]
fn ort_fp16_export_stays_close_to_torch() {
    // fp16 weights round every matmul; the export script measured ~1e-2 on this model.
    assert_matches_torch(&mut ort_engine(Precision::Fp16), 5e-2);
}
