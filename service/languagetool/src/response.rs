//! The upstream answers as they arrive: LanguageTool's `/v2/check` JSON and the Hemma wrapper's
//! `/v1/check` JSON, parsed leniently (unknown keys ignored, optional keys defaulted; see
//! API-FACTS §3) into one [`Received`] form.

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

/// The Hemma wrapper's answer: `{"errors": [...], "software": {"version"}}` (or a top-level
/// `languagetool_version`); errors carry snake_case fields and LanguageTool's UTF-16 offsets.
#[derive(Debug, Deserialize)]
struct WrapperCheck {
    errors: Vec<WrapperError>,
    #[serde(default)]
    software: Option<Software>,
    #[serde(default)]
    languagetool_version: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WrapperError {
    offset: usize,
    length: usize,
    #[serde(default)]
    message: String,
    #[serde(default)]
    short_message: String,
    rule_id: String,
    #[serde(default)]
    rule_sub_id: String,
    #[serde(default)]
    rule_description: String,
    category_id: String,
    #[serde(default)]
    category_name: String,
    #[serde(default)]
    issue_type: String,
    #[serde(default)]
    replacements: Vec<String>,
}

/// Why a wrapper body is not a check result.
#[derive(Debug, thiserror::Error)]
pub enum WrapperParseError {
    /// Not the expected JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// No version anywhere in the answer.
    #[error("the answer names no LanguageTool version (software.version or languagetool_version)")]
    NoVersion,
}

/// Parses a Hemma wrapper `/v1/check` body.
pub fn parse_wrapper(body: &[u8]) -> Result<Received, WrapperParseError> {
    let r: WrapperCheck = serde_json::from_slice(body)?;
    let version = r
        .software
        .map(|s| s.version)
        .or(r.languagetool_version)
        .ok_or(WrapperParseError::NoVersion)?;
    Ok(Received {
        version,
        matches: r
            .errors
            .into_iter()
            .map(|e| ReceivedMatch {
                offset_utf16: e.offset,
                length_utf16: e.length,
                message: e.message,
                short_message: e.short_message,
                rule_id: e.rule_id,
                rule_sub_id: e.rule_sub_id,
                rule_description: e.rule_description,
                category_id: e.category_id,
                category_name: e.category_name,
                issue_type: e.issue_type,
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
    fn wrapper_answer_needs_a_version() {
        let ok = br#"{"errors":[{"offset":0,"length":1,"rule_id":"R","category_id":"GRAMMAR"}],"languagetool_version":"6.7"}"#;
        assert_eq!(parse_wrapper(ok).unwrap().version, "6.7");
        let none = br#"{"errors":[]}"#;
        assert!(matches!(
            parse_wrapper(none),
            Err(WrapperParseError::NoVersion)
        ));
    }
}
