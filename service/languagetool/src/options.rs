//! LanguageTool check options, validated before anything is sent (the same rules the server
//! applies, API-FACTS §2, so a bad option is INVALID_ARGUMENT here rather than an upstream 400).

use serde::{Deserialize, Serialize};

/// Options of one check; part of the cache key and of the server fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOptions {
    /// Language code, e.g. `en-US`.
    pub language: String,
    /// `default` or `picky`.
    pub level: String,
    /// Rule ids to enable.
    pub enabled_rules: Vec<String>,
    /// Rule ids to disable.
    pub disabled_rules: Vec<String>,
    /// Category ids to enable.
    pub enabled_categories: Vec<String>,
    /// Category ids to disable.
    pub disabled_categories: Vec<String>,
    /// Only the enabled rules and categories run.
    pub enabled_only: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            language: "en-US".into(),
            level: "default".into(),
            enabled_rules: Vec::new(),
            disabled_rules: Vec::new(),
            enabled_categories: Vec::new(),
            disabled_categories: Vec::new(),
            enabled_only: false,
        }
    }
}

/// An option LanguageTool would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("LanguageTool option `{field}`: {message}")]
pub struct OptionsError {
    /// The option.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '[' || c == ']'
        })
}

impl CheckOptions {
    /// Checks every field; the error names the option and what would be right.
    pub fn validate(&self) -> Result<(), OptionsError> {
        let lang_ok = !self.language.is_empty()
            && self
                .language
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !lang_ok {
            return Err(OptionsError {
                field: "language",
                message: format!(
                    "{:?} is not a language code such as en-US, en-GB or de-DE",
                    self.language
                ),
            });
        }
        if self.level != "default" && self.level != "picky" {
            return Err(OptionsError {
                field: "level",
                message: format!("{:?} must be \"default\" or \"picky\"", self.level),
            });
        }
        for (field, ids) in [
            ("enabled_rules", &self.enabled_rules),
            ("disabled_rules", &self.disabled_rules),
            ("enabled_categories", &self.enabled_categories),
            ("disabled_categories", &self.disabled_categories),
        ] {
            if let Some(bad) = ids.iter().find(|id| !is_id(id)) {
                return Err(OptionsError {
                    field,
                    message: format!(
                        "{bad:?} is not a rule or category id (letters, digits, _ - . [ ])"
                    ),
                });
            }
        }
        if self.enabled_only {
            if self.enabled_rules.is_empty() && self.enabled_categories.is_empty() {
                return Err(OptionsError {
                    field: "enabled_only",
                    message: "needs at least one enabled rule or category".into(),
                });
            }
            if !self.disabled_rules.is_empty() || !self.disabled_categories.is_empty() {
                return Err(OptionsError {
                    field: "enabled_only",
                    message: "cannot be combined with disabled rules or categories".into(),
                });
            }
        }
        Ok(())
    }

    /// The `/v2/check` form fields besides `text`.
    pub fn form_fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("language", self.language.clone()),
            ("level", self.level.clone()),
        ];
        for (name, ids) in [
            ("enabledRules", &self.enabled_rules),
            ("disabledRules", &self.disabled_rules),
            ("enabledCategories", &self.enabled_categories),
            ("disabledCategories", &self.disabled_categories),
        ] {
            if !ids.is_empty() {
                f.push((name, ids.join(",")));
            }
        }
        if self.enabled_only {
            f.push(("enabledOnly", "true".into()));
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_sent_as_form_fields() {
        let o = CheckOptions::default();
        o.validate().unwrap();
        assert_eq!(
            o.form_fields(),
            vec![("language", "en-US".into()), ("level", "default".into())]
        );
    }

    #[test]
    fn invalid_options_name_the_field() {
        let bad = |f: fn(&mut CheckOptions)| {
            let mut o = CheckOptions::default();
            f(&mut o);
            o.validate().unwrap_err().field
        };
        assert_eq!(bad(|o| o.language = "en US".into()), "language");
        assert_eq!(bad(|o| o.level = "strict".into()), "level");
        assert_eq!(bad(|o| o.enabled_only = true), "enabled_only");
        assert_eq!(
            bad(|o| o.disabled_rules = vec!["A,B".into()]),
            "disabled_rules"
        );
        assert_eq!(
            bad(|o| {
                o.enabled_only = true;
                o.enabled_rules = vec!["A".into()];
                o.disabled_categories = vec!["B".into()];
            }),
            "enabled_only"
        );
    }
}
