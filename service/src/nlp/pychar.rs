//! Character classes with Python 3.11 semantics, where they differ from Rust's (SPEC §4.5).

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
}
