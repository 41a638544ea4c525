//! The attribute ruler's POS/TAG/DEP rules (PORT.md): fixed-length token patterns over TAG, DEP,
//! LOWER and IS_SPACE, all matched against the values before any rule applies, then applied in
//! rule order (later rules override). LEMMA-only rules are not loaded.

use std::path::Path;

use ahash::AHashMap as HashMap;
use rmpv::Value;

use super::NlpError;

/// A token attribute value a pattern can test.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Val {
    /// Text, while loading.
    Str(String),
    /// Text, interned: its id in [`AttributeRuler::ids`] (from 1).
    Id(u32),
    Bool(bool),
}

#[derive(Debug, Clone)]
enum Cond {
    Is(Val),
    In(Vec<Val>),
    NotIn(Vec<Val>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attr {
    Tag,
    Dep,
    Lower,
    IsSpace,
}

#[derive(Debug, Clone)]
struct Rule {
    patterns: Vec<Vec<Vec<(Attr, Cond)>>>,
    index: i64,
    pos: Option<String>,
    tag: Option<String>,
    dep: Option<String>,
}

/// The loaded rules.
#[derive(Debug)]
pub struct AttributeRuler {
    rules: Vec<Rule>,
    /// Every text a rule tests, interned, so matching compares integers.
    ids: HashMap<String, u32>,
}

/// What the ruler needs of one token, and what it sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotated {
    /// Coarse POS (empty when no rule sets it).
    pub pos: String,
    /// Fine tag.
    pub tag: String,
    /// Dependency label.
    pub dep: String,
}

fn val(v: &Value) -> Option<Val> {
    match v {
        Value::String(s) => s.as_str().map(|s| Val::Str(s.to_owned())),
        Value::Boolean(b) => Some(Val::Bool(*b)),
        _ => None,
    }
}

fn key_str(k: &Value) -> Option<&str> {
    k.as_str()
}

/// Replaces every text value of the rules by an id, returning the text → id table.
fn intern(rules: &mut [Rule]) -> HashMap<String, u32> {
    let mut ids: HashMap<String, u32> = HashMap::new();
    for rule in rules {
        for spec in rule.patterns.iter_mut().flatten().flatten() {
            let values: &mut [Val] = match &mut spec.1 {
                Cond::Is(v) => std::slice::from_mut(v),
                Cond::In(list) | Cond::NotIn(list) => list,
            };
            for v in values {
                if let Val::Str(text) = v {
                    let next = ids.len() as u32 + 1;
                    *v = Val::Id(*ids.entry(std::mem::take(text)).or_insert(next));
                }
            }
        }
    }
    ids
}

impl AttributeRuler {
    /// Loads `<model_dir>/attribute_ruler/patterns`.
    pub fn load(model_dir: &Path) -> Result<AttributeRuler, NlpError> {
        let path = model_dir.join("attribute_ruler/patterns");
        let bad = |message: String| NlpError::Format {
            path: path.clone(),
            message,
        };
        let bytes = std::fs::read(&path).map_err(|source| NlpError::Read {
            path: path.clone(),
            source,
        })?;
        let root =
            rmpv::decode::read_value(&mut bytes.as_slice()).map_err(|e| bad(e.to_string()))?;
        let mut rules = Vec::new();
        for (r, raw) in root
            .as_array()
            .ok_or_else(|| bad("not an array".into()))?
            .iter()
            .enumerate()
        {
            let field = |name: &str| {
                raw.as_map()
                    .and_then(|m| m.iter().find(|(k, _)| key_str(k) == Some(name)))
                    .map(|(_, v)| v)
            };
            let attrs = field("attrs")
                .and_then(Value::as_map)
                .ok_or_else(|| bad(format!("rule {r} has no attrs")))?;
            let set = |name: &str| {
                attrs
                    .iter()
                    .find(|(k, _)| key_str(k) == Some(name))
                    .and_then(|(_, v)| v.as_str().map(str::to_owned))
            };
            let (pos, tag, dep) = (set("POS"), set("TAG"), set("DEP"));
            if pos.is_none() && tag.is_none() && dep.is_none() {
                continue; // LEMMA (or other) only
            }
            let index = field("index").and_then(Value::as_i64).unwrap_or(0);
            let mut patterns = Vec::new();
            for pattern in field("patterns")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("rule {r} has no patterns")))?
            {
                let mut specs = Vec::new();
                for spec in pattern
                    .as_array()
                    .ok_or_else(|| bad(format!("rule {r}: a pattern is not a list")))?
                {
                    let mut tests = Vec::new();
                    for (k, v) in spec
                        .as_map()
                        .ok_or_else(|| bad(format!("rule {r}: a token spec is not a map")))?
                    {
                        let attr = match key_str(k) {
                            Some("TAG") => Attr::Tag,
                            Some("DEP") => Attr::Dep,
                            Some("LOWER") => Attr::Lower,
                            Some("IS_SPACE") => Attr::IsSpace,
                            other => {
                                return Err(bad(format!(
                                    "rule {r} tests {other:?}, which this port does not know"
                                )));
                            }
                        };
                        let cond = match v {
                            Value::Map(ops) => {
                                let (op, arg) = ops
                                    .first()
                                    .ok_or_else(|| bad(format!("rule {r}: empty condition")))?;
                                let list: Vec<Val> = arg
                                    .as_array()
                                    .map(|a| a.iter().filter_map(val).collect())
                                    .unwrap_or_default();
                                match key_str(op) {
                                    Some("IN") => Cond::In(list),
                                    Some("NOT_IN") => Cond::NotIn(list),
                                    other => {
                                        return Err(bad(format!(
                                            "rule {r} uses operator {other:?}"
                                        )));
                                    }
                                }
                            }
                            v => Cond::Is(val(v).ok_or_else(|| {
                                bad(format!("rule {r}: value {v} is neither text nor bool"))
                            })?),
                        };
                        tests.push((attr, cond));
                    }
                    specs.push(tests);
                }
                patterns.push(specs);
            }
            rules.push(Rule {
                patterns,
                index,
                pos,
                tag,
                dep,
            });
        }
        let ids = intern(&mut rules);
        Ok(AttributeRuler { rules, ids })
    }

    /// Applies the rules to one document: texts, tags and deps in, POS/TAG/DEP out.
    pub fn apply(&self, texts: &[&str], tags: &[&str], deps: &[String]) -> Vec<Annotated> {
        let n = texts.len();
        // Each token's TAG, DEP and LOWER as interned ids (0: a text no rule tests).
        let id = |s: &str| self.ids.get(s).copied().unwrap_or(0);
        let tag_ids: Vec<u32> = tags.iter().map(|t| id(t)).collect();
        let dep_ids: Vec<u32> = deps.iter().map(|d| id(d)).collect();
        let lower_ids: Vec<u32> = texts.iter().map(|t| id(&t.to_lowercase())).collect();
        let space: Vec<bool> = texts
            .iter()
            .map(|t| super::pychar::is_space_str(t))
            .collect();
        let equals = |attr: Attr, i: usize, want: &Val| match (attr, want) {
            (Attr::Tag, Val::Id(w)) => tag_ids[i] == *w,
            (Attr::Dep, Val::Id(w)) => dep_ids[i] == *w,
            (Attr::Lower, Val::Id(w)) => lower_ids[i] == *w,
            (Attr::IsSpace, Val::Bool(w)) => space[i] == *w,
            _ => false,
        };
        let holds = |tests: &[(Attr, Cond)], i: usize| {
            tests.iter().all(|(attr, cond)| match cond {
                Cond::Is(want) => equals(*attr, i, want),
                Cond::In(list) => list.iter().any(|w| equals(*attr, i, w)),
                Cond::NotIn(list) => !list.iter().any(|w| equals(*attr, i, w)),
            })
        };
        let mut out: Vec<Annotated> = (0..n)
            .map(|i| Annotated {
                pos: String::new(),
                tag: tags[i].to_owned(),
                dep: deps[i].clone(),
            })
            .collect();
        for rule in &self.rules {
            for pattern in &rule.patterns {
                let len = pattern.len();
                if len == 0 || len > n {
                    continue;
                }
                for start in 0..=n - len {
                    if !(0..len).all(|k| holds(&pattern[k], start + k)) {
                        continue;
                    }
                    let target = if rule.index >= 0 {
                        start as i64 + rule.index
                    } else {
                        (start + len) as i64 + rule.index
                    };
                    let Some(t) = usize::try_from(target).ok().and_then(|t| out.get_mut(t)) else {
                        continue;
                    };
                    if let Some(p) = &rule.pos {
                        t.pos = p.clone();
                    }
                    if let Some(g) = &rule.tag {
                        t.tag = g.clone();
                    }
                    if let Some(d) = &rule.dep {
                        t.dep = d.clone();
                    }
                }
            }
        }
        out
    }
}
