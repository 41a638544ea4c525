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
    /// The base URL as messages, metrics and `/readyz` show it: credentials and query values
    /// redacted ([`redact`]).
    fn url(&self) -> &str;
    /// Checks one text.
    async fn check(&self, text: &str, options: &CheckOptions) -> Result<Received, UpstreamError>;
    /// The longest text it accepts, in UTF-16 units, if it says (None: no limit or unknown).
    async fn max_text_length(&self) -> Result<Option<usize>, UpstreamError>;
}

/// `url` with its user name and password and every query value replaced by `***`, for logs,
/// metrics and answers (a URL without a scheme is read as starting with its authority).
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (tail, fragment) = match tail.split_once('#') {
        Some((tail, fragment)) => (tail, Some(fragment)),
        None => (tail, None),
    };
    let (path, query) = match tail.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (tail, None),
    };
    let mut out = String::with_capacity(url.len());
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    match authority.rfind('@') {
        Some(at) => {
            out.push_str("***@");
            out.push_str(&authority[at + 1..]);
        }
        None => out.push_str(authority),
    }
    out.push_str(path);
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, "")) => format!("{name}="),
                Some((name, _)) => format!("{name}=***"),
                None if pair.is_empty() => String::new(),
                None => "***".to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        if !fragment.is_empty() {
            out.push_str("***");
        }
    }
    out
}

/// An upstream's base URL: where requests go (credentials and query kept) and, computed once,
/// how every message, metric and status shows it ([`redact`]ed). Its `Debug` shows the latter.
#[derive(Clone)]
pub(crate) struct Address {
    /// Scheme, authority and path, without a trailing slash, query or fragment.
    base: String,
    /// The query sent with every request (e.g. an access token), if any.
    query: Option<String>,
    /// The redacted form.
    shown: String,
}

impl Address {
    /// Reads a configured base URL such as `http://user:secret@lt:8081/?token=t`.
    pub(crate) fn new(url: &str) -> Address {
        let url = url.trim();
        let url = url.split_once('#').map_or(url, |(url, _)| url);
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, Some(query).filter(|q| !q.is_empty())),
            None => (url, None),
        };
        let base = base.trim_end_matches('/').to_owned();
        let query = query.map(str::to_owned);
        let shown = redact(&match &query {
            Some(query) => format!("{base}?{query}"),
            None => base.clone(),
        });
        Address { base, query, shown }
    }

    /// The full URL of `path` (starting with `/`) on this upstream, its query kept.
    pub(crate) fn endpoint(&self, path: &str) -> String {
        match &self.query {
            Some(query) => format!("{}{path}?{query}", self.base),
            None => format!("{}{path}", self.base),
        }
    }

    /// The redacted form, for messages, metrics and status.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
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

/// Maps a reqwest error to a transport error naming the upstream as `url` (its shown form).
pub(crate) fn transport(url: &str, e: reqwest::Error) -> UpstreamError {
    // reqwest's message names the request URL, query included: leave it out, `url` says it.
    let e = e.without_url();
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

impl UpstreamError {
    /// The same error naming the upstream as `url` (the pool's shown form of it).
    pub(crate) fn naming(mut self, url: &str) -> UpstreamError {
        match &mut self {
            UpstreamError::Transport { url: u, .. }
            | UpstreamError::Status { url: u, .. }
            | UpstreamError::Malformed { url: u, .. } => *u = url.to_owned(),
        }
        self
    }
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

    #[test]
    fn query_values_and_scheme_less_credentials_are_redacted_too() {
        assert_eq!(
            redact("http://u:p@lt:8081/?token=abc&lang=&flag"),
            "http://***@lt:8081/?token=***&lang=&***"
        );
        assert_eq!(redact("https://lt/x#frag"), "https://lt/x#***");
        assert_eq!(redact("u:p@lt:8081"), "***@lt:8081");
        let once = redact("http://u:p@lt:8081/?token=abc");
        assert_eq!(redact(&once), once, "redacting twice changes nothing");
    }

    #[test]
    fn an_address_keeps_its_query_on_every_endpoint_and_shows_none_of_it() {
        let a = Address::new("http://u:secret@lt:8081/base/?token=tok");
        assert_eq!(
            a.endpoint("/v2/check"),
            "http://u:secret@lt:8081/base/v2/check?token=tok"
        );
        assert_eq!(a.shown(), "http://***@lt:8081/base?token=***");
        assert_eq!(format!("{a:?}"), a.shown());
        let plain = Address::new("http://127.0.0.1:8081/");
        assert_eq!(
            plain.endpoint("/v2/check"),
            "http://127.0.0.1:8081/v2/check"
        );
        assert_eq!(plain.shown(), "http://127.0.0.1:8081");
    }

    /// A port on loopback where nothing listens.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn transport_errors_and_debug_show_no_credentials_or_token() {
        let url = format!(
            "http://user:secret@127.0.0.1:{}/?token=t0k3n",
            closed_port()
        );
        let http = http_client(Duration::from_secs(5));
        let upstreams: [Box<dyn Upstream>; 2] = [
            Box::new(languagetool::LanguageToolV2::new(&url, http.clone())),
            Box::new(wrapper::HemmaWrapper::new(&url, http, "6.7")),
        ];
        for upstream in upstreams {
            let err = upstream
                .check("Some text.", &CheckOptions::default())
                .await
                .unwrap_err();
            assert!(matches!(err, UpstreamError::Transport { .. }), "{err}");
            for shown in [err.to_string(), format!("{err:?}"), format!("{upstream:?}")] {
                assert!(
                    !shown.contains("secret") && !shown.contains("t0k3n"),
                    "{shown}"
                );
                assert!(shown.contains("***@127.0.0.1"), "{shown}");
            }
        }
    }
}
