//! CheckGrammar against a real LanguageTool (started by `scripts/languagetool.sh`): the proxy's
//! matches are LanguageTool's own, offsets are right on emoji text, the version is reported.

use hemma_cli::input::{Columns, read_essays};
use hemma_client::v1::GrammarMatch;
use hemma_e2e::{TestServer, grammar_args, languagetool_urls, repo_root};
use languagetool_pool::categorise::classify;

fn covered(text: &str, m: &GrammarMatch) -> String {
    text.chars()
        .skip(m.offset as usize)
        .take(m.length as usize)
        .collect()
}

/// One match as LanguageTool reports it: offset, length, rule id, category id, issue type.
type Direct = (u64, u64, String, String, String);

/// LanguageTool's own answer, asked directly: the version and every match.
async fn direct(url: &str, text: &str) -> (String, Vec<Direct>) {
    let body: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/v2/check"))
        .form(&[("text", text), ("language", "en-US"), ("level", "default")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let matches = body["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["offset"].as_u64().unwrap(),
                m["length"].as_u64().unwrap(),
                m["rule"]["id"].as_str().unwrap().to_owned(),
                m["rule"]["category"]["id"].as_str().unwrap().to_owned(),
                m["rule"]["issueType"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    (
        body["software"]["version"].as_str().unwrap().to_owned(),
        matches,
    )
}

#[tokio::test]
async fn the_proxy_answers_what_languagetool_answers() {
    let urls = languagetool_urls();
    let server = TestServer::start(grammar_args(&urls[..1])).await;
    let columns = Columns::new("text", "id");
    let mut texts: Vec<String> = read_essays(&repo_root().join("examples/essays.jsonl"), &columns)
        .unwrap()
        .into_iter()
        .take(3)
        .map(|e| e.text)
        .collect();
    texts.push("I has a apple and teh dog runned , it is is good.".into());
    let resp = server
        .client
        .check_grammar(texts.clone(), None)
        .await
        .unwrap();
    for (text, result) in texts.iter().zip(&resp.results) {
        let (_, want) = direct(&urls[0], text).await;
        let mut got: Vec<Direct> = result
            .matches
            .iter()
            .map(|m| {
                (
                    m.offset_utf16 as u64,
                    m.length_utf16 as u64,
                    m.rule_id.clone(),
                    m.category_id.clone(),
                    m.issue_type.clone(),
                )
            })
            .collect();
        let mut want = want;
        got.sort();
        want.sort();
        assert_eq!(got, want, "text: {text}");
        let counts = result.counts.clone().unwrap();
        // Grammar, spelling, punctuation, and whitespace matches that count in none (schema v2).
        let mut expect = [0u32; 4];
        for (_, _, rule, category, issue_type) in &want {
            expect[classify(issue_type, category, rule) as usize] += 1;
        }
        assert_eq!(
            [counts.grammar, counts.spelling, counts.punctuation],
            expect[..3],
            "text: {text}"
        );
        let total: u32 = counts.by_category.values().sum();
        assert_eq!(total as usize, want.len() - expect[3] as usize);
    }
    // " ," is a whitespace match: returned, marked as counted in none of the three.
    let learner = &resp.results[3];
    let space = learner
        .matches
        .iter()
        .find(|m| m.rule_id == "COMMA_PARENTHESIS_WHITESPACE")
        .expect("LanguageTool flags the space before the comma");
    assert_eq!(
        (space.issue_type.as_str(), space.kind.as_str()),
        ("whitespace", "none")
    );
    // The learner sentence: real categories of real rules.
    let by_rule = |id: &str| learner.matches.iter().find(|m| m.rule_id == id);
    let base = by_rule("BASE_FORM").expect("BASE_FORM fires on 'I has'");
    assert_eq!(
        (base.category_id.as_str(), base.kind.as_str()),
        ("GRAMMAR", "grammar")
    );
    let typo = by_rule("MORFOLOGIK_RULE_EN_US").expect("a spelling match on 'teh'");
    assert_eq!(
        (typo.category_id.as_str(), typo.kind.as_str()),
        ("TYPOS", "spelling")
    );
    assert_eq!(covered(&texts[3], typo), "teh");
    assert_eq!(typo.replacements[0], "the");
    let an = by_rule("EN_A_VS_AN").expect("a vs an");
    assert_eq!(
        (an.category_id.as_str(), an.issue_type.as_str()),
        ("MISC", "misspelling")
    );
    assert_eq!(an.kind, "grammar");
}

#[tokio::test]
async fn offsets_on_emoji_and_combining_text_point_at_the_error() {
    let urls = languagetool_urls();
    let server = TestServer::start(grammar_args(&urls[..1])).await;
    let text = "I like 👍 teh dog. The cafe\u{301} 👍👍 was closed becuase of rain.";
    let resp = server
        .client
        .check_grammar(vec![text.into()], None)
        .await
        .unwrap();
    let typos: Vec<&GrammarMatch> = resp.results[0]
        .matches
        .iter()
        .filter(|m| m.rule_id == "MORFOLOGIK_RULE_EN_US")
        .collect();
    let words: Vec<String> = typos.iter().map(|m| covered(text, m)).collect();
    assert!(words.contains(&"teh".to_string()), "{words:?}");
    assert!(words.contains(&"becuase".to_string()), "{words:?}");
    let teh = typos.iter().find(|m| covered(text, m) == "teh").unwrap();
    // "I like " is 7 units, 👍 two more, then a space: UTF-16 offset 10, character offset 9.
    assert_eq!((teh.offset_utf16, teh.offset), (10, 9));
    let becuase = typos
        .iter()
        .find(|m| covered(text, m) == "becuase")
        .unwrap();
    // Three emoji before it: three units more than characters.
    assert_eq!(becuase.offset_utf16 - becuase.offset, 3);
}

#[tokio::test]
async fn info_reports_the_version_languagetool_reports() {
    let urls = languagetool_urls();
    let server = TestServer::start(grammar_args(&urls)).await;
    let info = server.client.info().await.unwrap();
    let (version, _) = direct(&urls[0], "Hello.").await;
    assert_eq!(info.languagetool_version, version);
    if let Ok(pinned) = std::env::var("HEMMA_TEST_LANGUAGETOOL_VERSION") {
        assert_eq!(info.languagetool_version, pinned);
    }
    let body: serde_json::Value = reqwest::get(server.http("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["languagetool"]["version"], version.as_str());
    assert_eq!(
        body["languagetool"]["upstreams"].as_array().unwrap().len(),
        urls.len()
    );
}
