//! The JSON wrapper already running on Hemma: `POST /v1/check` with
//! `{"text", "language", "level", "enabled_rules", ...}` answering `{"errors": [...], ...}`.
//!
//! Its errors carry LanguageTool's fields in snake_case and LanguageTool's UTF-16 offsets; the
//! version comes from `software.version` (or a top-level `languagetool_version`). It reports no
//! text limit up front: a 413 says it.

use serde::Serialize;

use super::{Upstream, UpstreamError, base, body, transport};
use crate::options::CheckOptions;
use crate::response::{Received, parse_wrapper};

/// A Hemma JSON wrapper in front of LanguageTool.
#[derive(Debug, Clone)]
pub struct HemmaWrapper {
    url: String,
    http: reqwest::Client,
}

#[derive(Serialize)]
struct WrapperRequest<'a> {
    text: &'a str,
    #[serde(flatten)]
    options: &'a CheckOptions,
}

impl HemmaWrapper {
    /// A wrapper at `url` (e.g. `http://127.0.0.1:8010`).
    pub fn new(url: &str, http: reqwest::Client) -> Self {
        HemmaWrapper {
            url: base(url),
            http,
        }
    }
}

#[async_trait::async_trait]
impl Upstream for HemmaWrapper {
    fn url(&self) -> &str {
        &self.url
    }

    async fn check(&self, text: &str, options: &CheckOptions) -> Result<Received, UpstreamError> {
        let resp = self
            .http
            .post(format!("{}/v1/check", self.url))
            .json(&WrapperRequest { text, options })
            .send()
            .await
            .map_err(|e| transport(&self.url, e))?;
        let bytes = body(&self.url, resp).await?;
        parse_wrapper(&bytes).map_err(|e| UpstreamError::Malformed {
            url: self.url.clone(),
            reason: e.to_string(),
        })
    }

    async fn max_text_length(&self) -> Result<Option<usize>, UpstreamError> {
        Ok(None)
    }
}
