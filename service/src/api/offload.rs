//! The `hemma.offload.v1.Offload` service.

use std::sync::Arc;

use hemma_proto::v1::offload_server::Offload;
use hemma_proto::v1::{EmbedRequest, EmbedResponse, InfoRequest, InfoResponse};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::{Loaded, Readiness, status, validate};
use crate::config::RequestLimits;

/// The Offload service over the loaded model.
#[derive(Debug, Clone)]
pub struct OffloadApi {
    readiness: watch::Receiver<Readiness>,
    limits: RequestLimits,
}

impl OffloadApi {
    /// A service answering from whatever `readiness` holds.
    pub fn new(readiness: watch::Receiver<Readiness>, limits: RequestLimits) -> Self {
        OffloadApi { readiness, limits }
    }

    fn loaded(&self) -> Result<Arc<Loaded>, Status> {
        match &*self.readiness.borrow() {
            Readiness::Ready(loaded) => Ok(loaded.clone()),
            other => Err(status::not_ready(other)),
        }
    }
}

#[tonic::async_trait]
impl Offload for OffloadApi {
    async fn info(&self, _request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        Ok(Response::new(self.loaded()?.info.clone()))
    }

    async fn embed(
        &self,
        request: Request<EmbedRequest>,
    ) -> Result<Response<EmbedResponse>, Status> {
        let loaded = self.loaded()?;
        let req = request.into_inner();
        validate::texts(&req.texts, &self.limits)?;
        let dtype = validate::dtype(req.dtype)?;
        let out = loaded.embedder.embed(req.texts).await?;
        let (rows, cols) = out.vectors.dim();
        let values = out.vectors.as_standard_layout();
        let values = values
            .as_slice()
            .expect("a standard-layout array is one contiguous slice");
        Ok(Response::new(EmbedResponse {
            embeddings: Some(hemma_proto::matrix::encode(values, rows, cols, dtype)),
            token_counts: out.token_counts,
            truncated: out.truncated,
            fingerprint: loaded.info.fingerprint.clone(),
            schema_version: loaded.info.schema_version,
        }))
    }
}
