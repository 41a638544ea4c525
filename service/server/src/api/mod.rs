//! The wire: tonic service impls, request validation, error mapping, and the HTTP routes.
//!
//! Only this module sees tonic and HTTP types; it calls down into `embed` and `grammar`, and
//! nothing calls up.

pub mod compat;
pub mod grpc_guard;
pub mod http;
pub mod info;
pub mod offload;
pub mod status;
pub mod validate;

use std::sync::Arc;

use hemma_proto::v1::InfoResponse;

use hemma_embed::queue::Embedder;
use languagetool_pool::Grammar;

/// What exists once the model is loaded and warmed up.
#[derive(Debug)]
pub struct Loaded {
    /// The embedding pipeline.
    pub embedder: Embedder,
    /// Runs Extract requests (parser, embedder and LanguageTool together).
    pub extractor: crate::extract::Extractor,
    /// The `Info` answer, computed once.
    pub info: InfoResponse,
    /// The LanguageTool proxy, when configured.
    pub grammar: Option<Arc<Grammar>>,
}

/// Where the server is in its life: loading, ready, or failed to load.
#[derive(Debug, Clone)]
pub enum Readiness {
    /// The engine is loading or warming up.
    Loading,
    /// The model is loaded; LanguageTool has not answered a probe yet.
    AwaitingLanguageTool,
    /// Serving.
    Ready(Arc<Loaded>),
    /// The engine failed to load or LanguageTool cannot be used; the server is shutting down.
    Failed(String),
}
