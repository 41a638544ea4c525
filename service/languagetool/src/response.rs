//! The upstream answers as they arrive: LanguageTool's `/v2/check` JSON and the Hemma wrapper's
//! `/v1/check` JSON, parsed leniently (unknown keys ignored, optional keys defaulted) into one
//! [`Received`] form.

use serde::{Deserialize, Serialize};

/// One match as an upstream reported it (offsets in UTF-16 units).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedMatch {
    /// Start, UTF-16 units (as LanguageTool reports it).
    pub offset_utf16: usize,
    /// Length, UTF-16 units.
    pub length_utf16: usize,
    /// The explanation.
    pub message: String,
    /// The short explanation (often empty).
    pub short_message: String,
    /// Rule id, e.g. `MORFOLOGIK_RULE_EN_US`.
    pub rule_id: String,
    /// Rule sub id (pattern rules), often empty.
    pub rule_sub_id: String,
    /// Rule description.
    pub rule_description: String,
    /// Category id, e.g. `TYPOS`.
    pub category_id: String,
    /// Category display name.
    pub category_name: String,
    /// ITS issue type, e.g. `misspelling`.
    pub issue_type: String,
    /// Suggested replacements, best first (at most [`super::MAX_REPLACEMENTS`] once checked).
    pub replacements: Vec<String>,
}

/// A parsed check answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// `software.version` of the answering LanguageTool.
    pub version: String,
    /// The matches, in the upstream's order.
    pub matches: Vec<ReceivedMatch>,
}

#[derive(Debug, Deserialize)]
struct V2Check {
    software: Software,
    matches: Vec<V2Match>,
}

#[derive(Debug, Deserialize)]
struct Software {
    version: String,
}

#[derive(Debug, Deserialize)]
struct V2Match {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "shortMessage")]
    short_message: String,
    #[serde(default)]
    replacements: Vec<V2Replacement>,
    offset: usize,
    length: usize,
    rule: V2Rule,
}

#[derive(Debug, Deserialize)]
struct V2Replacement {
    value: String,
}

#[derive(Debug, Deserialize)]
struct V2Rule {
    id: String,
    #[serde(default, rename = "subId")]
    sub_id: String,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "issueType")]
    issue_type: String,
    category: V2Category,
}

#[derive(Debug, Deserialize)]
struct V2Category {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

/// Parses a LanguageTool `/v2/check` body.
pub fn parse_v2(body: &[u8]) -> Result<Received, serde_json::Error> {
    let r: V2Check = serde_json::from_slice(body)?;
    Ok(Received {
        version: r.software.version,
        matches: r
            .matches
            .into_iter()
            .map(|m| ReceivedMatch {
                offset_utf16: m.offset,
                length_utf16: m.length,
                message: m.message,
                short_message: m.short_message,
                rule_id: m.rule.id,
                rule_sub_id: m.rule.sub_id,
                rule_description: m.rule.description,
                category_id: m.rule.category.id,
                category_name: m.rule.category.name,
                issue_type: m.rule.issue_type,
                replacements: m.replacements.into_iter().map(|r| r.value).collect(),
            })
            .collect(),
    })
}

/// The Hemma wrapper's answer (HuleEdu's `language_tool_service`): `{"errors": [...],
/// "total_grammar_errors", "grammar_category_counts", "grammar_rule_counts", "language",
/// "processing_time_ms"}`. Whitespace matches are already dropped, and neither the errors nor the
/// answer name an issue type or the LanguageTool version.
#[derive(Debug, Deserialize)]
struct WrapperCheck {
    errors: Vec<WrapperError>,
}

/// One error of the wrapper: LanguageTool's match in snake_case, UTF-16 offsets. `category`,
/// `severity`, `context` and `context_offset` are not needed and so not read.
#[derive(Debug, Deserialize)]
struct WrapperError {
    offset: usize,
    length: usize,
    #[serde(default)]
    message: String,
    #[serde(default)]
    short_message: Option<String>,
    rule_id: String,
    #[serde(default)]
    category_id: String,
    #[serde(default)]
    category_name: String,
    #[serde(default)]
    replacements: Vec<String>,
}

/// Parses a Hemma wrapper `/v1/check` body; `version` is the configured LanguageTool version
/// (the wrapper does not report it).
pub fn parse_wrapper(body: &[u8], version: &str) -> Result<Received, serde_json::Error> {
    let r: WrapperCheck = serde_json::from_slice(body)?;
    Ok(Received {
        version: version.to_owned(),
        matches: r
            .errors
            .into_iter()
            .map(|e| ReceivedMatch {
                offset_utf16: e.offset,
                length_utf16: e.length,
                message: e.message,
                short_message: e.short_message.unwrap_or_default(),
                rule_id: e.rule_id,
                rule_sub_id: String::new(),
                rule_description: String::new(),
                category_id: e.category_id,
                category_name: e.category_name,
                issue_type: String::new(),
                replacements: e.replacements,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_v2_answer_parses() {
        let body = br#"{"software":{"name":"LanguageTool","version":"6.7","apiVersion":1},"matches":[{"message":"m","replacements":[{"value":"the"}],"offset":4,"length":3,"rule":{"id":"MORFOLOGIK_RULE_EN_US","issueType":"misspelling","category":{"id":"TYPOS","name":"Possible Typo"}},"extra":1}]}"#;
        let r = parse_v2(body).unwrap();
        assert_eq!(r.version, "6.7");
        assert_eq!(r.matches[0].category_id, "TYPOS");
        assert_eq!(r.matches[0].replacements, vec!["the"]);
        assert_eq!(r.matches[0].short_message, "");
    }

    #[test]
    fn the_wrappers_answer_parses_with_the_configured_version() {
        let body = br#"{"errors":[{"rule_id":"MORFOLOGIK_RULE_EN_US","message":"Possible spelling mistake found.","short_message":"Spelling mistake","offset":7,"length":3,"replacements":["the","tea"],"category":"TYPOS","severity":"error","category_id":"TYPOS","category_name":"Possible Typo","context":"I like teh cat.","context_offset":7}],"total_grammar_errors":1,"grammar_category_counts":{"TYPOS":1},"grammar_rule_counts":{"MORFOLOGIK_RULE_EN_US":1},"language":"en-US","processing_time_ms":12}"#;
        let r = parse_wrapper(body, "6.7").unwrap();
        assert_eq!(r.version, "6.7");
        let m = &r.matches[0];
        assert_eq!((m.offset_utf16, m.length_utf16), (7, 3));
        assert_eq!(
            (m.rule_id.as_str(), m.category_id.as_str()),
            ("MORFOLOGIK_RULE_EN_US", "TYPOS")
        );
        assert_eq!(m.replacements, vec!["the", "tea"]);
        assert_eq!(m.issue_type, "");
        assert!(parse_wrapper(br#"{"matches":[]}"#, "6.7").is_err());
    }
}
