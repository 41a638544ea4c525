//! Which of the three error counts a LanguageTool match adds to (`docs/features.md`, Tier 1).
//!
//! A match whose rule's issue type is `whitespace` counts in none of them (schema v2, as the old
//! pipeline's LanguageTool service dropped them). Otherwise punctuation if the category id or rule
//! id (upper-cased) contains `PUNCT`; else spelling if the category is TYPOS, SPELLING,
//! TYPOGRAPHY or MISSPELLING or contains `SPELL`; else grammar.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The count a match adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Everything that is neither spelling nor punctuation.
    Grammar,
    /// Typos and misspellings.
    Spelling,
    /// Punctuation.
    Punctuation,
    /// Counted in none of the three (issue type `whitespace`); still returned by `CheckGrammar`.
    None,
}

/// Version of this classification; part of the result cache's key, so results classified under
/// an earlier rule are never served from a disk cache.
pub const CLASSIFICATION_VERSION: u32 = 2;

impl Kind {
    /// `grammar`, `spelling` or `punctuation`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Grammar => "grammar",
            Kind::Spelling => "spelling",
            Kind::Punctuation => "punctuation",
            Kind::None => "none",
        }
    }
}

const SPELLING_CATEGORIES: &[&str] = &["TYPOS", "SPELLING", "TYPOGRAPHY", "MISSPELLING"];

/// Classifies one match by its rule's issue type, category id and rule id.
pub fn classify(issue_type: &str, category_id: &str, rule_id: &str) -> Kind {
    if issue_type.eq_ignore_ascii_case("whitespace") {
        return Kind::None;
    }
    let category = category_id.to_uppercase();
    let rule = rule_id.to_uppercase();
    if category.contains("PUNCT") || rule.contains("PUNCT") {
        Kind::Punctuation
    } else if SPELLING_CATEGORIES.contains(&category.as_str()) || category.contains("SPELL") {
        Kind::Spelling
    } else {
        Kind::Grammar
    }
}

/// Error counts of one text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Grammar matches.
    pub grammar: u32,
    /// Spelling matches.
    pub spelling: u32,
    /// Punctuation matches.
    pub punctuation: u32,
    /// Matches per category id.
    pub by_category: BTreeMap<String, u32>,
}

impl Counts {
    /// Adds one match (a [`Kind::None`] match adds to nothing, its category included).
    pub fn add(&mut self, kind: Kind, category_id: &str) {
        match kind {
            Kind::Grammar => self.grammar += 1,
            Kind::Spelling => self.spelling += 1,
            Kind::Punctuation => self.punctuation += 1,
            Kind::None => return,
        }
        *self.by_category.entry(category_id.to_owned()).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_categorisation_table() {
        let cases = [
            ("TYPOS", "MORFOLOGIK_RULE_EN_US", Kind::Spelling),
            // Without its issue type (the wrapper drops such matches itself) it is typography.
            ("TYPOGRAPHY", "COMMA_PARENTHESIS_WHITESPACE", Kind::Spelling),
            ("PUNCTUATION", "COMMA_COMPOUND_SENTENCE", Kind::Punctuation),
            // The rule id alone makes it punctuation, and it wins over a spelling category.
            ("TYPOGRAPHY", "UNPAIRED_PUNCTUATION", Kind::Punctuation),
            ("GRAMMAR", "MISSING_PUNCT_AFTER", Kind::Punctuation),
            ("MISC", "EN_A_VS_AN", Kind::Grammar),
            ("GRAMMAR", "BASE_FORM", Kind::Grammar),
            ("CASING", "UPPERCASE_SENTENCE_START", Kind::Grammar),
            ("CONFUSED_WORDS", "YOUR_YOU_RE", Kind::Grammar),
            ("SPELLING", "X", Kind::Spelling),
            ("MISSPELLING", "X", Kind::Spelling),
            ("BRITISH_SPELLING", "X", Kind::Spelling),
            // Case does not matter.
            ("typos", "x", Kind::Spelling),
            ("Punctuation", "x", Kind::Punctuation),
            ("", "", Kind::Grammar),
        ];
        for (category, rule, kind) in cases {
            assert_eq!(classify("", category, rule), kind, "{category} / {rule}");
            // Any other issue type leaves the classification to category and rule.
            assert_eq!(classify("misspelling", category, rule), kind);
        }
    }

    #[test]
    fn whitespace_matches_count_in_none_of_the_three() {
        let kind = classify("whitespace", "TYPOGRAPHY", "COMMA_PARENTHESIS_WHITESPACE");
        assert_eq!(kind, Kind::None);
        assert_eq!(kind.name(), "none");
        assert_eq!(classify("Whitespace", "PUNCTUATION", "X"), Kind::None);
        let mut c = Counts::default();
        c.add(kind, "TYPOGRAPHY");
        c.add(Kind::Grammar, "MISC");
        assert_eq!((c.grammar, c.spelling, c.punctuation), (1, 0, 0));
        assert!(!c.by_category.contains_key("TYPOGRAPHY"), "{c:?}");
    }

    #[test]
    fn counts_add_up_per_kind_and_category() {
        let mut c = Counts::default();
        c.add(Kind::Spelling, "TYPOS");
        c.add(Kind::Spelling, "TYPOS");
        c.add(Kind::Grammar, "MISC");
        assert_eq!((c.grammar, c.spelling, c.punctuation), (1, 2, 0));
        assert_eq!(c.by_category["TYPOS"], 2);
        assert_eq!(c.by_category.len(), 2);
    }
}
