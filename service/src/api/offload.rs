//! The `hemma.offload.v1.Offload` service.

use std::sync::Arc;

use hemma_proto::v1::offload_server::Offload;
use hemma_proto::v1::{
    CheckGrammarRequest, CheckGrammarResponse, EmbedRequest, EmbedResponse, GrammarCounts,
    GrammarMatch, GrammarOptions, GrammarResult, InfoRequest, InfoResponse,
};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::{Loaded, Readiness, status, validate};
use crate::config::RequestLimits;
use crate::grammar::{CheckOptions, CheckResult, MAX_REPLACEMENTS};

/// Replacements per match when a request does not say.
const DEFAULT_REPLACEMENTS: usize = 5;

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
                    let status = Status::from(e);
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
