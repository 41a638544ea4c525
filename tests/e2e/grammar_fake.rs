//! CheckGrammar through the real server and client against the LanguageTool-compatible fake:
//! recorded answers, offsets, counts, cache, failure modes, pool failover, long texts, the
//! wrapper flavour.

use std::time::Duration;

use hemma_client::v1::{GrammarMatch, GrammarOptions, GrammarResult};
use hemma_e2e::fake_languagetool::{FakeLanguageTool, Fault, Settings};
use hemma_e2e::{TestServer, grammar_args, repo_root, wait_readyz};
use hemma_server::config::Flavour;
use languagetool_pool::checker::build_result;
use languagetool_pool::response::parse_v2;
use tonic::Code;

fn texts(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The characters a match covers, by its scalar-value offsets.
fn covered(text: &str, m: &GrammarMatch) -> String {
    text.chars()
        .skip(m.offset as usize)
        .take(m.length as usize)
        .collect()
}

/// The result of checking one text, which must succeed.
async fn check_one(server: &TestServer, text: &str) -> GrammarResult {
    let mut resp = server
        .client
        .check_grammar(texts(&[text]), None)
        .await
        .expect("the check succeeds");
    resp.results.remove(0)
}

async fn server_for(fake: &FakeLanguageTool) -> TestServer {
    TestServer::start(grammar_args(&[fake.url()])).await
}

#[tokio::test]
async fn every_recorded_response_parses_and_its_offsets_fit_its_text() {
    let dir = repo_root().join("tests/fixtures/languagetool");
    let texts: std::collections::HashMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("texts.json")).unwrap()).unwrap();
    let mut parsed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("lt-") {
            continue;
        }
        let received = parse_v2(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
        assert!(!received.version.is_empty(), "{name}");
        if let Some(text) = texts.get(&name) {
            let result = build_result(text, received.matches, &received.version)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            for m in &result.matches {
                assert!(m.offset + m.length <= text.chars().count(), "{name}");
            }
        }
        parsed += 1;
    }
    assert_eq!(parsed, 8, "all recorded responses were read");
}

#[tokio::test]
async fn replays_a_recorded_answer_through_the_proxy() {
    let fake = FakeLanguageTool::start_with(Settings {
        version: "5.5".into(),
        ..Settings::default()
    })
    .await;
    let server = server_for(&fake).await;
    let text = "LanguageTool Extensin is the best onee there shud be.";
    let resp = server
        .client
        .check_grammar(texts(&[text]), None)
        .await
        .unwrap();
    assert_eq!(resp.languagetool_version, "5.5");
    let r = &resp.results[0];
    let words: Vec<String> = r.matches.iter().map(|m| covered(text, m)).collect();
    assert_eq!(words, vec!["Extensin", "onee", "shud"]);
    assert!(
        r.matches
            .iter()
            .all(|m| m.kind == "spelling" && m.category_id == "TYPOS")
    );
    let counts = r.counts.clone().unwrap();
    assert_eq!(
        (counts.grammar, counts.spelling, counts.punctuation),
        (0, 3, 0)
    );
    assert_eq!(counts.by_category["TYPOS"], 3);
    // Replacements are cut to the default of 5, best first.
    assert_eq!(r.matches[1].replacements.len(), 5);
    assert_eq!(r.matches[1].replacements[0], "one");
    let info = server.client.info().await.unwrap();
    assert_eq!(info.languagetool_version, "5.5");
}

#[tokio::test]
async fn offsets_come_in_utf16_units_and_in_characters() {
    let fake = FakeLanguageTool::start().await;
    let server = server_for(&fake).await;
    // 👍 is two UTF-16 units; e + U+0301 is two scalar values.
    let text = "I 👍 teh cafe\u{301} teh dog 👍👍 recieve.";
    let r = &check_one(&server, text).await;
    let got: Vec<(u32, u32, u32, String)> = r
        .matches
        .iter()
        .map(|m| (m.offset_utf16, m.offset, m.length, covered(text, m)))
        .collect();
    assert_eq!(
        got,
        vec![
            (5, 4, 3, "teh".to_string()),
            (15, 14, 3, "teh".to_string()),
            (28, 25, 7, "recieve".to_string()),
        ]
    );
    assert!(r.matches.iter().all(|m| m.length_utf16 == m.length));
}

#[tokio::test]
async fn counts_follow_the_categorisation_table() {
    let fake = FakeLanguageTool::start().await;
    let server = server_for(&fake).await;
    let text = "It is is teh best , really!! I recieve it.";
    let r = &check_one(&server, text).await;
    let c = r.counts.clone().unwrap();
    // teh, recieve: TYPOS; "is is": GRAMMAR; "!!": PUNCTUATION; " ," is a whitespace match:
    // returned, counted in none of them (schema v2; version 1 counted it as spelling).
    assert_eq!((c.grammar, c.spelling, c.punctuation), (1, 2, 1));
    assert_eq!(c.by_category["TYPOS"], 2);
    assert!(!c.by_category.contains_key("TYPOGRAPHY"), "{c:?}");
    let kinds: Vec<(&str, &str)> = r
        .matches
        .iter()
        .map(|m| (m.rule_id.as_str(), m.kind.as_str()))
        .collect();
    assert!(
        kinds.contains(&("ENGLISH_WORD_REPEAT_RULE", "grammar")),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("DOUBLE_PUNCTUATION", "punctuation")),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("COMMA_PARENTHESIS_WHITESPACE", "none")),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn cache_hits_never_reach_the_upstream() {
    let fake = FakeLanguageTool::start().await;
    let server = server_for(&fake).await;
    let batch = texts(&["One teh.", "Two teh.", "One teh."]);
    let first = server
        .client
        .check_grammar(batch.clone(), None)
        .await
        .unwrap();
    let second = server.client.check_grammar(batch, None).await.unwrap();
    assert!(second.results.iter().all(|r| r.cached));
    assert_eq!(first.results[0].matches, second.results[0].matches);
    // "One teh." twice in the first request: at most one check each; nothing for the second.
    let checks = fake.checks();
    assert!(checks.len() <= 3, "{checks:?}");
    assert_eq!(second.results.len(), 3);
    let before = checks.len();
    server
        .client
        .check_grammar(texts(&["Two teh."]), None)
        .await
        .unwrap();
    assert_eq!(
        fake.checks().len(),
        before,
        "a cached text reached LanguageTool"
    );
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("hemma_languagetool_cache_hits_total{tier=\"memory\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("hemma_languagetool_cache_misses_total"));
    // Other options are another cache entry.
    let picky = GrammarOptions {
        level: "picky".into(),
        ..Default::default()
    };
    let r = server
        .client
        .check_grammar(texts(&["Two teh."]), Some(picky))
        .await
        .unwrap();
    assert!(!r.results[0].cached);
}

#[tokio::test]
async fn disk_cache_survives_a_restart() {
    let fake = FakeLanguageTool::start().await;
    let dir = tempfile::tempdir().unwrap();
    let args = || hemma_server::config::ServeArgs {
        languagetool_cache_dir: Some(dir.path().into()),
        ..grammar_args(&[fake.url()])
    };
    let server = TestServer::start(args()).await;
    server
        .client
        .check_grammar(texts(&["Kept teh."]), None)
        .await
        .unwrap();
    server.stop().await.unwrap();
    assert_eq!(fake.checks().len(), 1);
    let server = TestServer::start(args()).await;
    let r = server
        .client
        .check_grammar(texts(&["Kept teh."]), None)
        .await
        .unwrap();
    assert!(r.results[0].cached);
    assert_eq!(
        fake.checks().len(),
        1,
        "the restarted server asked LanguageTool again"
    );
}

#[tokio::test]
async fn each_failure_mode_gives_its_status_and_no_partial_result() {
    let fake = FakeLanguageTool::start().await;
    let server = server_for(&fake).await;
    let cases = [
        (Fault::Internal500, Code::Internal, "HTTP 500"),
        (
            Fault::Busy503,
            Code::ResourceExhausted,
            "HTTP 503 after 4 tries",
        ),
        (Fault::TooLong413, Code::InvalidArgument, "too long"),
        (
            Fault::Malformed,
            Code::Internal,
            "not a LanguageTool check result",
        ),
        (Fault::Reset, Code::Unavailable, fake.url().leak()),
        (Fault::Hang, Code::DeadlineExceeded, "did not answer within"),
    ];
    for (k, (fault, code, says)) in cases.into_iter().enumerate() {
        // Fresh texts each time so no answer comes from the cache.
        let batch = vec![format!("Fine text {k}."), format!("Other text {k}.")];
        // Only the second text's check fails: the whole call must fail anyway.
        fake.set_fault(None, None);
        server
            .client
            .check_grammar(vec![batch[0].clone()], None)
            .await
            .unwrap();
        fake.set_fault(Some(fault), None);
        let err = server
            .client
            .check_grammar(batch, None)
            .await
            .expect_err("a failing upstream must fail the call");
        assert_eq!(err.code(), Some(code), "{fault:?}: {err}");
        assert!(err.to_string().contains(says), "{fault:?}: {err}");
        fake.set_fault(None, None);
        // A reset takes the only instance out; wait for it to be probed back in.
        wait_readyz(&server, |code, _| code == 200).await;
    }
}

#[tokio::test]
async fn a_passing_503_is_retried() {
    let fake = FakeLanguageTool::start().await;
    let server = server_for(&fake).await;
    fake.set_fault(Some(Fault::Busy503), Some(2));
    let r = server
        .client
        .check_grammar(texts(&["Busy teh."]), None)
        .await
        .unwrap();
    assert_eq!(r.results[0].counts.clone().unwrap().spelling, 1);
    assert_eq!(fake.checks().len(), 3, "two 503s, then the answer");
}

#[tokio::test]
async fn pool_fails_over_and_takes_the_instance_back_after_a_probe() {
    let good = FakeLanguageTool::start().await;
    let bad = FakeLanguageTool::start().await;
    let server = TestServer::start(grammar_args(&[bad.url(), good.url()])).await;
    bad.set_fault(Some(Fault::Reset), None);
    let batch: Vec<String> = (0..6).map(|i| format!("Failover {i} teh.")).collect();
    let r = server.client.check_grammar(batch, None).await.unwrap();
    assert!(
        r.results
            .iter()
            .all(|r| r.counts.clone().unwrap().spelling == 1)
    );
    let body = wait_readyz(&server, |code, _| code == 200).await;
    let upstreams = body["languagetool"]["upstreams"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(upstreams[0]["healthy"], false, "{body}");
    assert_eq!(upstreams[1]["healthy"], true, "{body}");
    // It recovers: the prober's backoff brings it back.
    bad.set_fault(None, None);
    wait_readyz(&server, |_, b| {
        b["languagetool"]["upstreams"][0]["healthy"] == true
    })
    .await;
    let checks_before = bad.checks().len();
    let batch: Vec<String> = (0..8).map(|i| format!("Spread {i} teh.")).collect();
    server.client.check_grammar(batch, None).await.unwrap();
    assert!(
        bad.checks().len() > checks_before,
        "the recovered instance got no work"
    );
}

#[tokio::test]
async fn all_instances_down_is_unavailable_and_not_ready() {
    let fake = FakeLanguageTool::start().await;
    let server = server_for(&fake).await;
    fake.set_fault(Some(Fault::Reset), None);
    let err = server
        .client
        .check_grammar(texts(&["Down teh."]), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::Unavailable), "{err}");
    assert!(err.to_string().contains(&fake.url()), "{err}");
    let body = wait_readyz(&server, |code, _| code == 503).await;
    assert_eq!(body["model"], "loaded");
    assert_eq!(body["languagetool"]["ready"], false);
    // Embeddings still work while LanguageTool is down.
    server
        .client
        .embed(texts(&["still here"]), false)
        .await
        .unwrap();
}

#[tokio::test]
async fn not_ready_until_languagetool_answers() {
    let fake = FakeLanguageTool::start().await;
    fake.set_fault(Some(Fault::Reset), None);
    let server = TestServer::start_unready(grammar_args(&[fake.url()])).await;
    let body = wait_readyz(&server, |code, b| code == 503 && b["model"] == "loaded").await;
    let why = body["languagetool"]["upstreams"][0]["last_error"]
        .as_str()
        .unwrap();
    assert!(!why.is_empty(), "{body}");
    fake.set_fault(None, None);
    wait_readyz(&server, |code, _| code == 200).await;
}

#[tokio::test]
async fn a_language_the_upstream_rejects_stops_the_server_with_its_reason() {
    let fake = FakeLanguageTool::start().await;
    let args = hemma_server::config::ServeArgs {
        languagetool_language: Some("xx-XX".into()),
        ..grammar_args(&[fake.url()])
    };
    let server = TestServer::start_unready(args).await;
    let err = server.join().await.unwrap_err().to_string();
    assert!(err.contains("'xx-XX' is not a language code"), "{err}");
}

#[tokio::test]
async fn long_texts_are_split_and_offsets_stay_right() {
    let fake = FakeLanguageTool::start_with(Settings {
        max_text_length: Some(60),
        ..Settings::default()
    })
    .await;
    let server = server_for(&fake).await;
    let text = "First 👍 paragraph has teh word.\n\nSecond one: recieve it, then teh end.\n\nThird paragraph is longer than sixty units, so teh sentences split. Like this one with alot.";
    assert!(text.encode_utf16().count() > 60);
    let r = &check_one(&server, text).await;
    let words: Vec<String> = r.matches.iter().map(|m| covered(text, m)).collect();
    assert_eq!(words, vec!["teh", "recieve", "teh", "teh", "alot"]);
    let chunks = fake.checks();
    assert!(chunks.len() >= 3, "{chunks:?}");
    assert!(
        chunks.iter().all(|c| c.encode_utf16().count() <= 60),
        "{chunks:?}"
    );
    assert_eq!(chunks.concat(), text, "the parts are the text");
}

#[tokio::test]
async fn a_text_over_the_part_cap_is_split_even_when_languagetool_takes_it_whole() {
    // No stated limit: LanguageTool would take the text whole, and spend time superlinear in
    // its one long sentence on it.
    let fake = FakeLanguageTool::start().await;
    let server = TestServer::start(hemma_server::config::ServeArgs {
        languagetool_timeout_secs: Some(20.0), // the fake is slow on long texts in debug builds
        ..grammar_args(&[fake.url()])
    })
    .await;
    let cap = languagetool_pool::MAX_PART_UTF16;
    let essay = format!("{} teh.", "An ordinary sentence of an essay. ".repeat(170));
    assert!(essay.len() > 5_000 && essay.len() < cap);
    check_one(&server, &essay).await;
    assert_eq!(fake.checks(), vec![essay.clone()], "an essay goes whole");
    // One unpunctuated run of 22,000 characters (no word repeated next to itself).
    let run_on = format!("{}teh", "one two three four five ".repeat(920));
    let r = &check_one(&server, &run_on).await;
    let words: Vec<String> = r.matches.iter().map(|m| covered(&run_on, m)).collect();
    assert_eq!(words, vec!["teh"], "offsets are shifted back");
    let parts = &fake.checks()[1..];
    assert!(parts.len() >= 2, "{} parts", parts.len());
    assert!(parts.iter().all(|p| p.encode_utf16().count() <= cap));
    assert_eq!(parts.concat(), run_on, "the parts are the text");
}

#[tokio::test]
async fn a_413_with_a_stated_limit_is_split_under_it() {
    let fake = FakeLanguageTool::start().await;
    let server = server_for(&fake).await;
    // The fake's forced 413 says "limit of 40 characters"; the parts then pass.
    fake.set_fault(Some(Fault::TooLong413), Some(1));
    let text = "A first sentence with teh typo. A second sentence, also teh typo.";
    let r = &check_one(&server, text).await;
    let words: Vec<String> = r.matches.iter().map(|m| covered(text, m)).collect();
    assert_eq!(words, vec!["teh", "teh"]);
    assert!(
        fake.checks()[1..]
            .iter()
            .all(|c| c.encode_utf16().count() <= 40)
    );
}

#[tokio::test]
async fn bad_options_and_missing_languagetool_are_clear_errors() {
    let fake = FakeLanguageTool::start().await;
    let server = server_for(&fake).await;
    let bad = GrammarOptions {
        level: "strict".into(),
        ..Default::default()
    };
    let err = server
        .client
        .check_grammar(texts(&["x"]), Some(bad))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert!(err.to_string().contains("level"), "{err}");
    let unknown = GrammarOptions {
        language: "zz-ZZ".into(),
        ..Default::default()
    };
    let err = server
        .client
        .check_grammar(texts(&["x"]), Some(unknown))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert!(
        err.to_string().contains("'zz-ZZ' is not a language code"),
        "{err}"
    );
    let err = server.client.check_grammar(vec![], None).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));

    let plain = TestServer::start(hemma_e2e::fixture_args(
        hemma_server::config::EngineKind::Candle,
    ))
    .await;
    let err = plain
        .client
        .check_grammar(texts(&["x"]), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::FailedPrecondition));
    assert!(err.to_string().contains("--languagetool-url"), "{err}");
    // LanguageTool's version and options are in the fingerprint.
    let with_lt = server.client.info().await.unwrap();
    let without = plain.client.info().await.unwrap();
    assert_ne!(with_lt.fingerprint, without.fingerprint);
    assert_eq!(with_lt.languagetool_version, "6.7-fake");
    assert_eq!(without.languagetool_version, "");
}

#[tokio::test]
async fn the_wrapper_flavour_gives_the_same_matches() {
    let fake = FakeLanguageTool::start().await;
    let v2 = server_for(&fake).await;
    let wrapper = TestServer::start(hemma_server::config::ServeArgs {
        languagetool_flavour: Some(Flavour::Wrapper),
        languagetool_version: Some("6.7-fake".into()),
        ..grammar_args(&[fake.url()])
    })
    .await;
    let batch = texts(&["Wrapped 👍 teh text is is fine , ok!!"]);
    let a = v2.client.check_grammar(batch.clone(), None).await.unwrap();
    let b = wrapper.client.check_grammar(batch, None).await.unwrap();
    let strip = |ms: &[GrammarMatch]| -> Vec<(u32, u32, u32, u32, String, String)> {
        ms.iter()
            .map(|m| {
                (
                    m.offset_utf16,
                    m.length_utf16,
                    m.offset,
                    m.length,
                    m.rule_id.clone(),
                    m.kind.clone(),
                )
            })
            .collect()
    };
    // The wrapper drops whitespace matches itself; LanguageTool's own API returns them, counted
    // in none of the three (schema v2). Everything else, and the counts, are the same.
    let counted = |ms: &[GrammarMatch]| {
        let mut v = strip(ms);
        v.retain(|m| m.5 != "none");
        v
    };
    let dropped = strip(&a.results[0].matches).len() - counted(&a.results[0].matches).len();
    assert_eq!(dropped, 1, "the space before the comma");
    assert_eq!(counted(&a.results[0].matches), strip(&b.results[0].matches));
    assert_eq!(a.results[0].counts, b.results[0].counts);
    // The wrapper names no version: it is the configured one.
    assert_eq!(b.languagetool_version, "6.7-fake");
}

#[tokio::test]
async fn saturation_waits_for_a_slot_rather_than_failing_fast() {
    let fake = FakeLanguageTool::start_with(Settings {
        latency: Duration::from_millis(100),
        ..Settings::default()
    })
    .await;
    let server = TestServer::start(hemma_server::config::ServeArgs {
        languagetool_max_in_flight: Some(1),
        ..grammar_args(&[fake.url()])
    })
    .await;
    let batch: Vec<String> = (0..4).map(|i| format!("Slot {i} teh.")).collect();
    let r = server.client.check_grammar(batch, None).await.unwrap();
    assert_eq!(r.results.len(), 4);
}

#[tokio::test]
async fn the_wrapper_flavour_splits_over_50000_characters_and_never_sends_an_empty_text() {
    let fake = FakeLanguageTool::start().await;
    let server = TestServer::start(hemma_server::config::ServeArgs {
        languagetool_flavour: Some(Flavour::Wrapper),
        languagetool_version: Some("6.7".into()),
        languagetool_timeout_secs: Some(20.0),
        ..grammar_args(&[fake.url()])
    })
    .await;
    // 60,003 characters with one misspelling at the very end: too long for one wrapper call.
    let long = format!("{}teh", "ab cd ".repeat(10_000));
    let r = server
        .client
        .check_grammar(vec![long.clone(), String::new()], None)
        .await
        .unwrap();
    let m = &r.results[0].matches;
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!((m[0].offset as usize, m[0].length), (60_000, 3));
    assert_eq!(r.results[0].counts.as_ref().unwrap().spelling, 1);
    assert!(
        r.results[1].matches.is_empty(),
        "an empty text has no matches"
    );
    let checks = fake.checks();
    assert!(
        checks.len() >= 2,
        "the long text went in parts: {}",
        checks.len()
    );
    assert!(
        checks
            .iter()
            .all(|c| (1..=50_000).contains(&c.chars().count()))
    );
    // The wrapper takes no level: asking for one is refused, not silently ignored.
    let picky = GrammarOptions {
        level: "picky".into(),
        ..Default::default()
    };
    let err = server
        .client
        .check_grammar(texts(&["x"]), Some(picky))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert!(err.to_string().contains("takes no level"), "{err}");
}
