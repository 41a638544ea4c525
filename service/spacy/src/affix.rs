//! Prefix and suffix searches whose cost depends on what they find, not on the chunk's length
//! (PORT.md, "Why the tokenizer is linear").
//!
//! spaCy searches the whole remaining chunk for a prefix and a suffix once per peeled affix, and
//! a backtracking engine tries every start position: quadratic in the chunk. Every alternative of
//! the model's prefix pattern starts with `^` and every alternative of its suffix pattern ends
//! with `$`, so a match lies within a few characters of one end. The pattern's parse tree gives
//! the bound: the characters each alternative consumes or reads, plus, for the one alternative
//! that repeats a single character without limit (`\.\.+`), the length of that character's run
//! at the end of the text. The search then runs on that window only. A pattern of another shape
//! gets no window and is searched as before, exactly but not in linear time.

use fancy_regex::{Assertion, Expr, LookAround, Regex};

use super::prefilter::strip_lookaround;
use super::tokenizer::Work;

/// Which end of a chunk an affix pattern matches at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Every alternative starts with `^`.
    Prefix,
    /// Every alternative ends with `$`.
    Suffix,
}

/// Characters an expression consumes (at least, at most) and the furthest character it reads,
/// counted from where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Extent {
    min: usize,
    max: usize,
    reach: usize,
}

impl Extent {
    const ZERO: Extent = Extent {
        min: 0,
        max: 0,
        reach: 0,
    };

    /// `self` followed by `next`.
    fn then(self, next: Extent) -> Extent {
        Extent {
            min: self.min + next.min,
            max: self.max + next.max,
            reach: self.reach.max(self.max + next.reach),
        }
    }
}

/// The extent of a bounded expression; `None` for an unbounded repetition or anything this
/// analysis does not model (back-references, case-insensitive literals, line anchors, ...).
fn extent(e: &Expr) -> Option<Extent> {
    let fixed = |n: usize| Extent {
        min: n,
        max: n,
        reach: n,
    };
    Some(match e {
        Expr::Empty => Extent::ZERO,
        Expr::Any { .. } => fixed(1),
        Expr::Literal { val, casei: false } => fixed(val.chars().count()),
        // A delegated piece of fixed size; one character of margin for any boundary it checks.
        Expr::Delegate {
            size, casei: false, ..
        } if *size > 0 => Extent {
            reach: size + 1,
            ..fixed(*size)
        },
        Expr::Concat(items) => items
            .iter()
            .try_fold(Extent::ZERO, |acc, item| Some(acc.then(extent(item)?)))?,
        Expr::Alt(items) => {
            let all = items.iter().map(extent).collect::<Option<Vec<_>>>()?;
            Extent {
                min: all.iter().map(|x| x.min).min().unwrap_or(0),
                max: all.iter().map(|x| x.max).max().unwrap_or(0),
                reach: all.iter().map(|x| x.reach).max().unwrap_or(0),
            }
        }
        Expr::Group(inner) | Expr::AtomicGroup(inner) => extent(inner)?,
        Expr::Repeat { child, lo, hi, .. } if *hi != usize::MAX => {
            let c = extent(child)?;
            Extent {
                min: lo.checked_mul(c.min)?,
                max: hi.checked_mul(c.max)?,
                reach: if *hi == 0 {
                    0
                } else {
                    (hi - 1).checked_mul(c.max)?.checked_add(c.reach)?
                },
            }
        }
        Expr::LookAround(inner, LookAround::LookAhead | LookAround::LookAheadNeg) => Extent {
            reach: extent(inner)?.reach,
            ..Extent::ZERO
        },
        // Reads only characters before the position, which the window always holds.
        Expr::LookAround(_, LookAround::LookBehind | LookAround::LookBehindNeg) => Extent::ZERO,
        Expr::Assertion(
            Assertion::LeftWordBoundary
            | Assertion::LeftWordHalfBoundary
            | Assertion::RightWordBoundary
            | Assertion::RightWordHalfBoundary
            | Assertion::WordBoundary
            | Assertion::NotWordBoundary,
        ) => Extent {
            reach: 1,
            ..Extent::ZERO
        },
        _ => return None,
    })
}

/// One character class, for measuring a run of it.
#[derive(Debug)]
enum CharTest {
    Char(char),
    Any { newline: bool },
    Class(regex::Regex),
}

impl CharTest {
    /// The test for a repeated single-character expression, if it is one.
    fn of(e: &Expr) -> Option<CharTest> {
        match e {
            Expr::Literal { val, casei: false } => {
                let mut chars = val.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Some(CharTest::Char(c)),
                    _ => None,
                }
            }
            Expr::Any { newline } => Some(CharTest::Any { newline: *newline }),
            Expr::Delegate {
                inner,
                size: 1,
                casei: false,
            } => regex::Regex::new(&format!(r"\A(?:{inner})\z"))
                .ok()
                .map(CharTest::Class),
            _ => None,
        }
    }

    fn test(&self, c: char) -> bool {
        match self {
            CharTest::Char(x) => *x == c,
            CharTest::Any { newline } => *newline || c != '\n',
            CharTest::Class(re) => re.is_match(c.encode_utf8(&mut [0; 4])),
        }
    }
}

/// How far one alternative can reach into the chunk from its end: a fixed part and, for an
/// alternative whose last item repeats one character without limit (before the `$` of a
/// suffix), that character.
#[derive(Debug)]
struct Alternative {
    fixed: Extent,
    run: CharTest,
}

/// The bound of a whole pattern: the largest reach of its fixed alternatives, and the
/// alternatives with a run, measured on each text.
#[derive(Debug)]
struct Bound {
    fixed_reach: usize,
    runs: Vec<Alternative>,
}

/// The bound of `pattern` on `side`, or `None` when its shape is not the one modelled.
fn bound(pattern: &str, side: Side) -> Option<Bound> {
    let tree = Expr::parse_tree(pattern).ok()?;
    let alternatives = match &tree.expr {
        Expr::Alt(items) => items.iter().collect::<Vec<_>>(),
        one => vec![one],
    };
    let mut out = Bound {
        fixed_reach: 0,
        runs: Vec::new(),
    };
    for alt in alternatives {
        let items: &[Expr] = match alt {
            Expr::Concat(items) => items,
            one => std::slice::from_ref(one),
        };
        let body = match side {
            Side::Prefix => match items.split_first()? {
                (Expr::Assertion(Assertion::StartText), rest) => rest,
                _ => return None,
            },
            Side::Suffix => match items.split_last()? {
                (Expr::Assertion(Assertion::EndText), rest) => rest,
                _ => return None,
            },
        };
        // An unlimited repetition is modelled only as the last item: a prefix's run then starts
        // after the fixed part, a suffix's run is the chunk's last characters.
        let (fixed_items, run) = match body.split_last() {
            Some((last, rest)) if unlimited(last).is_some() => (rest, unlimited(last)),
            _ => (body, None),
        };
        let fixed = fixed_items
            .iter()
            .try_fold(Extent::ZERO, |acc, item| Some(acc.then(extent(item)?)))?;
        match run {
            Some(child) => out.runs.push(Alternative {
                fixed,
                run: CharTest::of(child)?,
            }),
            None => out.fixed_reach = out.fixed_reach.max(fixed.reach.max(fixed.max)),
        }
    }
    Some(out)
}

/// The repeated expression of an unbounded repetition.
fn unlimited(e: &Expr) -> Option<&Expr> {
    match e {
        Expr::Repeat {
            child,
            hi: usize::MAX,
            ..
        } => Some(child),
        _ => None,
    }
}

/// Characters from byte `at` of `s` on that pass `test`, stopping at the first that fails.
fn run_forward(s: &str, at: usize, test: &CharTest) -> usize {
    s[at..].chars().take_while(|&c| test.test(c)).count()
}

/// Characters at the end of `s` that pass `test`.
fn run_backward(s: &str, test: &CharTest) -> usize {
    s.chars().rev().take_while(|&c| test.test(c)).count()
}

/// Byte offset after the first `n` characters of `s` (its length if shorter).
fn after_chars(s: &str, n: usize) -> usize {
    s.char_indices().nth(n).map_or(s.len(), |(b, _)| b)
}

/// Byte offset where the last `n` characters of `s` start (0 if shorter).
fn before_last_chars(s: &str, n: usize) -> usize {
    if n == 0 {
        return s.len();
    }
    s.char_indices().rev().nth(n - 1).map_or(0, |(b, _)| b)
}

/// A prefix or suffix pattern of the tokenizer, searched in linear time when its shape allows.
#[derive(Debug)]
pub struct AffixPattern {
    side: Side,
    /// The exact pattern; for a bounded prefix, compiled as `^(?:pattern)` so the engine only
    /// tries position 0 (the same matches, as every alternative starts with `^`).
    exact: Regex,
    /// The pattern with its look-arounds removed (a superset), when the `regex` crate takes it.
    superset: Option<regex::Regex>,
    bound: Option<Bound>,
}

impl AffixPattern {
    /// Compiles `pattern` for `side` with the backtracking limit `backtrack_limit`.
    pub fn new(
        side: Side,
        pattern: &str,
        backtrack_limit: usize,
    ) -> Result<AffixPattern, fancy_regex::Error> {
        let bound = bound(pattern, side);
        let source = match (side, &bound) {
            (Side::Prefix, Some(_)) => format!("^(?:{pattern})"),
            _ => pattern.to_owned(),
        };
        let exact = fancy_regex::RegexBuilder::new(&source)
            .backtrack_limit(backtrack_limit)
            .build()?;
        let superset = strip_lookaround(pattern).and_then(|p| regex::Regex::new(&p).ok());
        Ok(AffixPattern {
            side,
            exact,
            superset,
            bound,
        })
    }

    /// Whether searches are limited to a window at the matching end (the pattern has the
    /// modelled shape).
    pub fn is_windowed(&self) -> bool {
        self.bound.is_some()
    }

    /// Length in characters of the affix of `s` (0 when none), as spaCy's `find_prefix` /
    /// `find_suffix` (a Python `search` over the whole string); the bytes each engine is given
    /// are added to `work`.
    pub fn find_len(&self, s: &str, work: &mut Work) -> Result<usize, fancy_regex::Error> {
        let m = match (&self.bound, self.side) {
            (Some(bound), Side::Prefix) => {
                let end = after_chars(s, self.prefix_reach(bound, s));
                let window = &s[..end];
                if !self.superset_from(window, 0, work) {
                    return Ok(0);
                }
                work.add_regex(window.len());
                self.exact.find(window)?
            }
            (Some(bound), Side::Suffix) => {
                let mut from = before_last_chars(s, self.suffix_reach(bound, s));
                if let Some(superset) = &self.superset {
                    work.add_regex(s.len() - from);
                    match superset.find_at(s, from) {
                        Some(m) => from = m.start(),
                        None => return Ok(0),
                    }
                }
                work.add_regex(s.len() - from);
                self.exact.find_from_pos(s, from)?
            }
            (None, _) => {
                if !self.superset_from(s, 0, work) {
                    return Ok(0);
                }
                work.add_regex(s.len());
                self.exact.find(s)?
            }
        };
        Ok(m.map_or(0, |m| m.as_str().chars().count()))
    }

    /// Whether the superset can match `s` from byte `from` (true without a superset).
    fn superset_from(&self, s: &str, from: usize, work: &mut Work) -> bool {
        match &self.superset {
            Some(superset) => {
                work.add_regex(s.len() - from);
                superset.find_at(s, from).is_some()
            }
            None => true,
        }
    }

    /// Characters from the start of `s` that a prefix match can consume or read.
    fn prefix_reach(&self, bound: &Bound, s: &str) -> usize {
        let mut reach = bound.fixed_reach;
        for alt in &bound.runs {
            reach = reach.max(alt.fixed.reach);
            // The run starts where the fixed part ends; it reads one character past its end.
            for j in alt.fixed.min..=alt.fixed.max {
                let at = after_chars(s, j);
                reach = reach.max(j + run_forward(s, at, &alt.run) + 1);
            }
        }
        reach
    }

    /// Characters at the end of `s` within which every suffix match starts.
    fn suffix_reach(&self, bound: &Bound, s: &str) -> usize {
        let mut reach = bound.fixed_reach;
        for alt in &bound.runs {
            reach = reach.max(alt.fixed.max + run_backward(s, &alt.run));
        }
        reach
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(p: &AffixPattern, plain: &Regex, s: &str) -> (usize, usize) {
        let full = plain
            .find(s)
            .unwrap()
            .map_or(0, |m| m.as_str().chars().count());
        (p.find_len(s, &mut Work::default()).unwrap(), full)
    }

    /// Every string over `alphabet` up to `max_len` characters.
    fn strings(alphabet: &[char], max_len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..max_len {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    #[test]
    fn windowed_searches_find_what_a_whole_string_search_finds() {
        let cases = [
            (
                Side::Prefix,
                r"^\.\.+|^US\$|^\+(?![0-9])|^[a(]|^……|^x(?=y.)",
            ),
            (
                Side::Suffix,
                r"\.\.+$|(?<=[0-9])(?:km|m/s|%)$|'s$|(?<=[a-z][a-z])\.$|…$|\)$|(?<=°[Ff])\.$",
            ),
        ];
        let alphabet = [
            '.', 'U', 'S', '$', '+', '1', 'a', '(', ')', '…', 'k', 'm', '/', '\'',
        ];
        for (side, pattern) in cases {
            let p = AffixPattern::new(side, pattern, 1_000_000).unwrap();
            assert!(p.is_windowed(), "{pattern}");
            let plain = Regex::new(pattern).unwrap();
            for s in strings(&alphabet, 4) {
                let (got, want) = lengths(&p, &plain, &s);
                assert_eq!(got, want, "{side:?} {s:?}");
            }
            for s in [
                format!("x{}", ".".repeat(50)),
                format!("{}x", ".".repeat(50)),
                ".".repeat(51),
                format!("°F{}", "."),
                format!("12{}", "km"),
            ] {
                let (got, want) = lengths(&p, &plain, &s);
                assert_eq!(got, want, "{side:?} {s:?}");
            }
        }
    }

    #[test]
    fn windows_are_small_for_hostile_chunks() {
        let p = AffixPattern::new(Side::Suffix, r"\)$|\.\.+$|(?<=[0-9])%$", 1_000_000).unwrap();
        let mut work = Work::default();
        let s = format!("x{}", ")".repeat(10_000));
        assert_eq!(p.find_len(&s, &mut work).unwrap(), 1);
        assert!(work.regex_bytes < 10, "{work:?}");
        let q = AffixPattern::new(Side::Prefix, r"^\(|^\.\.+", 1_000_000).unwrap();
        let mut work = Work::default();
        let s = format!("({}", "x".repeat(10_000));
        assert_eq!(q.find_len(&s, &mut work).unwrap(), 1);
        assert!(work.regex_bytes < 10, "{work:?}");
    }

    #[test]
    fn other_shapes_are_searched_whole() {
        for (side, pattern) in [
            (Side::Prefix, r"^a|b"),
            (Side::Suffix, r"a$|b"),
            (Side::Suffix, r"a+b$"),
            (Side::Prefix, r"^a$"),
            (Side::Suffix, r"(?i)a$"),
        ] {
            let p = AffixPattern::new(side, pattern, 1_000_000).unwrap();
            assert!(!p.is_windowed(), "{pattern}");
            let plain = Regex::new(pattern).unwrap();
            for s in ["ab", "ba", "xab", "aab", "a", "A"] {
                let (got, want) = lengths(&p, &plain, s);
                assert_eq!(got, want, "{pattern} {s:?}");
            }
        }
    }
}
