//! `nlp-parity`: prints the parity table of the native spaCy port against spaCy's own output:
//! the committed stress fixture always, and the team's oracle (600 token-level essays, 2,284
//! essays' features) when it is on this machine (`../shared/data`, or `$HEMMA_ORACLE_DIR` and
//! `$HEMMA_ESSAYS_FILE`). Exits 1 when a threshold is missed.
//!
//! `cargo run --release -p essay-features --example nlp-parity`

#[path = "../tests/parity/support.rs"]
mod support;

use anyhow::{Context, Result};
use essay_features::analysis::Analyzer;
use support::{
    RefSet, compare_features, compare_tokens, load_oracle, load_stress, oracle_paths, repo_root,
    table,
};

fn main() -> Result<()> {
    let analyzer =
        Analyzer::load(&repo_root().join("models")).context("load the vendored spaCy model")?;
    let mut sets: Vec<(String, RefSet)> = vec![(
        "stress texts + edge cases (tests/fixtures/nlp/stress.jsonl.gz)".into(),
        load_stress()?,
    )];
    match load_oracle(usize::MAX, usize::MAX)? {
        Some(set) => sets.push(("ELLIPSE oracle (shared/data/oracle)".into(), set)),
        None => {
            let (dir, essays) = oracle_paths();
            eprintln!(
                "the team's oracle is not at {} / {}: only the stress fixture is compared",
                dir.display(),
                essays.display()
            );
        }
    }
    let mut ok = true;
    for (name, set) in &sets {
        let tokens = compare_tokens(analyzer.pipeline(), &set.docs)?;
        let features = compare_features(&analyzer, &set.features)?;
        println!("{}", table(name, &tokens, &features));
        for line in tokens
            .tokenization_differs
            .iter()
            .chain(&tokens.examples)
            .chain(features.differ.iter().take(20))
        {
            println!("  {line}");
        }
        let fields_ok = (0..5).all(|f| tokens.equal_percent(f) >= 99.99);
        ok &= tokens.tokenization_differs.is_empty() && fields_ok && features.differ.is_empty();
    }
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
