//! Client for the hemma-offload feature service: a typed async API over its gRPC contract.
//!
//! ```no_run
//! # async fn run() -> Result<(), hemma_client::ClientError> {
//! use hemma_client::{Client, ClientOptions};
//! let client = Client::connect(ClientOptions::new("http://127.0.0.1:9000")).await?;
//! let out = client.embed(vec!["An essay.".into()], false).await?;
//! assert_eq!(out.vectors.nrows(), 1);
//! # Ok(()) }
//! ```
//!
//! The connection sends HTTP/2 keepalive pings, so a dead SSH tunnel surfaces as an error within
//! `keepalive_interval + keepalive_timeout` instead of a hang.
#![deny(missing_docs)]

pub mod extract;

use std::time::Duration;

use futures::Stream;
use hemma_proto::v1::offload_client::OffloadClient;
use hemma_proto::v1::{
    CheckGrammarRequest, CheckGrammarResponse, Dtype, EmbedRequest, ExtractChunk,
    ExtractChunkResult, ExtractRequest, FeatureSet, GrammarOptions, InfoRequest, InfoResponse,
};
use ndarray::Array2;
use tonic::transport::{Channel, Endpoint};

use crate::extract::Extraction;
use tonic_health::pb::HealthCheckRequest;
pub use tonic_health::pb::health_check_response::ServingStatus as HealthStatus;
use tonic_health::pb::health_client::HealthClient;

pub use hemma_proto::v1;

/// Header carrying the correlation id, echoed by the server.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint URL is malformed.
    #[error("invalid server address {endpoint}: {message}")]
    Endpoint {
        /// What was given.
        endpoint: String,
        /// Why it is invalid.
        message: String,
    },
    /// No connection could be made.
    #[error(
        "cannot connect to {endpoint}: {source} (is the server running, and the SSH tunnel up?)"
    )]
    Connect {
        /// The server.
        endpoint: String,
        /// The transport error.
        source: tonic::transport::Error,
    },
    /// The server answered with an error status.
    #[error("server answered {code:?}: {message} (correlation id {correlation_id})")]
    Status {
        /// gRPC code.
        code: tonic::Code,
        /// The server's sentence.
        message: String,
        /// The id to find this request in the server's logs.
        correlation_id: String,
    },
    /// The answer does not have the promised shape.
    #[error("malformed answer from the server: {0}")]
    Malformed(String),
}

impl ClientError {
    /// The gRPC code, when the server answered with an error status.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            ClientError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<tonic::Status> for ClientError {
    fn from(s: tonic::Status) -> Self {
        ClientError::Status {
            code: s.code(),
            message: s.message().to_owned(),
            correlation_id: correlation_id(s.metadata()).unwrap_or_else(|| "-".into()),
        }
    }
}

fn correlation_id(meta: &tonic::metadata::MetadataMap) -> Option<String> {
    meta.get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Server URL, e.g. `http://127.0.0.1:19000` (the local end of the SSH forward).
    pub endpoint: String,
    /// Time to establish the connection.
    pub connect_timeout: Duration,
    /// Deadline of one call (sent to the server as `grpc-timeout`).
    pub request_timeout: Duration,
    /// Interval of HTTP/2 keepalive pings.
    pub keepalive_interval: Duration,
    /// A ping unanswered this long closes the connection.
    pub keepalive_timeout: Duration,
    /// Largest message sent or received.
    pub max_message_bytes: usize,
}

impl ClientOptions {
    /// Defaults for `endpoint`: 10 s connect, 10 min calls, pings every 20 s with a 10 s timeout,
    /// 64 MiB messages.
    pub fn new(endpoint: impl Into<String>) -> Self {
        ClientOptions {
            endpoint: endpoint.into(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(600),
            keepalive_interval: Duration::from_secs(20),
            keepalive_timeout: Duration::from_secs(10),
            max_message_bytes: 64 << 20,
        }
    }
}

/// Embeddings of one call, in request order.
#[derive(Debug, Clone)]
pub struct Embeddings {
    /// [texts, dim], f32 (f16 answers are widened).
    pub vectors: Array2<f32>,
    /// Tokens per text, special tokens included.
    pub token_counts: Vec<u32>,
    /// Whether each text was truncated.
    pub truncated: Vec<bool>,
    /// Server fingerprint the vectors belong to.
    pub fingerprint: String,
}

/// A connection to one server; cheap to clone, calls may run concurrently.
#[derive(Debug, Clone)]
pub struct Client {
    offload: OffloadClient<Channel>,
    health: HealthClient<Channel>,
    options: ClientOptions,
}

impl Client {
    /// Connects to the server.
    pub async fn connect(options: ClientOptions) -> Result<Client, ClientError> {
        let endpoint = Endpoint::from_shared(options.endpoint.clone())
            .map_err(|e| ClientError::Endpoint {
                endpoint: options.endpoint.clone(),
                message: e.to_string(),
            })?
            .connect_timeout(options.connect_timeout)
            .http2_keep_alive_interval(options.keepalive_interval)
            .keep_alive_timeout(options.keepalive_timeout)
            .keep_alive_while_idle(true);
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| ClientError::Connect {
                endpoint: options.endpoint.clone(),
                source,
            })?;
        let limit = options.max_message_bytes;
        Ok(Client {
            offload: OffloadClient::new(channel.clone())
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
            health: HealthClient::new(channel),
            options,
        })
    }

    /// The server's address, as given in [`ClientOptions::endpoint`].
    pub fn endpoint(&self) -> &str {
        &self.options.endpoint
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(message);
        req.set_timeout(self.options.request_timeout);
        req
    }

    /// The server's description: fingerprint, model, limits.
    pub async fn info(&self) -> Result<InfoResponse, ClientError> {
        let resp = self
            .offload
            .clone()
            .info(self.request(InfoRequest {}))
            .await?;
        Ok(resp.into_inner())
    }

    /// The gRPC health status of the whole server (`SERVING` once the model is ready).
    pub async fn health(&self) -> Result<HealthStatus, ClientError> {
        let resp = self
            .health
            .clone()
            .check(self.request(HealthCheckRequest {
                service: String::new(),
            }))
            .await?;
        Ok(resp.into_inner().status())
    }

    /// [CLS] embeddings of `texts`; `f16` halves the bytes on the wire.
    pub async fn embed(&self, texts: Vec<String>, f16: bool) -> Result<Embeddings, ClientError> {
        let n = texts.len();
        let dtype = if f16 { Dtype::F16 } else { Dtype::F32 };
        let resp = self
            .offload
            .clone()
            .embed(self.request(EmbedRequest {
                texts,
                dtype: dtype as i32,
            }))
            .await?
            .into_inner();
        let matrix = resp
            .embeddings
            .ok_or_else(|| ClientError::Malformed("no embeddings in the answer".into()))?;
        let values = hemma_proto::matrix::decode(&matrix)
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        if matrix.rows as usize != n {
            return Err(ClientError::Malformed(format!(
                "{} rows for {n} texts",
                matrix.rows
            )));
        }
        let vectors = Array2::from_shape_vec((n, matrix.cols as usize), values)
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        Ok(Embeddings {
            vectors,
            token_counts: resp.token_counts,
            truncated: resp.truncated,
            fingerprint: resp.fingerprint,
        })
    }

    /// LanguageTool matches and error counts of `texts`, one result per text in order;
    /// `options` None uses the server's configured options.
    pub async fn check_grammar(
        &self,
        texts: Vec<String>,
        options: Option<GrammarOptions>,
    ) -> Result<CheckGrammarResponse, ClientError> {
        let n = texts.len();
        let resp = self
            .offload
            .clone()
            .check_grammar(self.request(CheckGrammarRequest {
                texts,
                options,
                max_replacements: 0,
            }))
            .await?
            .into_inner();
        if resp.results.len() != n {
            return Err(ClientError::Malformed(format!(
                "{} grammar results for {n} texts",
                resp.results.len()
            )));
        }
        Ok(resp)
    }

    /// Every feature of `texts` in one call; `prompts` holds one prompt per text or one for all
    /// (empty for the embeddings set).
    pub async fn extract(
        &self,
        texts: Vec<String>,
        prompts: Vec<String>,
        set: FeatureSet,
        f16: bool,
    ) -> Result<Extraction, ClientError> {
        let n = texts.len();
        let resp = self
            .offload
            .clone()
            .extract(self.request(extract_request(texts, prompts, set, f16)))
            .await?
            .into_inner();
        Extraction::decode(resp, n)
    }

    /// Opens an `ExtractStream`: `chunks` go out as the server's flow control allows, and the
    /// answers come back in the order the chunks were sent (decode each with
    /// [`Extraction::decode`]).
    pub async fn extract_stream(
        &self,
        chunks: impl Stream<Item = ExtractChunk> + Send + 'static,
    ) -> Result<tonic::Streaming<ExtractChunkResult>, ClientError> {
        let mut req = tonic::Request::new(chunks);
        // A corpus stream may run for hours; each chunk's progress is the liveness signal, and a
        // dead tunnel is caught by the keepalive pings.
        req.set_timeout(
            self.options
                .request_timeout
                .max(Duration::from_secs(24 * 3600)),
        );
        Ok(self.offload.clone().extract_stream(req).await?.into_inner())
    }
}

/// The wire request of one extraction.
pub fn extract_request(
    texts: Vec<String>,
    prompts: Vec<String>,
    set: FeatureSet,
    f16: bool,
) -> ExtractRequest {
    let dtype = if f16 { Dtype::F16 } else { Dtype::F32 };
    ExtractRequest {
        texts,
        prompts,
        feature_set: set as i32,
        dtype: dtype as i32,
    }
}
