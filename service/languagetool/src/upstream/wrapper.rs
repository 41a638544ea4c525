//! The Hemma JSON wrapper (HuleEdu's `language_tool_service`): `POST /v1/check` with
//! `{"text", "language", "enabled_rules", "disabled_rules", "enabled_categories",
//! "disabled_categories", "enabled_only"}`, answering `{"errors": [...], ...}`.
//!
//! It takes no `level`, reports no LanguageTool version (it comes from the configuration), drops
//! whitespace matches itself, refuses an empty text (400) and takes at most 50,000 characters
//! (code points) per text; longer texts are split by the checker, as for a 413.

use serde::Serialize;

use super::{Address, Upstream, UpstreamError, body, transport};
use crate::options::CheckOptions;
use crate::response::{Received, parse_wrapper};

/// The longest text the wrapper takes, in code points (its `text` field is 1..50,000
/// characters). Given to the checker as a UTF-16 limit, which is never longer in code points.
pub const WRAPPER_MAX_CHARS: usize = 50_000;

/// A Hemma wrapper in front of LanguageTool.
#[derive(Debug, Clone)]
pub struct HemmaWrapper {
    address: Address,
    http: reqwest::Client,
    version: String,
}

#[derive(Serialize)]
struct WrapperRequest<'a> {
    text: &'a str,
    language: &'a str,
    enabled_rules: &'a [String],
    disabled_rules: &'a [String],
    enabled_categories: &'a [String],
    disabled_categories: &'a [String],
    enabled_only: bool,
}

impl HemmaWrapper {
    /// A wrapper at `url` (e.g. `http://127.0.0.1:8010`) in front of LanguageTool `version`;
    /// credentials and a query in `url` are sent, never shown.
    pub fn new(url: &str, http: reqwest::Client, version: &str) -> Self {
        HemmaWrapper {
            address: Address::new(url),
            http,
            version: version.to_owned(),
        }
    }
}

#[async_trait::async_trait]
impl Upstream for HemmaWrapper {
    fn url(&self) -> &str {
        self.address.shown()
    }

    async fn check(&self, text: &str, options: &CheckOptions) -> Result<Received, UpstreamError> {
        if options.level != CheckOptions::default().level {
            return Err(UpstreamError::Status {
                url: self.url().to_owned(),
                status: 400,
                body: format!(
                    "the LanguageTool wrapper takes no level; level {:?} cannot be honoured",
                    options.level
                ),
            });
        }
        // The wrapper refuses an empty text; it has no matches.
        if text.is_empty() {
            return Ok(Received {
                version: self.version.clone(),
                matches: Vec::new(),
            });
        }
        let request = WrapperRequest {
            text,
            language: &options.language,
            enabled_rules: &options.enabled_rules,
            disabled_rules: &options.disabled_rules,
            enabled_categories: &options.enabled_categories,
            disabled_categories: &options.disabled_categories,
            enabled_only: options.enabled_only,
        };
        let resp = self
            .http
            .post(self.address.endpoint("/v1/check"))
            .json(&request)
            .send()
            .await
            .map_err(|e| transport(self.url(), e))?;
        let bytes = body(self.url(), resp).await?;
        parse_wrapper(&bytes, &self.version).map_err(|e| UpstreamError::Malformed {
            url: self.url().to_owned(),
            reason: e.to_string(),
        })
    }

    async fn max_text_length(&self) -> Result<Option<usize>, UpstreamError> {
        Ok(Some(WRAPPER_MAX_CHARS))
    }
}
