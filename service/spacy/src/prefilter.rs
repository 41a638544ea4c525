//! An exact pre-filter for the tokenizer's look-around patterns (PORT.md): the same pattern
//! with every look-around removed matches a superset, and the `regex` crate runs it in a few
//! hundred nanoseconds, so when it finds nothing the slow backtracking call is skipped.

use fancy_regex::{Matches, Regex};

/// A look-around pattern and, when it compiles, its look-around-free superset.
#[derive(Debug)]
pub struct FilteredRegex {
    exact: Regex,
    superset: Option<regex::Regex>,
}

impl FilteredRegex {
    /// Wraps `exact`, compiled from `pattern`.
    pub fn new(exact: Regex, pattern: &str) -> FilteredRegex {
        let superset = strip_lookaround(pattern).and_then(|p| regex::Regex::new(&p).ok());
        FilteredRegex { exact, superset }
    }

    /// Whether the superset rules out any match (so the exact pattern cannot match either).
    fn ruled_out(&self, s: &str) -> bool {
        self.superset.as_ref().is_some_and(|r| !r.is_match(s))
    }

    /// The leftmost-first match, as `fancy_regex::Regex::find`.
    pub fn find<'t>(&self, s: &'t str) -> fancy_regex::Result<Option<fancy_regex::Match<'t>>> {
        if self.ruled_out(s) {
            return Ok(None);
        }
        self.exact.find(s)
    }

    /// All matches, as `fancy_regex::Regex::find_iter`; `None` when there can be none.
    pub fn find_iter<'r, 't>(&'r self, s: &'t str) -> Option<Matches<'r, 't>> {
        (!self.ruled_out(s)).then(|| self.exact.find_iter(s))
    }
}

/// The index of the `]` closing the class that opens at `i` (Python `re` rules: a `]` right
/// after `[` or `[^` is literal; escapes skip a character).
fn class_end(c: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if c.get(j) == Some(&'^') {
        j += 1;
    }
    if c.get(j) == Some(&']') {
        j += 1;
    }
    while j < c.len() {
        match c[j] {
            '\\' => j += 2,
            ']' => return Some(j),
            _ => j += 1,
        }
    }
    None
}

/// The index of the `)` closing the group that opens at `i`.
fn group_end(c: &[char], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    while j < c.len() {
        match c[j] {
            '\\' => j += 1,
            '[' => j = class_end(c, j)?,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
        j += 1;
    }
    None
}

/// `pattern` with every `(?=…)`, `(?!…)`, `(?<=…)` and `(?<!…)` group removed; `None` when the
/// pattern cannot be scanned (unbalanced), so no filter is used.
pub fn strip_lookaround(pattern: &str) -> Option<String> {
    let c: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len());
    let mut i = 0;
    while i < c.len() {
        let at = |s: &str| s.chars().enumerate().all(|(k, x)| c.get(i + k) == Some(&x));
        if at("(?=") || at("(?!") || at("(?<=") || at("(?<!") {
            i = group_end(&c, i)? + 1;
            // A quantified look-around would change meaning when removed: give up.
            if matches!(c.get(i), Some('?' | '*' | '+' | '{')) {
                return None;
            }
            continue;
        }
        let end = match c[i] {
            '\\' => (i + 1).min(c.len() - 1),
            '[' => class_end(&c, i)?,
            _ => i,
        };
        out.extend(&c[i..=end]);
        i = end + 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookarounds_are_removed_and_classes_kept() {
        assert_eq!(
            strip_lookaround(r"^\+(?![0-9])|(?<=[0-9])%$|[(?=)]x(?<![\]a])y").as_deref(),
            Some(r"^\+|%$|[(?=)]xy")
        );
        assert_eq!(strip_lookaround(r"(?=a)?b"), None);
    }

    #[test]
    fn the_filter_never_hides_a_match() {
        let pattern = r"(?<=[0-9])(?:km|kg)$|^\$(?![0-9])";
        let f = FilteredRegex::new(Regex::new(pattern).unwrap(), pattern);
        for s in ["5km", "xkm", "$", "$5", "abc", "12kg"] {
            assert_eq!(
                f.find(s).unwrap().map(|m| m.range()),
                Regex::new(pattern)
                    .unwrap()
                    .find(s)
                    .unwrap()
                    .map(|m| m.range()),
                "{s}"
            );
        }
        assert!(f.find_iter("abc").is_none());
    }
}
