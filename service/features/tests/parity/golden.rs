//! Guards `FEATURE_CODE_VERSION`: the 25 handcrafted columns of the first 10 essays of
//! `tests/fixtures/essays/ellipse50.jsonl` (fixed LanguageTool counts per essay, deterministic
//! fake embeddings; no model server, no LanguageTool) against `tests/golden/features.json`.
//! When a value changes, the version must change too, and the file is regenerated with
//!
//! `HEMMA_WRITE_GOLDEN=1 cargo test -p essay-features --test parity golden`

use std::collections::HashMap;
use std::path::PathBuf;

use essay_features::analysis::Analyzer;
use essay_features::{
    COLUMNS, Cancel, ErrorCounts, FEATURE_CODE_VERSION, column_names, embedding_inputs, handcrafted,
};
use serde_json::{Value, json};

use crate::support::{feature_equal, repo_root};

const ESSAYS: usize = 10;
const REGENERATE: &str = "HEMMA_WRITE_GOLDEN=1 cargo test -p essay-features --test parity golden";

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/features.json")
}

/// A deterministic stand-in embedding of `text`: 16 values from a hash of its bytes.
fn fake_embedding(text: &str) -> Vec<f32> {
    let mut state = text.bytes().fold(0x8422_2325_cbf2_9ce4u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) | 1;
    (0..16)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Each essay's id and its 25 columns.
fn computed() -> Vec<(String, [f64; 25])> {
    let analyzer = Analyzer::load(&repo_root().join("models")).expect("the vendored models load");
    let path = repo_root().join("tests/fixtures/essays/ellipse50.jsonl");
    let text = std::fs::read_to_string(&path).expect("the committed essays");
    text.lines()
        .take(ESSAYS)
        .enumerate()
        .map(|(i, line)| {
            let v: Value = serde_json::from_str(line).expect("a JSON line");
            let field = |k: &str| v[k].as_str().expect("a string field").to_owned();
            let (id, prompt, essay) = (field("id"), field("prompt"), field("text"));
            let analysis = analyzer
                .analyse_with(&essay, &Cancel::new())
                .expect("a fixture essay is within the limits");
            let vectors: HashMap<String, Vec<f32>> = embedding_inputs(&analysis, &prompt)
                .into_iter()
                .map(|s| {
                    let e = fake_embedding(&s);
                    (s, e)
                })
                .collect();
            let i = i as u32;
            let counts = ErrorCounts {
                grammar: i,
                spelling: 2 * i + 1,
                punctuation: i % 3,
            };
            let row = handcrafted(&analysis, &prompt, counts, &vectors).expect("every embedding");
            (id, row)
        })
        .collect()
}

fn to_json(rows: &[(String, [f64; 25])]) -> Value {
    let number = |x: f64| if x.is_nan() { Value::Null } else { json!(x) };
    json!({
        "feature_code_version": FEATURE_CODE_VERSION,
        "regenerate": REGENERATE,
        "columns": column_names(),
        "essays": rows.iter().map(|(id, row)| json!({
            "id": id,
            "values": row.iter().map(|&x| number(x)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// What differs between the computed rows and the golden file, described.
fn differences(rows: &[(String, [f64; 25])], golden: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if golden["columns"] != json!(column_names()) {
        out.push("the column names or their order changed".to_owned());
    }
    let essays = golden["essays"].as_array().cloned().unwrap_or_default();
    if essays.len() != rows.len() {
        out.push(format!(
            "{} essays in the file, {} computed",
            essays.len(),
            rows.len()
        ));
    }
    for ((id, row), want) in rows.iter().zip(&essays) {
        if want["id"] != json!(id) {
            out.push(format!("essay {id} where the file has {}", want["id"]));
            continue;
        }
        for (k, (&got, column)) in row.iter().zip(COLUMNS.iter()).enumerate() {
            let expected = want["values"].get(k).and_then(Value::as_f64);
            if !feature_equal(got, expected) {
                out.push(format!("{id} {}: {got} vs {expected:?}", column.name));
            }
        }
    }
    out
}

#[test]
fn golden_values_change_only_with_the_feature_code_version() {
    let rows = computed();
    let path = golden_path();
    if std::env::var("HEMMA_WRITE_GOLDEN").as_deref() == Ok("1") {
        let text = serde_json::to_string_pretty(&to_json(&rows)).expect("JSON") + "\n";
        std::fs::write(&path, text).expect("write the golden file");
        eprintln!("wrote {} (version {FEATURE_CODE_VERSION})", path.display());
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; write it with `{REGENERATE}`", path.display()));
    let golden: Value = serde_json::from_str(&text).expect("the golden file is JSON");
    let version = golden["feature_code_version"].as_u64();
    assert_eq!(
        version,
        Some(u64::from(FEATURE_CODE_VERSION)),
        "FEATURE_CODE_VERSION is {FEATURE_CODE_VERSION} but {} was written for version {version:?}: \
         regenerate it with `{REGENERATE}`",
        path.display()
    );
    let differ = differences(&rows, &golden);
    assert!(
        differ.is_empty(),
        "{} feature values differ from {} while FEATURE_CODE_VERSION is still {FEATURE_CODE_VERSION}: \
         the code now computes other features. Bump essay_features::FEATURE_CODE_VERSION \
         (the server's fingerprint, so no client cache serves the old rows) and regenerate the \
         file with `{REGENERATE}`. Differences:\n{}",
        differ.len(),
        path.display(),
        differ[..differ.len().min(20)].join("\n")
    );
}
