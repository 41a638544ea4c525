//! Maps the service's errors to gRPC status codes, once.

use tonic::Status;

use super::Readiness;
use crate::extract::ExtractError;
use hemma_embed::queue::EmbedError;
use languagetool_pool::GrammarError;
use languagetool_pool::pool::PoolError;

/// The status of a LanguageTool failure.
pub fn grammar_status(e: GrammarError) -> Status {
    let message = e.to_string();
    match e {
        GrammarError::Options(_) => Status::invalid_argument(message),
        GrammarError::NotReady => Status::unavailable(message),
        GrammarError::Pool(p) => match p {
            PoolError::Unavailable { .. } => Status::unavailable(message),
            PoolError::Busy { .. } | PoolError::Saturated { .. } => {
                Status::resource_exhausted(message)
            }
            PoolError::Timeout { .. } => Status::deadline_exceeded(message),
            PoolError::TooLong { .. } => Status::invalid_argument(message),
            PoolError::Rejected {
                status: 400 | 422, ..
            } => Status::invalid_argument(message),
            PoolError::Rejected { .. } => Status::unavailable(message),
            PoolError::Failed { status: 500, .. } | PoolError::Malformed(_) => {
                Status::internal(message)
            }
            PoolError::Failed { .. } => Status::unavailable(message),
        },
    }
}

/// The status of an embedding failure.
pub fn embed_status(e: EmbedError) -> Status {
    let message = e.to_string();
    match e {
        EmbedError::QueueFull { .. } => Status::resource_exhausted(message),
        EmbedError::Tokenize(_) => Status::invalid_argument(message),
        EmbedError::Engine(_) => Status::internal(message),
        EmbedError::EngineGone => Status::unavailable(message),
    }
}

impl From<ExtractError> for Status {
    fn from(e: ExtractError) -> Status {
        let message = e.to_string();
        // The parts keep their own codes (LanguageTool down stays UNAVAILABLE, a full queue
        // RESOURCE_EXHAUSTED); the message is the whole sentence naming the text.
        let code = match e {
            ExtractError::NoLanguageTool { .. } => tonic::Code::FailedPrecondition,
            ExtractError::Grammar { source, .. } => grammar_status(source).code(),
            ExtractError::Embed(source) => embed_status(source).code(),
            ExtractError::TooManyStrings { .. } => tonic::Code::ResourceExhausted,
            ExtractError::Analyse { .. }
            | ExtractError::Feature { .. }
            | ExtractError::Worker(_) => tonic::Code::Internal,
        };
        Status::new(code, message)
    }
}

/// The status for a request that arrives while the server is not ready.
pub fn not_ready(readiness: &Readiness) -> Status {
    match readiness {
        Readiness::Loading => {
            Status::unavailable("the model is still loading; retry when /readyz answers 200")
        }
        Readiness::AwaitingLanguageTool => Status::unavailable(
            "waiting for LanguageTool to answer a probe (see /readyz for why); retry when /readyz answers 200",
        ),
        Readiness::Failed(why) => Status::unavailable(format!("the server failed to start: {why}")),
        Readiness::Ready(_) => Status::internal("server reported not-ready while ready"),
    }
}
