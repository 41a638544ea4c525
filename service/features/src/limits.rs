//! Per-document limits (docs/features.md, Limits): the analyser refuses a text that would make
//! it work long or hold much memory, with a typed reason and one sentence for a person, before
//! doing the expensive work.

use spacy_en_core_sm::NlpError;
use spacy_en_core_sm::pychar::is_space;

/// The most a document may have for the analyser to take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Characters in the longest run of non-whitespace characters (Python's `str.isspace`).
    pub max_word_chars: usize,
    /// spaCy tokens of the text (raw and normalised document each).
    pub max_tokens: usize,
    /// Sentence strings of the raw document (the ones embedded; docs/features.md).
    pub max_sentences: usize,
    /// Paragraphs of the text (docs/features.md).
    pub max_paragraphs: usize,
}

/// The limits the server applies; part of its fingerprint through [`Limits::id`].
pub const LIMITS: Limits = Limits {
    max_word_chars: 2_000,
    max_tokens: 20_000,
    max_sentences: 2_000,
    max_paragraphs: 2_000,
};

impl Limits {
    /// A short stable id of the limits, e.g. `word<=2000c;tokens<=20000;sentences<=2000;paragraphs<=2000`.
    pub fn id(&self) -> String {
        format!(
            "word<={}c;tokens<={};sentences<={};paragraphs<={}",
            self.max_word_chars, self.max_tokens, self.max_sentences, self.max_paragraphs
        )
    }
}

/// Which limit a document passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A run of non-whitespace characters is longer than [`Limits::max_word_chars`].
    WordTooLong,
    /// More tokens than [`Limits::max_tokens`].
    TooManyTokens,
    /// More sentences than [`Limits::max_sentences`].
    TooManySentences,
    /// More paragraphs than [`Limits::max_paragraphs`].
    TooManyParagraphs,
    /// A tokenizer pattern reached its backtracking limit on a piece of the text.
    PatternGaveUp,
}

impl Limit {
    /// Every limit, in documentation order.
    pub const ALL: [Limit; 5] = [
        Limit::WordTooLong,
        Limit::TooManyTokens,
        Limit::TooManySentences,
        Limit::TooManyParagraphs,
        Limit::PatternGaveUp,
    ];

    /// The stable snake_case code (`word_too_long`, ...) clients see.
    pub fn code(&self) -> &'static str {
        match self {
            Limit::WordTooLong => "word_too_long",
            Limit::TooManyTokens => "too_many_tokens",
            Limit::TooManySentences => "too_many_sentences",
            Limit::TooManyParagraphs => "too_many_paragraphs",
            Limit::PatternGaveUp => "pattern_gave_up",
        }
    }
}

/// Why an essay was not analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyseError {
    /// The essay passes a per-document limit.
    #[error("{message}")]
    Limited {
        /// Which limit.
        limit: Limit,
        /// One sentence for a person.
        message: String,
    },
    /// The caller cancelled the request.
    #[error("the request was cancelled")]
    Cancelled,
    /// The NLP pipeline failed otherwise.
    #[error(transparent)]
    Nlp(NlpError),
}

impl From<NlpError> for AnalyseError {
    fn from(e: NlpError) -> AnalyseError {
        match e {
            NlpError::Cancelled => AnalyseError::Cancelled,
            NlpError::Match { name, len, .. } => AnalyseError::Limited {
                limit: Limit::PatternGaveUp,
                message: format!(
                    "the tokenizer's {name} pattern gave up on a piece of the text of {} bytes \
                     (its backtracking limit); {WHERE}",
                    thousands(len)
                ),
            },
            other => AnalyseError::Nlp(other),
        }
    }
}

/// Where a refused person reads about the limits.
const WHERE: &str = "see docs/features.md, Limits";

impl AnalyseError {
    /// The limit that refused the essay, if one did.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            AnalyseError::Limited { limit, .. } => Some(*limit),
            _ => None,
        }
    }

    /// A count over its limit: "the text has 5,000 sentences; the analyser takes at most 2,000".
    pub(crate) fn count(limit: Limit, what: &str, count: usize, max: usize) -> AnalyseError {
        AnalyseError::Limited {
            limit,
            message: format!(
                "the text has {} {what}; the analyser takes at most {} ({WHERE})",
                thousands(count),
                thousands(max)
            ),
        }
    }

    /// A word over its limit, with where it starts.
    pub(crate) fn word(word: Word, max: usize) -> AnalyseError {
        AnalyseError::Limited {
            limit: Limit::WordTooLong,
            message: format!(
                "a word of {} characters starts at character {} (counting from 0); the analyser \
                 takes words of at most {} characters ({WHERE})",
                thousands(word.chars),
                thousands(word.start),
                thousands(max)
            ),
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A run of non-whitespace characters: where it starts and how long it is, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Word {
    /// Character offset of its first character (from 0).
    pub start: usize,
    /// Its length in characters.
    pub chars: usize,
}

/// The longest run of non-whitespace characters of `text` (the first of equal ones); one pass.
pub fn longest_word(text: &str) -> Word {
    let mut best = Word::default();
    let mut current = Word::default();
    for (i, c) in text.chars().enumerate() {
        if is_space(c) {
            current.chars = 0;
            continue;
        }
        if current.chars == 0 {
            current.start = i;
        }
        current.chars += 1;
        if current.chars > best.chars {
            best = current;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_the_id_are_stable() {
        let codes: Vec<&str> = Limit::ALL.iter().map(Limit::code).collect();
        assert_eq!(
            codes,
            [
                "word_too_long",
                "too_many_tokens",
                "too_many_sentences",
                "too_many_paragraphs",
                "pattern_gave_up"
            ]
        );
        assert_eq!(
            LIMITS.id(),
            "word<=2000c;tokens<=20000;sentences<=2000;paragraphs<=2000"
        );
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(150_000), "150,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn the_longest_word_counts_characters_between_python_whitespace() {
        assert_eq!(longest_word(""), Word::default());
        assert_eq!(longest_word(" \n "), Word::default());
        // U+001C is whitespace for Python (and here), U+200B is not.
        assert_eq!(
            longest_word("ab\u{1c}cdé\u{200b}f gh"),
            Word { start: 3, chars: 5 }
        );
        assert_eq!(longest_word("aa bb"), Word { start: 0, chars: 2 });
    }

    #[test]
    fn nlp_errors_map_to_limits_and_cancellation() {
        let gave_up = AnalyseError::from(NlpError::Match {
            name: "url",
            len: 12_345,
            message: "backtracking".into(),
        });
        assert_eq!(gave_up.limit(), Some(Limit::PatternGaveUp));
        assert_eq!(
            gave_up.to_string(),
            "the tokenizer's url pattern gave up on a piece of the text of 12,345 bytes \
             (its backtracking limit); see docs/features.md, Limits"
        );
        assert!(matches!(
            AnalyseError::from(NlpError::Cancelled),
            AnalyseError::Cancelled
        ));
        assert_eq!(
            AnalyseError::from(NlpError::Cancelled).to_string(),
            "the request was cancelled"
        );
    }
}
