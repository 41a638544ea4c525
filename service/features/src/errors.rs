//! Tier 1 error densities from LanguageTool's counts.

use super::safe_divide;

/// LanguageTool matches of one essay's normalised text, by class (`docs/features.md`); the
/// caller maps its checker's answer into it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    /// Grammar matches.
    pub grammar: u32,
    /// Spelling matches.
    pub spelling: u32,
    /// Punctuation matches.
    pub punctuation: u32,
}

/// Errors per 100 words, one value per class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorDensity {
    /// `grammar_errors_per_100_words`.
    pub grammar: f64,
    /// `spelling_errors_per_100_words`.
    pub spelling: f64,
    /// `punctuation_errors_per_100_words`.
    pub punctuation: f64,
}

impl ErrorDensity {
    /// All three NaN: LanguageTool was not asked.
    pub fn undefined() -> ErrorDensity {
        ErrorDensity {
            grammar: f64::NAN,
            spelling: f64::NAN,
            punctuation: f64::NAN,
        }
    }
}

impl ErrorCounts {
    /// `100 * safe_divide(count, word_count)` per class.
    pub fn per_100_words(&self, word_count: f64) -> ErrorDensity {
        let d = |n: u32| 100.0 * safe_divide(f64::from(n), word_count);
        ErrorDensity {
            grammar: d(self.grammar),
            spelling: d(self.spelling),
            punctuation: d(self.punctuation),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn densities_are_per_100_words_and_zero_without_words() {
        let c = ErrorCounts {
            grammar: 3,
            spelling: 1,
            punctuation: 0,
        };
        let d = c.per_100_words(200.0);
        assert_eq!((d.grammar, d.spelling, d.punctuation), (1.5, 0.5, 0.0));
        assert_eq!(c.per_100_words(0.0).grammar, 0.0);
    }
}
