//! LanguageTool's own HTTP API: `POST /v2/check` (form-encoded) and `GET /v2/maxtextlength`.

use super::{Address, Upstream, UpstreamError, body, transport};
use crate::options::CheckOptions;
use crate::response::{Received, parse_v2};

/// A LanguageTool server (`java ... org.languagetool.server.HTTPServer`).
#[derive(Debug, Clone)]
pub struct LanguageToolV2 {
    address: Address,
    http: reqwest::Client,
}

impl LanguageToolV2 {
    /// A server at `url` (e.g. `http://127.0.0.1:8081`); credentials and a query in it are sent, never shown.
    pub fn new(url: &str, http: reqwest::Client) -> Self {
        LanguageToolV2 {
            address: Address::new(url),
            http,
        }
    }
}

#[async_trait::async_trait]
impl Upstream for LanguageToolV2 {
    fn url(&self) -> &str {
        self.address.shown()
    }

    async fn check(&self, text: &str, options: &CheckOptions) -> Result<Received, UpstreamError> {
        let mut form = options.form_fields();
        form.push(("text", text.to_owned()));
        let resp = self
            .http
            .post(self.address.endpoint("/v2/check"))
            .form(&form)
            .send()
            .await
            .map_err(|e| transport(self.url(), e))?;
        let bytes = body(self.url(), resp).await?;
        parse_v2(&bytes).map_err(|e| UpstreamError::Malformed {
            url: self.url().to_owned(),
            reason: e.to_string(),
        })
    }

    async fn max_text_length(&self) -> Result<Option<usize>, UpstreamError> {
        let resp = self
            .http
            .get(self.address.endpoint("/v2/maxtextlength"))
            .send()
            .await
            .map_err(|e| transport(self.url(), e))?;
        let bytes = body(self.url(), resp).await?;
        let text = String::from_utf8_lossy(&bytes);
        let n: usize = text.trim().parse().map_err(|_| UpstreamError::Malformed {
            url: self.url().to_owned(),
            reason: format!("/v2/maxtextlength answered {:?}, not a number", text.trim()),
        })?;
        // The default is Integer.MAX_VALUE: no limit.
        Ok((n < i32::MAX as usize).then_some(n))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Answers one request on loopback with a LanguageTool 6.7 result; returns what it received.
    async fn one_answer(listener: tokio::net::TcpListener) -> String {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client closed before sending a whole request");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + length {
                    break;
                }
            }
        }
        let body = r#"{"software":{"version":"6.7"},"matches":[]}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(answer.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&got).to_string()
    }

    #[tokio::test]
    async fn credentials_and_the_query_token_still_reach_languagetool() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(one_answer(listener));
        let url = format!("http://user:secret@127.0.0.1:{port}/?token=t0k3n");
        let lt = LanguageToolV2::new(
            &url,
            super::super::http_client(std::time::Duration::from_secs(5)),
        );
        assert_eq!(lt.url(), format!("http://***@127.0.0.1:{port}?token=***"));
        let received = lt
            .check("Some text.", &CheckOptions::default())
            .await
            .unwrap();
        assert_eq!(received.version, "6.7");
        let request = server.await.unwrap().to_ascii_lowercase();
        assert!(
            request.starts_with("post /v2/check?token=t0k3n http/1.1\r\n"),
            "{request}"
        );
        // base64("user:secret")
        assert!(
            request.contains("authorization: basic dxnlcjpzzwnyzxq="),
            "{request}"
        );
    }
}
