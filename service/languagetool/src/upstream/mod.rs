//! The LanguageTool servers the proxy talks to, behind one async trait with two HTTP flavours:
//! LanguageTool's own `/v2` API ([`languagetool::LanguageToolV2`]) and the JSON wrapper that
//! runs on Hemma ([`wrapper::HemmaWrapper`]).

pub mod languagetool;
pub mod wrapper;

use std::time::Duration;

use super::options::CheckOptions;
use super::response::Received;

/// Why one call to an upstream failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// No answer: refused, reset, closed, DNS. Safe to retry elsewhere (checks are idempotent).
    #[error("cannot reach {url}: {reason}")]
    Transport {
        /// The upstream.
        url: String,
        /// What the HTTP client said.
        reason: String,
    },
    /// An HTTP error status; `body` is LanguageTool's plain-text `Error: ...` sentence.
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        /// The upstream.
        url: String,
        /// HTTP status.
        status: u16,
        /// The body, trimmed and cut to 500 characters.
        body: String,
    },
    /// A 200 whose body is not a check result.
    #[error("{url} answered a body that is not a LanguageTool check result: {reason}")]
    Malformed {
        /// The upstream.
        url: String,
        /// The parse error.
        reason: String,
    },
}

/// One LanguageTool server.
#[async_trait::async_trait]
pub trait Upstream: Send + Sync + std::fmt::Debug {
    /// The base URL, for messages and metrics.
    fn url(&self) -> &str;
    /// Checks one text.
    async fn check(&self, text: &str, options: &CheckOptions) -> Result<Received, UpstreamError>;
    /// The longest text it accepts, in UTF-16 units, if it says (None: no limit or unknown).
    async fn max_text_length(&self) -> Result<Option<usize>, UpstreamError>;
}

/// `url` with any user name and password replaced by `***`, for logs, metrics and answers.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// The HTTP client shared by the flavours: pooled keep-alive connections, a connect timeout.
pub fn http_client(connect_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()
        .expect("a reqwest client without TLS or proxies builds")
}

/// Maps a reqwest error to a transport error.
pub(crate) fn transport(url: &str, e: reqwest::Error) -> UpstreamError {
    // The source chain says "connection refused" / "reset" where the top level does not.
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    UpstreamError::Transport {
        url: url.to_owned(),
        reason,
    }
}

/// Reads the body of a response, turning an error status into [`UpstreamError::Status`].
pub(crate) async fn body(url: &str, resp: reqwest::Response) -> Result<Vec<u8>, UpstreamError> {
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| transport(url, e))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        let body: String = text.chars().take(500).collect();
        return Err(UpstreamError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
            body,
        });
    }
    Ok(bytes.to_vec())
}

/// Trims a trailing slash so paths can be appended.
pub(crate) fn base(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_and_nothing_else() {
        assert_eq!(redact("http://u:p@lt:8081/x"), "http://***@lt:8081/x");
        assert_eq!(redact("https://token@lt"), "https://***@lt");
        assert_eq!(redact("http://lt:8081/a@b"), "http://lt:8081/a@b");
        assert_eq!(redact("http://127.0.0.1:8081"), "http://127.0.0.1:8081");
    }
}
