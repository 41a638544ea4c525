//! Maps the service's errors to gRPC status codes, once.

use tonic::Status;

use super::Readiness;
use crate::embed::queue::EmbedError;

impl From<EmbedError> for Status {
    fn from(e: EmbedError) -> Status {
        let message = e.to_string();
        match e {
            EmbedError::QueueFull { .. } => Status::resource_exhausted(message),
            EmbedError::Tokenize(_) => Status::invalid_argument(message),
            EmbedError::Engine(_) => Status::internal(message),
            EmbedError::EngineGone => Status::unavailable(message),
        }
    }
}

/// The status for a request that arrives while the server is not ready.
pub fn not_ready(readiness: &Readiness) -> Status {
    match readiness {
        Readiness::Loading => {
            Status::unavailable("the model is still loading; retry when /readyz answers 200")
        }
        Readiness::Failed(why) => Status::unavailable(format!("the model failed to load: {why}")),
        Readiness::Ready(_) => Status::internal("server reported not-ready while ready"),
    }
}
