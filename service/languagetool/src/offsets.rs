//! Positions in a text counted three ways: UTF-16 code units (what LanguageTool, a Java server,
//! reports), Unicode scalar values (Rust `char`s, Python `str` indices) and UTF-8 bytes.

/// A text's UTF-16 positions mapped to scalar-value positions and byte offsets.
#[derive(Debug, Clone)]
pub struct Utf16Index {
    /// For each UTF-16 position 0..=len, the scalar index it starts, or `None` inside a surrogate pair.
    chars: Vec<Option<u32>>,
    /// Byte offset of each scalar index 0..=chars.
    bytes: Vec<usize>,
}

/// A span that does not fit the text it claims to point into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "span {offset}+{length} (UTF-16 units) does not fit a text of {text_len} UTF-16 units on character boundaries"
)]
pub struct SpanError {
    /// Offset received.
    pub offset: usize,
    /// Length received.
    pub length: usize,
    /// The text's length in UTF-16 units.
    pub text_len: usize,
}

/// A span in scalar values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CharSpan {
    /// Start, in scalar values.
    pub offset: usize,
    /// Length, in scalar values.
    pub length: usize,
}

impl Utf16Index {
    /// Indexes `text`.
    pub fn new(text: &str) -> Utf16Index {
        let mut chars = Vec::with_capacity(text.len() + 1);
        let mut bytes = Vec::with_capacity(text.len() + 1);
        for (i, (b, c)) in text.char_indices().enumerate() {
            bytes.push(b);
            chars.push(Some(i as u32));
            if c.len_utf16() == 2 {
                chars.push(None);
            }
        }
        bytes.push(text.len());
        chars.push(Some((bytes.len() - 1) as u32));
        Utf16Index { chars, bytes }
    }

    /// Length of the text in UTF-16 units.
    pub fn len_utf16(&self) -> usize {
        self.chars.len() - 1
    }

    /// Length of the text in scalar values.
    pub fn len_chars(&self) -> usize {
        self.bytes.len() - 1
    }

    /// The scalar position of a UTF-16 position, if it is on a character boundary.
    pub fn char_at(&self, utf16: usize) -> Option<usize> {
        self.chars.get(utf16).copied().flatten().map(|c| c as usize)
    }

    /// The byte offset of a UTF-16 position, if it is on a character boundary.
    pub fn byte_at(&self, utf16: usize) -> Option<usize> {
        self.char_at(utf16).map(|c| self.bytes[c])
    }

    /// Converts a UTF-16 span (offset, length) into a scalar-value span.
    pub fn to_chars(&self, offset: usize, length: usize) -> Result<CharSpan, SpanError> {
        let err = || SpanError {
            offset,
            length,
            text_len: self.len_utf16(),
        };
        let end = offset.checked_add(length).ok_or_else(err)?;
        let start = self.char_at(offset).ok_or_else(err)?;
        let stop = self.char_at(end).ok_or_else(err)?;
        Ok(CharSpan {
            offset: start,
            length: stop - start,
        })
    }
}

/// Length of `text` in UTF-16 code units (Java's `String.length()`).
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_positions_agree() {
        let ix = Utf16Index::new("abc");
        assert_eq!(ix.len_utf16(), 3);
        assert_eq!(
            ix.to_chars(1, 2).unwrap(),
            CharSpan {
                offset: 1,
                length: 2
            }
        );
    }

    #[test]
    fn emoji_counts_two_units_and_one_char() {
        // "I 👍 teh": 👍 is U+1F44D, a surrogate pair in UTF-16.
        let text = "I 👍 teh";
        let ix = Utf16Index::new(text);
        assert_eq!(ix.len_utf16(), 8);
        assert_eq!(ix.len_chars(), 7);
        // LanguageTool reports "teh" at UTF-16 offset 5.
        let span = ix.to_chars(5, 3).unwrap();
        assert_eq!(
            span,
            CharSpan {
                offset: 4,
                length: 3
            }
        );
        let chars: String = text.chars().skip(span.offset).take(span.length).collect();
        assert_eq!(chars, "teh");
        assert_eq!(ix.byte_at(5), Some(7));
        // The emoji itself: 2 units, 1 char.
        assert_eq!(
            ix.to_chars(2, 2).unwrap(),
            CharSpan {
                offset: 2,
                length: 1
            }
        );
        // Half an emoji is not a character boundary.
        assert!(ix.to_chars(3, 1).is_err());
    }

    #[test]
    fn combining_marks_are_separate_scalars() {
        // "e" + U+0301 COMBINING ACUTE: one grapheme, two scalars, two UTF-16 units.
        let text = "cafe\u{301} teh";
        let ix = Utf16Index::new(text);
        assert_eq!(ix.len_utf16(), 9);
        assert_eq!(
            ix.to_chars(6, 3).unwrap(),
            CharSpan {
                offset: 6,
                length: 3
            }
        );
        assert_eq!(
            ix.to_chars(0, 5).unwrap(),
            CharSpan {
                offset: 0,
                length: 5
            }
        );
    }

    #[test]
    fn spans_past_the_end_are_errors() {
        let ix = Utf16Index::new("abc");
        assert!(ix.to_chars(2, 2).is_err());
        assert!(ix.to_chars(usize::MAX, 2).is_err());
        assert_eq!(
            ix.to_chars(3, 0).unwrap(),
            CharSpan {
                offset: 3,
                length: 0
            }
        );
    }

    #[test]
    fn utf16_len_matches_java() {
        assert_eq!(utf16_len("ä👍\u{301}"), 4);
    }
}
