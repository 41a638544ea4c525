//! The spaCy parity check, shared by `tests/parity.rs` and the `nlp-parity` example that prints
//! the parity table: reference documents (the team's oracle, or the committed stress fixture),
//! the port's annotations of them, and the tallies of what differs.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use essay_features::analysis::Analyzer;
use essay_features::{normalise, oracle_features};
use spacy_en_core_sm::pipeline::{Pipeline, Word};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One token as spaCy annotated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefToken {
    /// Text.
    pub text: String,
    /// Followed by a space.
    pub ws: bool,
    /// `[tag, pos, dep, head, sent_start]` as strings.
    pub fields: [String; 5],
}

/// One reference document: an essay (or stress text) in one variant.
#[derive(Debug, Clone)]
pub struct RefDoc {
    /// Essay id.
    pub id: String,
    /// `raw` or `norm`.
    pub variant: &'static str,
    /// The text spaCy annotated.
    pub text: String,
    /// spaCy's tokens.
    pub tokens: Vec<RefToken>,
}

/// One essay's reference features.
#[derive(Debug, Clone)]
pub struct RefFeatures {
    /// Essay id.
    pub id: String,
    /// The essay text (raw).
    pub text: String,
    /// Feature name → value (`None` for NaN).
    pub values: HashMap<String, Option<f64>>,
}

/// A reference set: token-level documents and per-essay features.
#[derive(Debug, Clone, Default)]
pub struct RefSet {
    /// Documents with token annotations.
    pub docs: Vec<RefDoc>,
    /// Essays with features.
    pub features: Vec<RefFeatures>,
}

/// The field names compared per token.
pub const FIELDS: [&str; 5] = ["tag", "pos", "dep", "head", "sent_start"];

fn parse_tokens(v: &serde_json::Value) -> Result<Vec<RefToken>> {
    let arr = v["tokens"].as_array().context("no token list")?;
    arr.iter()
        .map(|t| {
            let s = |k: usize| t[k].as_str().map(str::to_owned).context("token field");
            Ok(RefToken {
                text: s(0)?,
                ws: t[1].as_bool().context("ws flag")?,
                fields: [
                    s(2)?,
                    s(3)?,
                    s(4)?,
                    t[5].as_u64().context("head")?.to_string(),
                    t[6].as_bool().context("sent start")?.to_string(),
                ],
            })
        })
        .collect()
}

fn parse_features(v: &serde_json::Value) -> Result<HashMap<String, Option<f64>>> {
    let map = v["features"].as_object().context("no features")?;
    Ok(map.iter().map(|(k, v)| (k.clone(), v.as_f64())).collect())
}

fn gz_lines(path: &Path) -> Result<impl Iterator<Item = std::io::Result<String>>> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    Ok(BufReader::new(flate2::read::GzDecoder::new(file)).lines())
}

/// Where the team's oracle and essays are: `$HEMMA_ORACLE_DIR` / `$HEMMA_ESSAYS_FILE`, else
/// `../shared/data/{oracle,essays/ellipse_sample.jsonl}` beside the repository.
pub fn oracle_paths() -> (PathBuf, PathBuf) {
    let env_or = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(default))
    };
    (
        env_or("HEMMA_ORACLE_DIR", "../shared/data/oracle"),
        env_or(
            "HEMMA_ESSAYS_FILE",
            "../shared/data/essays/ellipse_sample.jsonl",
        ),
    )
}

/// The team's oracle (600 token-level essays × raw/norm, 2,284 essays' features), or `None`
/// when it is not on this machine. `limit_docs` / `limit_features` cap the essays read.
pub fn load_oracle(limit_docs: usize, limit_features: usize) -> Result<Option<RefSet>> {
    let (dir, essays_file) = oracle_paths();
    let tokens = dir.join("tokens.jsonl.gz");
    if !tokens.exists() || !essays_file.exists() {
        return Ok(None);
    }
    let mut essays = HashMap::new();
    for (n, line) in std::fs::read_to_string(&essays_file)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}", essays_file.display(), n + 1))?;
        let id = v["id"].as_str().context("essay id")?.to_owned();
        let text = v["text"].as_str().context("essay text")?.to_owned();
        essays.insert(id, text);
    }
    let mut set = RefSet::default();
    for line in gz_lines(&tokens)?.take(limit_docs) {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let id = v["id"].as_str().context("oracle id")?.to_owned();
        let raw = essays.get(&id).with_context(|| format!("no essay {id}"))?;
        for (variant, text) in [("raw", raw.clone()), ("norm", normalise(raw))] {
            set.docs.push(RefDoc {
                id: id.clone(),
                variant,
                text,
                tokens: parse_tokens(&v[variant])?,
            });
        }
    }
    let features = dir.join("features.jsonl");
    for line in std::fs::read_to_string(&features)?
        .lines()
        .take(limit_features)
    {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let id = v["id"].as_str().context("oracle id")?.to_owned();
        let text = essays.get(&id).with_context(|| format!("no essay {id}"))?;
        set.features.push(RefFeatures {
            text: text.clone(),
            values: parse_features(&v)?,
            id,
        });
    }
    Ok(Some(set))
}

/// The committed stress fixture (`tests/fixtures/nlp/stress.jsonl.gz`): the spec's 1,100 stress
/// texts and our edge cases, with spaCy's annotations and features.
pub fn load_stress() -> Result<RefSet> {
    let path = repo_root().join("tests/fixtures/nlp/stress.jsonl.gz");
    let mut set = RefSet::default();
    for line in gz_lines(&path)? {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let id = v["id"].as_str().context("id")?.to_owned();
        let text = v["text"].as_str().context("text")?.to_owned();
        for (variant, t) in [("raw", text.clone()), ("norm", normalise(&text))] {
            set.docs.push(RefDoc {
                id: id.clone(),
                variant,
                text: t,
                tokens: parse_tokens(&v[variant])?,
            });
        }
        set.features.push(RefFeatures {
            values: parse_features(&v)?,
            id,
            text,
        });
    }
    Ok(set)
}

/// What differs between the port and spaCy over a set of documents.
#[derive(Debug, Default)]
pub struct TokenTally {
    /// Documents compared.
    pub docs: usize,
    /// spaCy tokens in them.
    pub tokens: usize,
    /// Documents whose token texts or whitespace differ (their fields are not compared).
    pub tokenization_differs: Vec<String>,
    /// Tokens whose fields were compared.
    pub compared: usize,
    /// Per field of [`FIELDS`]: tokens that differ.
    pub differ: [usize; 5],
    /// The first differences, described.
    pub examples: Vec<String>,
}

impl TokenTally {
    /// Share of compared tokens equal in field `f`, in percent.
    pub fn equal_percent(&self, f: usize) -> f64 {
        if self.compared == 0 {
            return 0.0;
        }
        100.0 * (self.compared - self.differ[f]) as f64 / self.compared as f64
    }

    fn add(&mut self, doc: &RefDoc, words: &[Word]) {
        self.docs += 1;
        self.tokens += doc.tokens.len();
        let same_tokens = words.len() == doc.tokens.len()
            && words
                .iter()
                .zip(&doc.tokens)
                .all(|(w, r)| w.text == r.text && w.spacy == r.ws);
        if !same_tokens {
            let at = words
                .iter()
                .zip(&doc.tokens)
                .position(|(w, r)| w.text != r.text || w.spacy != r.ws)
                .unwrap_or(words.len().min(doc.tokens.len()));
            self.tokenization_differs.push(format!(
                "{} {}: tokens differ at {at}: port {:?}, spaCy {:?}",
                doc.id,
                doc.variant,
                words.get(at).map(|w| (&w.text, w.spacy)),
                doc.tokens.get(at).map(|r| (&r.text, r.ws)),
            ));
            return;
        }
        for (k, (w, r)) in words.iter().zip(&doc.tokens).enumerate() {
            self.compared += 1;
            let got = [
                w.tag.clone(),
                w.pos.clone(),
                w.dep.clone(),
                w.head.to_string(),
                w.sent_start.to_string(),
            ];
            for f in 0..5 {
                if got[f] != r.fields[f] {
                    self.differ[f] += 1;
                    if self.examples.len() < 20 {
                        self.examples.push(format!(
                            "{} {} token {k} {:?}: {} {} vs spaCy {}",
                            doc.id, doc.variant, w.text, FIELDS[f], got[f], r.fields[f]
                        ));
                    }
                }
            }
        }
    }

    fn merge(&mut self, other: TokenTally) {
        self.docs += other.docs;
        self.tokens += other.tokens;
        self.tokenization_differs.extend(other.tokenization_differs);
        self.compared += other.compared;
        for f in 0..5 {
            self.differ[f] += other.differ[f];
        }
        let room = 20usize.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room));
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Splits `items` over all cores, folding each part with `f` and the results with `merge`.
fn in_parallel<T: Sync, R: Send + Default>(
    items: &[T],
    f: impl Fn(&mut R, &T) + Sync,
    merge: impl Fn(&mut R, R),
) -> R {
    let chunk = items.len().div_ceil(threads()).max(1);
    let parts: Vec<R> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let f = &f;
                scope.spawn(move || {
                    let mut acc = R::default();
                    for item in part {
                        f(&mut acc, item);
                    }
                    acc
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a parity worker panicked"))
            .collect()
    });
    let mut total = R::default();
    for p in parts {
        merge(&mut total, p);
    }
    total
}

/// Annotates every document with the port and tallies the differences.
pub fn compare_tokens(pipeline: &Pipeline, docs: &[RefDoc]) -> Result<TokenTally> {
    let failures = std::sync::Mutex::new(Vec::new());
    let tally = in_parallel(
        docs,
        |acc: &mut TokenTally, doc| match pipeline.annotate(&doc.text) {
            Ok(words) => acc.add(doc, &words),
            Err(e) => failures
                .lock()
                .expect("lock")
                .push(format!("{} {}: {e}", doc.id, doc.variant)),
        },
        TokenTally::merge,
    );
    let failures = failures.into_inner().expect("lock");
    if !failures.is_empty() {
        bail!(
            "the port failed on {} documents: {}",
            failures.len(),
            failures.join("; ")
        );
    }
    Ok(tally)
}

/// What differs between the port's features and the reference's.
#[derive(Debug, Default)]
pub struct FeatureTally {
    /// Essays compared.
    pub essays: usize,
    /// Values compared.
    pub values: usize,
    /// Values outside relative 1e-9 (or NaN vs a number), described.
    pub differ: Vec<String>,
}

/// True when `got` equals the reference value: within relative 1e-9, NaN where it has null.
pub fn feature_equal(got: f64, want: Option<f64>) -> bool {
    match want {
        None => got.is_nan(),
        Some(w) => (got - w).abs() <= 1e-9 * w.abs().max(1.0),
    }
}

/// Computes the 18 spaCy-derived features of every essay and compares them.
pub fn compare_features(analyzer: &Analyzer, rows: &[RefFeatures]) -> Result<FeatureTally> {
    let failures = std::sync::Mutex::new(Vec::new());
    let tally = in_parallel(
        rows,
        |acc: &mut FeatureTally, row| match analyzer.analyse(&row.text) {
            Ok(a) => {
                acc.essays += 1;
                for (name, got) in oracle_features(&a.text, &a.normalised, &a.raw, &a.readability) {
                    acc.values += 1;
                    let want = row.values.get(name).copied().flatten();
                    if !row.values.contains_key(name) || !feature_equal(got, want) {
                        acc.differ
                            .push(format!("{} {name}: {got} vs reference {want:?}", row.id));
                    }
                }
            }
            Err(e) => failures
                .lock()
                .expect("lock")
                .push(format!("{}: {e}", row.id)),
        },
        |total: &mut FeatureTally, p| {
            total.essays += p.essays;
            total.values += p.values;
            total.differ.extend(p.differ);
        },
    );
    let failures = failures.into_inner().expect("lock");
    if !failures.is_empty() {
        bail!(
            "the port failed on {} essays: {}",
            failures.len(),
            failures.join("; ")
        );
    }
    Ok(tally)
}

/// The parity table of one reference set, as printed by the test and the `nlp-parity` binary.
pub fn table(name: &str, tokens: &TokenTally, features: &FeatureTally) -> String {
    let mut s = format!("## {name}\n");
    s += &format!(
        "documents {} | spaCy tokens {} | documents with different tokens/whitespace {}\n",
        tokens.docs,
        tokens.tokens,
        tokens.tokenization_differs.len()
    );
    s += "| field | tokens compared | differ | equal % |\n|---|---|---|---|\n";
    for (f, name) in FIELDS.iter().enumerate() {
        s += &format!(
            "| {name} | {} | {} | {:.4} |\n",
            tokens.compared,
            tokens.differ[f],
            tokens.equal_percent(f)
        );
    }
    s += &format!(
        "features: {} essays x 18 = {} values, {} differ (relative 1e-9, NaN where null)\n",
        features.essays,
        features.values,
        features.differ.len()
    );
    s
}
