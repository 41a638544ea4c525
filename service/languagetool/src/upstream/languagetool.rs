//! LanguageTool's own HTTP API: `POST /v2/check` (form-encoded) and `GET /v2/maxtextlength`.

use super::{Upstream, UpstreamError, base, body, transport};
use crate::options::CheckOptions;
use crate::response::{Received, parse_v2};

/// A LanguageTool server (`java ... org.languagetool.server.HTTPServer`).
#[derive(Debug, Clone)]
pub struct LanguageToolV2 {
    url: String,
    http: reqwest::Client,
}

impl LanguageToolV2 {
    /// A server at `url` (e.g. `http://127.0.0.1:8081`).
    pub fn new(url: &str, http: reqwest::Client) -> Self {
        LanguageToolV2 {
            url: base(url),
            http,
        }
    }
}

#[async_trait::async_trait]
impl Upstream for LanguageToolV2 {
    fn url(&self) -> &str {
        &self.url
    }

    async fn check(&self, text: &str, options: &CheckOptions) -> Result<Received, UpstreamError> {
        let mut form = options.form_fields();
        form.push(("text", text.to_owned()));
        let resp = self
            .http
            .post(format!("{}/v2/check", self.url))
            .form(&form)
            .send()
            .await
            .map_err(|e| transport(&self.url, e))?;
        let bytes = body(&self.url, resp).await?;
        parse_v2(&bytes).map_err(|e| UpstreamError::Malformed {
            url: self.url.clone(),
            reason: e.to_string(),
        })
    }

    async fn max_text_length(&self) -> Result<Option<usize>, UpstreamError> {
        let resp = self
            .http
            .get(format!("{}/v2/maxtextlength", self.url))
            .send()
            .await
            .map_err(|e| transport(&self.url, e))?;
        let bytes = body(&self.url, resp).await?;
        let text = String::from_utf8_lossy(&bytes);
        let n: usize = text.trim().parse().map_err(|_| UpstreamError::Malformed {
            url: self.url.clone(),
            reason: format!("/v2/maxtextlength answered {:?}, not a number", text.trim()),
        })?;
        // The default is Integer.MAX_VALUE: no limit.
        Ok((n < i32::MAX as usize).then_some(n))
    }
}
