//! `hemma check`: essays in, a CSV of LanguageTool error counts out, through a real server; against
//! a real LanguageTool and against the Hemma JSON wrapper flavour (the fake's stand-in).

use std::collections::BTreeMap;
use std::path::Path;

use hemma_cli::input::{Columns, read_essays};
use hemma_e2e::fake_languagetool::FakeLanguageTool;
use hemma_e2e::{TestServer, grammar_args, languagetool_urls, repo_root};
use hemma_server::config::{Flavour, ServeArgs};

/// Runs `hemma check` (off the runtime: the server answers on it) and returns the CSV.
async fn run_check(
    server: &TestServer,
    input: &Path,
    out: &Path,
) -> (Vec<String>, Vec<Vec<String>>) {
    let mut command = std::process::Command::new(crate::hemma_bin());
    command
        .args([
            "--server",
            &server.http(""),
            "check",
            "--quiet",
            "--batch-size",
            "4",
        ])
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("checked 6 essays"), "{stderr}");
    let mut reader = csv::Reader::from_path(out).unwrap();
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

async fn assert_counts_match_the_rpc(server: &TestServer, header: &[String], rows: &[Vec<String>]) {
    let essays = read_essays(
        &repo_root().join("examples/essays.jsonl"),
        &Columns::new("text", "id"),
    )
    .unwrap();
    assert_eq!(&header[..4], ["id", "grammar", "spelling", "punctuation"]);
    assert_eq!(rows.len(), essays.len());
    let texts = essays.iter().map(|e| e.text.clone()).collect();
    let resp = server.client.check_grammar(texts, None).await.unwrap();
    for ((essay, row), result) in essays.iter().zip(rows).zip(&resp.results) {
        let c = result.counts.clone().unwrap();
        assert_eq!(row[0], essay.id);
        assert_eq!(
            row[1..4],
            [
                c.grammar.to_string(),
                c.spelling.to_string(),
                c.punctuation.to_string()
            ]
        );
        let by_category: BTreeMap<String, u32> = header[4..]
            .iter()
            .zip(&row[4..])
            .map(|(k, v)| (k.clone(), v.parse().unwrap()))
            .filter(|(_, v)| *v > 0)
            .collect();
        assert_eq!(by_category, c.by_category.into_iter().collect());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hemma_check_writes_counts_from_a_real_languagetool() {
    let urls = languagetool_urls();
    let server = TestServer::start(grammar_args(&urls[..1])).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("counts.csv");
    let (header, rows) = run_check(&server, &repo_root().join("examples/essays.jsonl"), &out).await;
    assert!(header.iter().any(|h| h == "TYPOS"), "{header:?}");
    let spelling: u32 = rows.iter().map(|r| r[2].parse::<u32>().unwrap()).sum();
    assert!(
        spelling > 0,
        "the example essays have misspellings: {rows:?}"
    );
    assert_counts_match_the_rpc(&server, &header, &rows).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hemma_check_works_through_the_wrapper_flavour() {
    let fake = FakeLanguageTool::start().await;
    let server = TestServer::start(ServeArgs {
        languagetool_flavour: Some(Flavour::Wrapper),
        languagetool_version: Some("6.7-fake".into()),
        ..grammar_args(&[fake.url()])
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("essays.csv");
    std::fs::copy(repo_root().join("examples/essays.csv"), &input).unwrap();
    let out = dir.path().join("counts.csv");
    let (header, rows) = run_check(&server, &input, &out).await;
    assert_counts_match_the_rpc(&server, &header, &rows).await;
    assert!(!fake.checks().is_empty(), "the wrapper was asked");
}
