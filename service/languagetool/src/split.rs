//! Splits a text that is too long for an upstream into consecutive parts under its limit:
//! on paragraph boundaries first, then sentences, then words, and only then inside a word.
//!
//! Parts are exact, consecutive slices of the text (separators stay with the part before them),
//! so a match at offset `o` in a part is at `part.start_utf16 + o` in the whole text.

use super::offsets::utf16_len;

/// One slice of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part<'a> {
    /// Where the part starts in the whole text, in UTF-8 bytes.
    pub start_byte: usize,
    /// Where the part starts in the whole text, in UTF-16 units.
    pub start_utf16: usize,
    /// The part.
    pub text: &'a str,
}

#[derive(Debug, Clone, Copy)]
enum Level {
    Paragraph,
    Sentence,
    Word,
    Char,
}

/// Splits `text` into parts of at most `max_units` UTF-16 units (at least 2, so a surrogate pair fits).
pub fn split(text: &str, max_units: usize) -> Vec<Part<'_>> {
    let mut out = Vec::new();
    pack(text, 0, 0, max_units.max(2), Level::Paragraph, &mut out);
    out
}

fn pack<'a>(
    text: &'a str,
    base_byte: usize,
    base_utf16: usize,
    max: usize,
    level: Level,
    out: &mut Vec<Part<'a>>,
) {
    if utf16_len(text) <= max {
        if !text.is_empty() {
            out.push(Part {
                start_byte: base_byte,
                start_utf16: base_utf16,
                text,
            });
        }
        return;
    }
    let next = match level {
        Level::Paragraph => Level::Sentence,
        Level::Sentence => Level::Word,
        Level::Word | Level::Char => Level::Char,
    };
    let ends = match level {
        Level::Paragraph => boundaries(text, |run, _| run.matches('\n').count() >= 2),
        Level::Sentence => boundaries(text, |run, before| {
            run.contains('\n') || ends_sentence(before)
        }),
        Level::Word => boundaries(text, |_, _| true),
        Level::Char => char_chunks(text, max),
    };
    // Greedily join consecutive segments while they fit; a segment too long alone goes a level down.
    let (mut cur_start, mut cur_units, mut seg_start) = (0usize, 0usize, 0usize);
    let mut seg_utf16 = base_utf16;
    let mut cur_utf16 = base_utf16;
    for end in ends {
        let seg = &text[seg_start..end];
        let units = utf16_len(seg);
        if cur_units + units <= max {
            cur_units += units;
        } else {
            flush(text, base_byte, cur_start, seg_start, cur_utf16, out);
            if units > max {
                pack(seg, base_byte + seg_start, seg_utf16, max, next, out);
                cur_start = end;
                cur_utf16 = seg_utf16 + units;
                cur_units = 0;
            } else {
                cur_start = seg_start;
                cur_utf16 = seg_utf16;
                cur_units = units;
            }
        }
        seg_start = end;
        seg_utf16 += units;
    }
    flush(text, base_byte, cur_start, text.len(), cur_utf16, out);
}

fn flush<'a>(
    text: &'a str,
    base_byte: usize,
    from: usize,
    to: usize,
    start_utf16: usize,
    out: &mut Vec<Part<'a>>,
) {
    if from < to {
        out.push(Part {
            start_byte: base_byte + from,
            start_utf16,
            text: &text[from..to],
        });
    }
}

/// Segment ends: after each whitespace run for which `is_boundary(run, text_before_run)` holds,
/// and at the end of the text.
fn boundaries(text: &str, is_boundary: impl Fn(&str, &str) -> bool) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut run_start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(start)) => {
                if start > 0 && is_boundary(&text[start..i], &text[..start]) {
                    ends.push(i);
                }
                run_start = None;
            }
            _ => {}
        }
    }
    ends.push(text.len());
    ends
}

/// Whether `before` ends a sentence: `.`, `!` or `?`, possibly followed by closing quotes or brackets.
fn ends_sentence(before: &str) -> bool {
    before
        .trim_end_matches(['"', '\'', ')', ']', '”', '’'])
        .ends_with(['.', '!', '?'])
}

/// Ends of chunks of at most `max` UTF-16 units, on character boundaries.
fn char_chunks(text: &str, max: usize) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut units = 0;
    for (i, c) in text.char_indices() {
        if units + c.len_utf16() > max {
            ends.push(i);
            units = 0;
        }
        units += c.len_utf16();
    }
    ends.push(text.len());
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_parts(text: &str, max: usize) -> Vec<&str> {
        let parts = split(text, max);
        let joined: String = parts.iter().map(|p| p.text).collect();
        assert_eq!(joined, text, "parts must rebuild the text");
        let mut utf16 = 0;
        for p in &parts {
            assert!(utf16_len(p.text) <= max, "{:?} is over {max}", p.text);
            assert_eq!(&text[p.start_byte..p.start_byte + p.text.len()], p.text);
            assert_eq!(p.start_utf16, utf16);
            utf16 += utf16_len(p.text);
        }
        parts.iter().map(|p| p.text).collect()
    }

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(check_parts("Hello there.", 100), vec!["Hello there."]);
    }

    #[test]
    fn paragraphs_first() {
        let text = "First para one.\n\nSecond para two.\n\nThird.";
        assert_eq!(
            check_parts(text, 20),
            vec!["First para one.\n\n", "Second para two.\n\n", "Third."]
        );
        // Paragraphs that fit together stay together.
        assert_eq!(
            check_parts(text, 40),
            vec!["First para one.\n\nSecond para two.\n\n", "Third."]
        );
    }

    #[test]
    fn then_sentences_then_words_then_characters() {
        let text = "One two. Three four! Five six?";
        assert_eq!(
            check_parts(text, 12),
            vec!["One two. ", "Three four! ", "Five six?"]
        );
        assert_eq!(
            check_parts("aaaa bbbb cccc", 10),
            vec!["aaaa bbbb ", "cccc"]
        );
        assert_eq!(check_parts("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
    }

    #[test]
    fn limits_count_utf16_units_and_never_cut_a_surrogate_pair() {
        let text = "👍👍👍 ok";
        for part in check_parts(text, 3) {
            assert!(!part.is_empty());
        }
        let parts = split("é👍 teh. Next one.", 9);
        let last = parts.last().unwrap();
        assert_eq!(last.text, "Next one.");
        assert_eq!(last.start_utf16, 9);
        assert_eq!(last.start_byte, "é👍 teh. ".len());
    }
}
