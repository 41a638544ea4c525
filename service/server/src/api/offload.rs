//! The `hemma.offload.v1.Offload` service.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use hemma_proto::v1::extract_chunk_result::Outcome;
use hemma_proto::v1::offload_server::Offload;
use hemma_proto::v1::{
    CheckGrammarRequest, CheckGrammarResponse, ChunkError, EmbedRequest, EmbedResponse,
    ExtractChunk, ExtractChunkResult, ExtractRequest, ExtractResponse, GrammarCounts, GrammarMatch,
    GrammarOptions, GrammarResult, InfoRequest, InfoResponse, RowStatus, StageTimings,
};
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};

use super::{Loaded, Readiness, status, validate};
use crate::config::RequestLimits;
use languagetool_pool::{CheckOptions, CheckResult, MAX_REPLACEMENTS};

/// Replacements per match when a request does not say.
const DEFAULT_REPLACEMENTS: usize = 5;

/// The Offload service over the loaded model.
#[derive(Debug, Clone)]
pub struct OffloadApi {
    readiness: watch::Receiver<Readiness>,
    limits: RequestLimits,
    stream_chunks_in_flight: usize,
}

/// The answers of one ExtractStream, in chunk order.
pub type ExtractStreamAnswers =
    std::pin::Pin<Box<dyn Stream<Item = Result<ExtractChunkResult, Status>> + Send + 'static>>;

impl OffloadApi {
    /// A service answering from whatever `readiness` holds; each ExtractStream works on at most
    /// `stream_chunks_in_flight` chunks at once.
    pub fn new(
        readiness: watch::Receiver<Readiness>,
        limits: RequestLimits,
        stream_chunks_in_flight: usize,
    ) -> Self {
        OffloadApi {
            readiness,
            limits,
            stream_chunks_in_flight: stream_chunks_in_flight.max(1),
        }
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
        let out = loaded
            .embedder
            .embed(req.texts)
            .await
            .map_err(status::embed_status)?;
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

    async fn extract(
        &self,
        request: Request<ExtractRequest>,
    ) -> Result<Response<ExtractResponse>, Status> {
        let loaded = self.loaded()?;
        let response = extract_one(&loaded, request.into_inner(), &self.limits).await?;
        Ok(Response::new(response))
    }

    type ExtractStreamStream = ExtractStreamAnswers;

    async fn extract_stream(
        &self,
        request: Request<Streaming<ExtractChunk>>,
    ) -> Result<Response<Self::ExtractStreamStream>, Status> {
        let loaded = self.loaded()?;
        let limits = self.limits;
        // `buffered` answers in chunk order and pulls a new chunk only when fewer than the
        // window are in progress; the rest wait in HTTP/2 flow control, so memory stays bounded.
        let answers = request
            .into_inner()
            .map(move |chunk| {
                let loaded = loaded.clone();
                async move {
                    match chunk {
                        Ok(chunk) => Ok(answer_chunk(&loaded, chunk, &limits).await),
                        Err(status) => Err(status),
                    }
                }
            })
            .buffered(self.stream_chunks_in_flight);
        Ok(Response::new(Box::pin(answers)))
    }

    async fn check_grammar(
        &self,
        request: Request<CheckGrammarRequest>,
    ) -> Result<Response<CheckGrammarResponse>, Status> {
        let loaded = self.loaded()?;
        let grammar = loaded.grammar.as_ref().ok_or_else(|| {
            Status::failed_precondition(
                "LanguageTool is not configured on this server: start it with --languagetool-url URL",
            )
        })?;
        let req = request.into_inner();
        validate::texts(&req.texts, &self.limits)?;
        let options = match req.options {
            Some(o) => merge_options(o, grammar.defaults()),
            None => grammar.defaults().clone(),
        };
        let keep = match req.max_replacements {
            0 => DEFAULT_REPLACEMENTS,
            n => (n as usize).min(MAX_REPLACEMENTS),
        };
        let checks = req.texts.iter().enumerate().map(|(i, text)| {
            let options = &options;
            async move {
                grammar.check(text, options).await.map_err(|e| {
                    let status = status::grammar_status(e);
                    Status::new(status.code(), format!("text {i}: {}", status.message()))
                })
            }
        });
        let checked = futures::future::try_join_all(checks).await?;
        let results = checked
            .into_iter()
            .map(|c| grammar_result(&c.result, c.cached.is_some(), keep))
            .collect();
        Ok(Response::new(CheckGrammarResponse {
            results,
            languagetool_version: grammar.version().unwrap_or_default().to_owned(),
            fingerprint: loaded.info.fingerprint.clone(),
            schema_version: loaded.info.schema_version,
        }))
    }
}

/// Validates and runs one Extract request.
async fn extract_one(
    loaded: &Loaded,
    req: ExtractRequest,
    limits: &RequestLimits,
) -> Result<ExtractResponse, Status> {
    let (job, dtype) = validate::extract(req, limits)?;
    let out = loaded.extractor.extract(job).await?;
    let matrix = |m: ndarray::Array2<f32>, dtype| {
        let (rows, cols) = m.dim();
        let values = m.as_standard_layout();
        let values = values
            .as_slice()
            .expect("a standard-layout array is one contiguous slice");
        hemma_proto::matrix::encode(values, rows, cols, dtype)
    };
    let has_embeddings = out.embeddings.is_some();
    let has_handcrafted = out.handcrafted.is_some();
    let t = out.timings;
    Ok(ExtractResponse {
        embeddings: out.embeddings.map(|m| matrix(m, dtype)),
        handcrafted: out
            .handcrafted
            .map(|m| matrix(m, hemma_proto::v1::Dtype::F32)),
        embedding_feature_names: if has_embeddings {
            loaded.info.embedding_feature_names.clone()
        } else {
            Vec::new()
        },
        handcrafted_feature_names: if has_handcrafted {
            loaded.info.handcrafted_feature_names.clone()
        } else {
            Vec::new()
        },
        schema_version: loaded.info.schema_version,
        fingerprint: loaded.info.fingerprint.clone(),
        timings: Some(StageTimings {
            parse_seconds: t.parse.as_secs_f64(),
            embed_seconds: t.embed.as_secs_f64(),
            languagetool_seconds: t.languagetool.as_secs_f64(),
            assembly_seconds: t.assembly.as_secs_f64(),
            total_seconds: t.total.as_secs_f64(),
            strings_embedded: t.strings_embedded as u32,
        }),
        limited_rows: out
            .limited
            .into_iter()
            .map(|row| RowStatus {
                index: row.index as u32,
                code: row.limit.code().to_owned(),
                message: row.message,
            })
            .collect(),
    })
}

/// The answer to one stream chunk: its features, or an error naming it.
async fn answer_chunk(
    loaded: &Loaded,
    chunk: ExtractChunk,
    limits: &RequestLimits,
) -> ExtractChunkResult {
    let ExtractChunk {
        chunk_id,
        ids,
        request,
    } = chunk;
    let outcome = match request {
        None => Err(Status::invalid_argument("the chunk has no request")),
        Some(req) if !ids.is_empty() && ids.len() != req.texts.len() => {
            Err(Status::invalid_argument(format!(
                "{} ids for {} texts: send one id per text, or none",
                ids.len(),
                req.texts.len()
            )))
        }
        Some(req) => match validate::ids(&ids) {
            Ok(()) => extract_one(loaded, req, limits).await,
            Err(refusal) => Err(refusal.into()),
        },
    };
    let outcome = match outcome {
        Ok(response) => Outcome::Response(response),
        Err(status) => {
            tracing::warn!(chunk_id, code = ?status.code(), message = status.message(), "stream chunk failed");
            Outcome::Error(ChunkError {
                code: status.code() as i32,
                message: format!("chunk {chunk_id}: {}", status.message()),
            })
        }
    };
    ExtractChunkResult {
        chunk_id,
        ids,
        outcome: Some(outcome),
    }
}

/// A request's options over the server's: unset (empty) fields keep the server's value.
fn merge_options(o: GrammarOptions, defaults: &CheckOptions) -> CheckOptions {
    let or = |v: Vec<String>, d: &Vec<String>| if v.is_empty() { d.clone() } else { v };
    CheckOptions {
        language: if o.language.is_empty() {
            defaults.language.clone()
        } else {
            o.language
        },
        level: if o.level.is_empty() {
            defaults.level.clone()
        } else {
            o.level
        },
        enabled_rules: or(o.enabled_rules, &defaults.enabled_rules),
        disabled_rules: or(o.disabled_rules, &defaults.disabled_rules),
        enabled_categories: or(o.enabled_categories, &defaults.enabled_categories),
        disabled_categories: or(o.disabled_categories, &defaults.disabled_categories),
        enabled_only: o.enabled_only || defaults.enabled_only,
    }
}

fn grammar_result(r: &CheckResult, cached: bool, keep: usize) -> GrammarResult {
    GrammarResult {
        matches: r
            .matches
            .iter()
            .map(|m| {
                let r = &m.received;
                GrammarMatch {
                    offset_utf16: r.offset_utf16 as u32,
                    length_utf16: r.length_utf16 as u32,
                    offset: m.offset as u32,
                    length: m.length as u32,
                    message: r.message.clone(),
                    short_message: r.short_message.clone(),
                    rule_id: r.rule_id.clone(),
                    rule_sub_id: r.rule_sub_id.clone(),
                    rule_description: r.rule_description.clone(),
                    category_id: r.category_id.clone(),
                    category_name: r.category_name.clone(),
                    issue_type: r.issue_type.clone(),
                    replacements: r.replacements.iter().take(keep).cloned().collect(),
                    kind: m.kind.name().to_owned(),
                }
            })
            .collect(),
        counts: Some(GrammarCounts {
            grammar: r.counts.grammar,
            spelling: r.counts.spelling,
            punctuation: r.counts.punctuation,
            by_category: r.counts.by_category.clone().into_iter().collect(),
        }),
        cached,
    }
}
