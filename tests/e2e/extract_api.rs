//! Extract and ExtractStream against the real LanguageTool: the combined matrices of 50 ELLIPSE
//! essays equal the same features computed from Embed, CheckGrammar and the library functions;
//! feature sets, validation, NaN passing through, LanguageTool down, and stream order with a
//! failing chunk.

use std::collections::HashMap;

use essay_features::ErrorCounts;
use essay_features::analysis::Analyzer;
use hemma_cli::input::{Columns, Essay, read_essays};
use hemma_client::v1::extract_chunk_result::Outcome;
use hemma_client::v1::{ExtractChunk, FeatureSet};
use hemma_client::{Client, extract_request};
use hemma_e2e::fake_languagetool::{FakeLanguageTool, Fault};
use hemma_e2e::{TestServer, grammar_args, languagetool_urls, repo_root};
use hemma_server::config::ServeArgs;

/// The committed 50-essay ELLIPSE sample, with prompts.
fn sample() -> Vec<Essay> {
    let columns = Columns {
        prompt: Some("prompt".into()),
        ..Columns::new("text", "id")
    };
    read_essays(
        &repo_root().join("tests/fixtures/essays/ellipse50.jsonl"),
        &columns,
    )
    .expect("the sample reads")
}

/// A server on the fixture model proxying the real LanguageTool, with room for whole essays.
async fn real_server() -> TestServer {
    let urls = languagetool_urls();
    TestServer::start(ServeArgs {
        languagetool_timeout_secs: Some(60.0),
        ..grammar_args(&urls[..1])
    })
    .await
}

/// Columns whose value depends on embeddings (cosines); the rest must match exactly.
const EMBEDDING_DERIVED: [&str; 4] = [
    "sent_similarity_variance",
    "prompt_similarity",
    "intro_prompt_sim",
    "min_para_relevance",
];

/// Embeddings of `strings` through the Embed call, in requests of at most 64.
async fn embed_all(client: &Client, strings: &[String]) -> HashMap<String, Vec<f32>> {
    let mut out = HashMap::new();
    for piece in strings.chunks(64) {
        let e = client.embed(piece.to_vec(), false).await.expect("Embed");
        for (s, row) in piece.iter().zip(e.vectors.rows()) {
            out.insert(s.clone(), row.to_vec());
        }
    }
    out
}

fn close(a: f32, b: f32, tol: f32) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol * (1.0 + b.abs())
}

#[tokio::test]
async fn combined_extract_of_50_essays_equals_its_parts() {
    let server = real_server().await;
    let essays = sample();
    let texts: Vec<String> = essays.iter().map(|e| e.text.clone()).collect();
    let prompts: Vec<String> = essays.iter().map(|e| e.prompt.clone().unwrap()).collect();
    let x = server
        .client
        .extract(texts.clone(), prompts.clone(), FeatureSet::Combined, false)
        .await
        .expect("Extract combined");
    let info = server.client.info().await.unwrap();
    let emb = x.embeddings.as_ref().expect("embeddings");
    let hc = x.handcrafted.as_ref().expect("handcrafted");
    let dim = info.model.as_ref().unwrap().dim as usize;
    assert_eq!(emb.dim(), (50, dim));
    assert_eq!(hc.dim(), (50, 25));
    assert_eq!(x.handcrafted_names, essay_features::column_names());
    assert_eq!(x.embedding_names, info.embedding_feature_names);
    assert_eq!(x.handcrafted_names, info.handcrafted_feature_names);
    assert_eq!(x.fingerprint, info.fingerprint);
    assert_eq!(x.schema_version, info.schema_version);
    assert!(x.timings.total_seconds > 0.0 && x.timings.strings_embedded as usize > 100);

    // The same features from the parts: Embed, CheckGrammar and the library.
    let analyzer = Analyzer::load(&repo_root().join("models")).expect("NLP models load");
    let analyses: Vec<_> = texts.iter().map(|t| analyzer.analyse(t).unwrap()).collect();
    let mut strings: Vec<String> = Vec::new();
    for (a, p) in analyses.iter().zip(&prompts) {
        strings.extend(essay_features::embedding_inputs(a, p));
    }
    strings.sort();
    strings.dedup();
    let vectors = embed_all(&server.client, &strings).await;
    let normalised: Vec<String> = texts.iter().map(|t| essay_features::normalise(t)).collect();
    let checked = server
        .client
        .check_grammar(normalised, None)
        .await
        .expect("CheckGrammar");
    for (i, (a, p)) in analyses.iter().zip(&prompts).enumerate() {
        let c = checked.results[i].counts.clone().unwrap();
        let counts = ErrorCounts {
            grammar: c.grammar,
            spelling: c.spelling,
            punctuation: c.punctuation,
        };
        let want = essay_features::handcrafted(a, p, counts, &vectors).unwrap();
        for (j, name) in essay_features::column_names().into_iter().enumerate() {
            let (got, want) = (hc[[i, j]], want[j] as f32);
            let tol = if EMBEDDING_DERIVED.contains(&name) {
                1e-4
            } else {
                0.0
            };
            assert!(
                close(got, want, tol),
                "essay {} ({}), {name}: Extract {got}, from the parts {want}",
                i,
                essays[i].id
            );
        }
        let essay = &vectors[&texts[i]];
        for (k, (got, want)) in emb.row(i).iter().zip(essay).enumerate() {
            assert!(
                close(*got, *want, 1e-4),
                "essay {i} embedding[{k}]: {got} vs {want}"
            );
        }
    }
    let metrics = server.metrics().await;
    for stage in ["parse", "embed", "languagetool", "assembly", "total"] {
        assert!(
            metrics.contains(&format!(
                "hemma_extract_stage_seconds_count{{feature_set=\"combined\",stage=\"{stage}\"}} 1"
            )),
            "no {stage} timing in /metrics:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn feature_sets_nan_and_validation() {
    let server = real_server().await;
    let c = &server.client;
    let texts: Vec<String> = vec![
        "I think schools should start later. Students are tired in the morning.".into(),
        String::new(),
        "   \n\n  ".into(),
    ];
    // One prompt for all; empty and whitespace-only essays give NaN readability, not an error.
    let x = c
        .extract(
            texts.clone(),
            vec!["School start times".into()],
            FeatureSet::Handcrafted,
            false,
        )
        .await
        .expect("handcrafted");
    assert!(x.embeddings.is_none());
    let hc = x.handcrafted.unwrap();
    let fk = essay_features::COLUMNS
        .iter()
        .position(|c| c.name == "flesch_kincaid")
        .unwrap();
    let wc = essay_features::COLUMNS
        .iter()
        .position(|c| c.name == "word_count")
        .unwrap();
    assert!(hc[[0, fk]].is_finite());
    assert!(hc[[1, fk]].is_nan() && hc[[2, fk]].is_nan(), "{hc:?}");
    assert_eq!((hc[[1, wc]], hc[[2, wc]]), (0.0, 0.0));

    // Embeddings need no prompt, and equal the Embed call's vectors.
    let e = c
        .extract(texts.clone(), vec![], FeatureSet::Embeddings, false)
        .await
        .expect("embeddings");
    assert!(e.handcrafted.is_none());
    let direct = c.embed(texts.clone(), false).await.unwrap();
    for (a, b) in e.embeddings.unwrap().iter().zip(direct.vectors.iter()) {
        assert!(close(*a, *b, 1e-5), "{a} vs {b}");
    }

    // Validation names the offending item.
    let err = |r: Result<_, hemma_client::ClientError>| match r {
        Ok(_) => panic!("accepted"),
        Err(e) => (e.code(), e.to_string()),
    };
    let (code, msg) = err(c
        .extract(
            texts.clone(),
            vec!["a".into(), "b".into()],
            FeatureSet::Combined,
            false,
        )
        .await);
    assert_eq!(code, Some(tonic::Code::InvalidArgument));
    assert!(msg.contains("prompts has 2 entries for 3 texts"), "{msg}");
    let (code, msg) = err(c
        .extract(
            texts.clone(),
            vec!["a".into(), " ".into(), "c".into()],
            FeatureSet::Combined,
            false,
        )
        .await);
    assert_eq!(code, Some(tonic::Code::InvalidArgument));
    assert!(msg.contains("prompt 1 is empty"), "{msg}");
    let (code, msg) = err(c
        .extract(texts.clone(), vec![], FeatureSet::Combined, false)
        .await);
    assert_eq!(code, Some(tonic::Code::InvalidArgument));
    assert!(msg.contains("needs prompts"), "{msg}");
    let long = "word ".repeat(50_000);
    let (code, msg) = err(c
        .extract(
            vec!["ok".into(), long],
            vec!["p".into()],
            FeatureSet::Combined,
            false,
        )
        .await);
    assert_eq!(code, Some(tonic::Code::InvalidArgument));
    assert!(msg.contains("text 1"), "{msg}");
    let mut raw = hemma_client::v1::offload_client::OffloadClient::new(server.channel().await);
    let mut req = extract_request(texts.clone(), vec!["p".into()], FeatureSet::Combined, false);
    req.feature_set = FeatureSet::Unspecified as i32;
    let status = raw.extract(req).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("feature_set"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn languagetool_down_fails_unavailable_and_returns_nothing() {
    let lt = FakeLanguageTool::start().await;
    let server = TestServer::start(grammar_args(&[lt.url()])).await;
    let texts = vec!["I has a apple.".to_owned(), "Teh dog runned.".to_owned()];
    let ok = server
        .client
        .extract(
            texts.clone(),
            vec!["Pets".into()],
            FeatureSet::Combined,
            false,
        )
        .await
        .expect("with LanguageTool up");
    assert_eq!(ok.handcrafted.unwrap().nrows(), 2);
    lt.set_fault(Some(Fault::Reset), None);
    let e = server
        .client
        .extract(
            vec!["Another essay entirely.".into()],
            vec!["Pets".into()],
            FeatureSet::Combined,
            false,
        )
        .await
        .expect_err("LanguageTool is down");
    assert_eq!(e.code(), Some(tonic::Code::Unavailable), "{e}");
    // The embeddings set does not need LanguageTool.
    server
        .client
        .extract(texts, vec![], FeatureSet::Embeddings, false)
        .await
        .expect("embeddings without LanguageTool");
}

#[tokio::test]
async fn the_stream_answers_in_order_and_a_failing_chunk_does_not_end_it() {
    let server = real_server().await;
    let essays = sample();
    let mut chunks = Vec::new();
    for (k, part) in essays[..20].chunks(5).enumerate() {
        let texts: Vec<String> = part.iter().map(|e| e.text.clone()).collect();
        let mut prompts: Vec<String> = part.iter().map(|e| e.prompt.clone().unwrap()).collect();
        if k == 2 {
            prompts.pop(); // 4 prompts for 5 texts
        }
        chunks.push(ExtractChunk {
            chunk_id: 100 + k as u64,
            ids: part.iter().map(|e| e.id.clone()).collect(),
            request: Some(extract_request(
                texts,
                prompts,
                FeatureSet::Handcrafted,
                false,
            )),
        });
    }
    let sent = chunks.clone();
    let mut answers = server
        .client
        .extract_stream(tokio_stream::iter(chunks))
        .await
        .expect("stream opens");
    let mut seen = Vec::new();
    while let Some(a) = answers.message().await.expect("stream goes on") {
        let k = seen.len();
        assert_eq!(a.chunk_id, sent[k].chunk_id, "answers come in chunk order");
        assert_eq!(a.ids, sent[k].ids);
        match a.outcome.expect("an outcome") {
            Outcome::Response(r) => {
                assert_ne!(k, 2, "the bad chunk was answered");
                assert_eq!(r.handcrafted.unwrap().rows, 5);
            }
            Outcome::Error(e) => {
                assert_eq!(k, 2, "chunk {k} failed: {}", e.message);
                assert_eq!(e.code, tonic::Code::InvalidArgument as i32);
                assert!(
                    e.message.contains("chunk 102") && e.message.contains("4 entries for 5"),
                    "{}",
                    e.message
                );
            }
        }
        seen.push(a.chunk_id);
    }
    assert_eq!(seen, vec![100, 101, 102, 103]);
}
