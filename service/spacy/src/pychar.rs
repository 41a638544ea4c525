//! Character classes with Python 3.11 semantics, where they differ from Rust's (PORT.md).

use super::unicode_tables::{DIGIT, LETTER, PUNCT, UPPER_LETTER};

fn in_table(table: &[(u32, u32)], c: char) -> bool {
    let cp = c as u32;
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// A letter: general category `L*` (not Rust's `is_alphabetic`, which adds `Nl` and marks).
pub fn is_letter(c: char) -> bool {
    in_table(LETTER, c)
}

/// An upper-case letter: general category `Lu`.
pub fn is_upper_letter(c: char) -> bool {
    in_table(UPPER_LETTER, c)
}

/// Python's `str.isdigit` for one character (includes superscripts such as `²`).
pub fn is_digit(c: char) -> bool {
    in_table(DIGIT, c)
}

/// Punctuation: general category `P*` (`$ + < = > ^ | ~` are symbols, not punctuation).
pub fn is_punct(c: char) -> bool {
    in_table(PUNCT, c)
}

/// Python's `str.isspace` for one character: Rust's whitespace plus U+001C..U+001F.
pub fn is_space(c: char) -> bool {
    matches!(c,
        '\u{9}'..='\u{d}' | '\u{1c}'..='\u{20}' | '\u{85}' | '\u{a0}' | '\u{1680}'
        | '\u{2000}'..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}')
}

/// Python's `str.isspace`: non-empty and every character is whitespace.
pub fn is_space_str(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_space)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace_includes_the_separators_and_not_zero_width_space() {
        for c in ['\u{1c}', '\u{1f}', ' ', '\n', '\u{a0}', '\u{3000}'] {
            assert!(is_space(c), "{c:?}");
        }
        for c in ['\u{200b}', 'a', '\u{1b}'] {
            assert!(!is_space(c), "{c:?}");
        }
        assert!(!is_space_str(""));
        assert!(is_space_str(" \n\t"));
    }

    #[test]
    fn classes_follow_python() {
        assert!(is_letter('a') && is_letter('Ω') && !is_letter('Ⅻ') && !is_letter('\u{301}'));
        assert!(is_upper_letter('A') && !is_upper_letter('a'));
        assert!(is_digit('7') && is_digit('²') && !is_digit('½'));
        assert!(is_punct('.') && is_punct('—') && !is_punct('$') && !is_punct('+'));
    }
}
