//! A stand-in hemma-offload that answers `Info` with whatever fingerprint a test gives it (a
//! broken or hostile server), and refuses every other call.

use std::net::SocketAddr;
use std::pin::Pin;

use futures::Stream;
use hemma_proto::v1::offload_server::{Offload, OffloadServer};
use hemma_proto::v1::{
    CheckGrammarRequest, CheckGrammarResponse, EmbedRequest, EmbedResponse, ExtractChunk,
    ExtractChunkResult, ExtractRequest, ExtractResponse, InfoRequest, InfoResponse,
};
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status, Streaming};

struct Fake {
    fingerprint: String,
}

#[tonic::async_trait]
impl Offload for Fake {
    async fn info(&self, _: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        Ok(Response::new(InfoResponse {
            fingerprint: self.fingerprint.clone(),
            schema_version: hemma_proto::SCHEMA_VERSION,
            ..Default::default()
        }))
    }

    async fn embed(&self, _: Request<EmbedRequest>) -> Result<Response<EmbedResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn check_grammar(
        &self,
        _: Request<CheckGrammarRequest>,
    ) -> Result<Response<CheckGrammarResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn extract(
        &self,
        _: Request<ExtractRequest>,
    ) -> Result<Response<ExtractResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    type ExtractStreamStream =
        Pin<Box<dyn Stream<Item = Result<ExtractChunkResult, Status>> + Send + 'static>>;

    async fn extract_stream(
        &self,
        _: Request<Streaming<ExtractChunk>>,
    ) -> Result<Response<Self::ExtractStreamStream>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

/// A fake server on a loopback port; stops when dropped.
pub struct FakeOffload {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl FakeOffload {
    /// Starts one whose `Info` sends `fingerprint`.
    pub async fn start(fingerprint: &str) -> FakeOffload {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = OffloadServer::new(Fake {
            fingerprint: fingerprint.to_owned(),
        });
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await;
        });
        FakeOffload { addr, task }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FakeOffload {
    fn drop(&mut self) {
        self.task.abort();
    }
}
