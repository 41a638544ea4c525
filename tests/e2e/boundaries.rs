//! The workspace's crate boundaries (`docs/architecture.md`), checked on the dependency graph
//! `cargo tree -e normal` prints for each crate (per crate, because `cargo metadata` unifies
//! features across the workspace), and the rule that nothing points at the team's shared folder
//! beside the repository except its data (the parity and benchmark inputs).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use hemma_e2e::repo_root;

/// The packages (name only) in `crate`'s normal dependency tree, itself included.
fn tree(krate: &str) -> BTreeSet<String> {
    crate::cargo(&[
        "tree", "-e", "normal", "--prefix", "none", "-p", krate, "--format", "{p}|{f}",
    ])
    .lines()
    .filter_map(|l| {
        let (package, features) = l.split_once('|')?;
        let name = package.split_whitespace().next()?;
        // tonic's server is a feature, not a package: name it `tonic/server`.
        let server = name == "tonic" && features.split(',').any(|f| f.trim() == "server");
        Some(if server {
            "tonic/server".to_owned()
        } else {
            name.to_owned()
        })
    })
    .collect()
}

fn assert_none_of(krate: &str, forbidden: &[&str]) {
    let deps = tree(krate);
    let found: Vec<&&str> = forbidden.iter().filter(|f| deps.contains(**f)).collect();
    assert!(
        found.is_empty(),
        "{krate} must not depend on {found:?} (docs/architecture.md)"
    );
}

const PRESENTATION: [&str; 6] = [
    "axum",
    "tonic/server",
    "clap",
    "csv",
    "parquet",
    "indicatif",
];

#[test]
fn the_tree_reader_sees_what_the_binaries_use() {
    // The checks below only mean something if the reader finds these where they are.
    let cli = tree("hemma-cli");
    for dep in [
        "clap",
        "parquet",
        "indicatif",
        "csv",
        "hemma-runs",
        "hemma-client",
    ] {
        assert!(cli.contains(dep), "hemma-cli uses {dep}: {cli:?}");
    }
    assert!(!cli.contains("tonic/server"), "{cli:?}");
    assert!(tree("hemma-server").contains("tonic/server"));
}

#[test]
fn the_spacy_port_and_the_client_library_stay_small() {
    assert_none_of(
        "spacy-en-core-sm",
        &[
            &PRESENTATION[..],
            &[
                "tokio",
                "tonic",
                "hemma-proto",
                "essay-features",
                "hemma-server",
            ],
        ]
        .concat(),
    );
    assert_none_of("hemma-client", &PRESENTATION);
    assert_none_of(
        "essay-features",
        &[&PRESENTATION[..], &["tokio", "tonic"]].concat(),
    );
    assert_none_of("hemma-runs", &PRESENTATION);
}

#[test]
fn only_the_server_depends_on_axum_and_nothing_below_it_on_the_server() {
    for krate in [
        "hemma-proto",
        "spacy-en-core-sm",
        "essay-features",
        "hemma-embed",
        "languagetool-pool",
        "hemma-client",
        "hemma-runs",
        "hemma-cli",
    ] {
        assert_none_of(krate, &["axum", "hemma-server"]);
    }
    assert!(
        tree("hemma-server").contains("axum"),
        "the server serves HTTP with axum"
    );
    for krate in ["hemma-embed", "languagetool-pool"] {
        assert_none_of(
            krate,
            &["essay-features", "spacy-en-core-sm", "hemma-proto"],
        );
    }
}

/// Text files the repository tracks (what a user's clone has), outside fixtures.
fn tracked_text_files() -> Vec<String> {
    let out = Command::new("git")
        .args(["ls-files"])
        .current_dir(repo_root())
        .output()
        .expect("git runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|p| !p.starts_with("tests/fixtures/"))
        .filter(|p| {
            let ext = Path::new(p)
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("");
            matches!(ext, "rs" | "md" | "sh" | "py" | "toml" | "yaml" | "yml")
                || p.contains("Dockerfile")
                || p.ends_with(".ci/run")
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn nothing_points_at_the_shared_folder_but_its_data() {
    let mut bad = Vec::new();
    for path in tracked_text_files() {
        let Ok(text) = std::fs::read_to_string(repo_root().join(&path)) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find("shared") {
                let after = &rest[at + "shared".len()..];
                let before = &rest[..at];
                let names_the_folder =
                    before.ends_with("../") || before.ends_with('`') || after.starts_with('/');
                if names_the_folder && !after.starts_with("/data") {
                    bad.push(format!("{path}:{}: {}", n + 1, line.trim()));
                    break;
                }
                rest = after;
            }
        }
    }
    assert!(
        bad.is_empty(),
        "these lines point at the shared folder beside the repository (only its data/ may be named; the docs live in docs/):\n{}",
        bad.join("\n")
    );
}
