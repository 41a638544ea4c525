//! One check, end to end: cache, split, pool, offsets, counts.

use std::sync::Arc;

use super::cache::{Cache, Tier, cache_key};
use super::offsets::{Utf16Index, utf16_len};
use super::options::{CheckOptions, OptionsError};
use super::pool::{Pool, PoolError, PoolStatus};
use super::response::ReceivedMatch;
use super::split::split;
use super::{CheckResult, Counts, MAX_REPLACEMENTS, Match, categorise};

/// Longest text, in UTF-16 units, sent to LanguageTool in one piece; a longer one is split on
/// paragraph, then sentence, then word boundaries ([`split`]). LanguageTool's time on one long
/// unpunctuated sentence grows faster than its length (8,000 repeated words: 5.4 s, about x2.9
/// per doubling), so without a cap one text within the server's limits could outlast the check
/// timeout on every retry. 20,000 is over three times the longest ELLIPSE essay (6,024), so
/// essays are never split; the value is part of the fingerprint.
pub const MAX_PART_UTF16: usize = 20_000;

/// Why a check failed. No partial result is ever returned.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GrammarError {
    /// The options are invalid.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The pool failed.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The pool has not finished its first probe.
    #[error("LanguageTool is not ready yet: no instance has answered a probe")]
    NotReady,
}

/// A result and whether it came from the cache.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The result.
    pub result: Arc<CheckResult>,
    /// Answered from the cache.
    pub cached: Option<Tier>,
}

/// The LanguageTool proxy.
#[derive(Debug)]
pub struct Grammar {
    pool: Arc<Pool>,
    cache: Cache,
    defaults: CheckOptions,
}

impl Grammar {
    /// A proxy over `pool` and `cache`, checking with `defaults` unless told otherwise.
    pub fn new(pool: Arc<Pool>, cache: Cache, defaults: CheckOptions) -> Grammar {
        Grammar {
            pool,
            cache,
            defaults,
        }
    }

    /// The configured options (part of the fingerprint).
    pub fn defaults(&self) -> &CheckOptions {
        &self.defaults
    }

    /// The pool's state, for `/readyz`.
    pub fn status(&self) -> PoolStatus {
        self.pool.status()
    }

    /// Waits for the first successful probe; the version it reported, or why it cannot work.
    pub async fn wait_ready(&self) -> Result<String, String> {
        self.pool.wait_ready().await
    }

    /// The LanguageTool version, once known.
    pub fn version(&self) -> Option<&str> {
        self.pool.version()
    }

    /// Checks one text with `options`.
    pub async fn check(&self, text: &str, options: &CheckOptions) -> Result<Checked, GrammarError> {
        options.validate()?;
        let version = self.pool.version().ok_or(GrammarError::NotReady)?;
        let key = cache_key(text, options, version);
        if let Some((result, tier)) = self.cache.get(&key).await {
            return Ok(Checked {
                result,
                cached: Some(tier),
            });
        }
        let result = Arc::new(self.check_upstream(text, options, version).await?);
        self.cache.put(key, result.clone()).await;
        Ok(Checked {
            result,
            cached: None,
        })
    }

    /// Checks `text` upstream, split into parts of at most [`MAX_PART_UTF16`] UTF-16 units (or
    /// the instance's own limit, if lower).
    async fn check_upstream(
        &self,
        text: &str,
        options: &CheckOptions,
        version: &str,
    ) -> Result<CheckResult, GrammarError> {
        let limit = self
            .pool
            .max_text_length()
            .map_or(MAX_PART_UTF16, |l| l.min(MAX_PART_UTF16));
        let received = match utf16_len(text) > limit {
            true => self.check_parts(text, options, limit).await?,
            false => match self.pool.check(text, options).await {
                Ok(r) => r.matches,
                // The upstream told us its limit only now: split under it.
                Err(PoolError::TooLong {
                    limit: Some(limit), ..
                }) if limit > 0 && utf16_len(text) > limit => {
                    self.check_parts(text, options, limit).await?
                }
                Err(e) => return Err(e.into()),
            },
        };
        build_result(text, received, version)
    }

    /// Checks the parts of a long text concurrently and shifts their offsets back.
    async fn check_parts(
        &self,
        text: &str,
        options: &CheckOptions,
        limit: usize,
    ) -> Result<Vec<ReceivedMatch>, GrammarError> {
        let parts = split(text, limit);
        tracing::debug!(
            parts = parts.len(),
            limit,
            "splitting a long text for LanguageTool"
        );
        let checks = parts.iter().map(|part| async move {
            let received = self.pool.check(part.text, options).await?;
            Ok::<_, PoolError>(
                received
                    .matches
                    .into_iter()
                    .map(|mut m| {
                        m.offset_utf16 += part.start_utf16;
                        m
                    })
                    .collect::<Vec<_>>(),
            )
        });
        let per_part = futures::future::try_join_all(checks).await?;
        Ok(per_part.into_iter().flatten().collect())
    }
}

/// Converts offsets, classifies and counts; an offset that does not fit the text is an error.
pub fn build_result(
    text: &str,
    received: Vec<ReceivedMatch>,
    version: &str,
) -> Result<CheckResult, GrammarError> {
    let index = Utf16Index::new(text);
    let mut counts = Counts::default();
    let mut matches = Vec::with_capacity(received.len());
    for mut m in received {
        let span = index
            .to_chars(m.offset_utf16, m.length_utf16)
            .map_err(|e| {
                PoolError::Malformed(format!(
                    "LanguageTool reported match {} (rule {}) at {e}",
                    matches.len(),
                    m.rule_id
                ))
            })?;
        let kind = categorise::classify(&m.issue_type, &m.category_id, &m.rule_id);
        counts.add(kind, &m.category_id);
        m.replacements.truncate(MAX_REPLACEMENTS);
        matches.push(Match {
            received: m,
            offset: span.offset,
            length: span.length,
            kind,
        });
    }
    matches.sort_by_key(|m| (m.received.offset_utf16, m.received.length_utf16));
    Ok(CheckResult {
        languagetool_version: version.to_owned(),
        matches,
        counts,
    })
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;

    use super::*;
    use crate::categorise::{Kind, classify};
    use crate::response::parse_v2;

    /// Real LanguageTool 6.7 answers for the 50 committed ELLIPSE essays (recipe beside the file).
    fn recorded() -> Vec<(String, String, serde_json::Value)> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/languagetool/lt67-ellipse50.jsonl.gz");
        let file = std::fs::File::open(&path).expect("the committed fixture");
        std::io::BufReader::new(flate2::read::GzDecoder::new(file))
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
                let text = v["text"].as_str().unwrap().to_owned();
                (
                    v["id"].as_str().unwrap().to_owned(),
                    text,
                    v["answer"].clone(),
                )
            })
            .collect()
    }

    #[test]
    fn real_answers_count_as_the_old_pipeline_did_schema_v2() {
        let (mut whitespace, mut essays_with_whitespace, mut all) = (0, 0, 0);
        for (id, text, answer) in recorded() {
            let received = parse_v2(answer.to_string().as_bytes()).unwrap();
            let result = build_result(&text, received.matches.clone(), "6.7").unwrap();
            // The old pipeline: drop whitespace matches, then classify what is left.
            let mut want = [0u32; 3];
            let mut dropped = 0;
            for m in &received.matches {
                if m.issue_type == "whitespace" {
                    dropped += 1;
                    continue;
                }
                want[classify("", &m.category_id, &m.rule_id) as usize] += 1;
            }
            let c = &result.counts;
            assert_eq!([c.grammar, c.spelling, c.punctuation], want, "essay {id}");
            assert_eq!(
                c.by_category.values().sum::<u32>(),
                want.iter().sum::<u32>()
            );
            // Every match is still returned; the whitespace ones count in none of the three.
            assert_eq!(result.matches.len(), received.matches.len());
            let none = result
                .matches
                .iter()
                .filter(|m| m.kind == Kind::None)
                .count();
            assert_eq!(none, dropped, "essay {id}");
            whitespace += dropped;
            essays_with_whitespace += usize::from(dropped > 0);
            all += received.matches.len();
        }
        // What makes this fixture worth having: the matches schema v1 counted as spelling.
        assert_eq!((all, whitespace, essays_with_whitespace), (1082, 125, 29));
    }
}
