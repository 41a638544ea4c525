//! The drop-in HTTP API of the Python offload server this service replaces (the essay-scoring
//! pipeline's client, its ADR 0025): `POST /v1/extract` answers a zip of `meta.json` and NumPy
//! matrices, `POST /v1/embed` one `.npy`. Same port as gRPC, HTTP/1.1 and h2c, so the existing
//! pipeline switches by changing nothing but its URL.
//!
//! The work goes through the same validation limits, extractor and embedder as `Extract` and
//! `Embed`, with the same status mapping underneath; an error is a JSON body
//! `{"schema_version", "error", "detail", "correlation_id", "extra"}` and never a partial zip.
//! The one difference from gRPC: an empty prompt is embedded as the empty string, as the old
//! server did, where `Extract` refuses it.
//!
//! Rows whose text exceeded an analyser limit (NaN handcrafted features) are counted in the
//! `x-limited-rows` header (always present, `0` when none) and, when there are any, listed in an
//! extra zip member, `row_status.json` (`{"rows": n, "limited": [{"index", "code", "message"}]}`);
//! never in `meta.json`, whose keys the old client fixes. An answer without limited rows is the
//! old server's zip, member for member.

use std::io::{Cursor, Write};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ndarray::Array2;
use ndarray_npy::WriteNpyExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tonic::{Code, Status};

use super::{Loaded, Readiness, status, validate};
use crate::config::RequestLimits;
use crate::extract::FeatureSet;
use crate::telemetry::correlation::CorrelationId;

/// What the routes need besides the loaded model: the limits and the LanguageTool upstream.
#[derive(Clone)]
struct CompatState {
    readiness: watch::Receiver<Readiness>,
    limits: RequestLimits,
    /// The first LanguageTool URL, credentials redacted.
    languagetool_url: Option<String>,
}

/// `/v1/extract` and `/v1/embed`.
pub fn routes(
    readiness: watch::Receiver<Readiness>,
    limits: RequestLimits,
    languagetool_url: Option<String>,
) -> Router {
    Router::new()
        .route("/v1/extract", post(extract))
        .route("/v1/embed", post(embed))
        .with_state(CompatState {
            readiness,
            limits,
            languagetool_url,
        })
}

/// The body of `/v1/extract`; any other key is refused, as the old server's model did.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtractBody {
    texts: Vec<String>,
    #[serde(default)]
    prompts: Vec<String>,
    feature_set: String,
}

/// The body of `/v1/embed`. `batch_size` is accepted and ignored: the server's batcher decides.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbedBody {
    texts: Vec<String>,
    #[serde(default)]
    model_name: Option<String>,
    #[serde(default)]
    max_length: Option<u64>,
    #[serde(default)]
    #[allow(dead_code)]
    batch_size: Option<u64>,
}

/// One refused or failed request: status, error code and sentence.
struct ApiError {
    status: StatusCode,
    error: &'static str,
    detail: String,
    extra: Value,
}

impl ApiError {
    fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            detail: detail.into(),
            extra: json!({}),
        }
    }

    fn invalid(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }

    /// A refused request content: the request-size limits are 413s (the old client tells them
    /// apart from bad requests), the rest 400.
    fn refused(r: validate::Refusal) -> ApiError {
        match r {
            validate::Refusal::TooManyItems(m) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_many_items", m)
            }
            validate::Refusal::TooLarge(m) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request_too_large", m)
            }
            validate::Refusal::Invalid(m) => ApiError::invalid(m),
        }
    }

    /// The HTTP form of a gRPC status, mapped as the gRPC API maps the same failure.
    fn from_status(s: &Status) -> ApiError {
        let (status, error) = match s.code() {
            Code::InvalidArgument => (StatusCode::BAD_REQUEST, "invalid_request"),
            Code::Unavailable
            | Code::ResourceExhausted
            | Code::DeadlineExceeded
            | Code::FailedPrecondition => {
                (StatusCode::SERVICE_UNAVAILABLE, "dependency_unavailable")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        };
        let mut e = ApiError::new(status, error, s.message());
        e.extra = json!({"grpc_code": format!("{:?}", s.code())});
        e
    }

    fn into_response(self, correlation_id: &str) -> Response {
        let body = json!({
            "schema_version": hemma_proto::SCHEMA_VERSION,
            "error": self.error,
            "detail": self.detail,
            "correlation_id": correlation_id,
            "extra": self.extra,
        });
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            format!("{body}\n"),
        )
            .into_response()
    }
}

/// The correlation id the middleware gave this request.
fn correlation_id(req: &Request) -> String {
    req.extensions()
        .get::<CorrelationId>()
        .map(|c| c.0.clone())
        .unwrap_or_default()
}

/// Reads the whole body, at most `limit` bytes (413 `request_too_large` past it).
async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                format!("the request body is over {limit} bytes; split it into smaller requests"),
            )
        })
}

/// Parses a JSON body into `T`, naming what is wrong (unknown key, wrong type, bad JSON).
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid request: {e}")))
}

/// The loaded model, or 503 with the reason (loading, waiting for LanguageTool, failed).
fn loaded(s: &CompatState) -> Result<Arc<Loaded>, ApiError> {
    match &*s.readiness.borrow() {
        Readiness::Ready(l) => Ok(l.clone()),
        other => Err(ApiError::from_status(&status::not_ready(other))),
    }
}

/// `POST /v1/extract`: see the module docs.
async fn extract(State(s): State<CompatState>, req: Request) -> Response {
    let id = correlation_id(&req);
    match extract_zip(&s, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(&id),
    }
}

async fn extract_zip(s: &CompatState, req: Request) -> Result<Response, ApiError> {
    let body = read_body(req, s.limits.max_message_bytes).await?;
    let body: ExtractBody = parse(&body)?;
    let set = FeatureSet::from_name(&body.feature_set).ok_or_else(|| {
        ApiError::invalid(format!(
            "feature_set {:?} is unknown: choose \"embeddings\", \"handcrafted\" or \"combined\"",
            body.feature_set
        ))
    })?;
    if body.prompts.len() != body.texts.len() {
        return Err(ApiError::invalid(format!(
            "prompts has {} entries for {} texts: send one prompt per text",
            body.prompts.len(),
            body.texts.len()
        )));
    }
    let job = validate::job(
        set,
        body.texts,
        body.prompts,
        &s.limits,
        validate::EmptyPrompt::Allow,
    )
    .map_err(ApiError::refused)?;
    let loaded = loaded(s)?;
    let out = loaded
        .extractor
        .extract(job)
        .await
        .map_err(|e| ApiError::from_status(&Status::from(e)))?;
    let meta = meta_json(&loaded, s.languagetool_url.as_deref());
    let rows = out
        .handcrafted
        .as_ref()
        .or(out.embeddings.as_ref())
        .map_or(0, |m| m.nrows());
    let row_status = (!out.limited.is_empty()).then(|| {
        json!({
            "rows": rows,
            "limited": out.limited.iter().map(|r| json!({
                "index": r.index,
                "code": r.limit.code(),
                "message": r.message,
            })).collect::<Vec<_>>(),
        })
    });
    let zip = zip_answer(
        &meta,
        row_status.as_ref(),
        out.embeddings.as_ref(),
        out.handcrafted.as_ref(),
    )
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    insert(
        &mut headers,
        "x-schema-version",
        &loaded.info.schema_version.to_string(),
    );
    insert(
        &mut headers,
        "x-server-fingerprint",
        &loaded.info.fingerprint,
    );
    insert(
        &mut headers,
        "x-limited-rows",
        &out.limited.len().to_string(),
    );
    Ok((StatusCode::OK, headers, Body::from(zip)).into_response())
}

/// `POST /v1/embed`: see the module docs.
async fn embed(State(s): State<CompatState>, req: Request) -> Response {
    let id = correlation_id(&req);
    match embed_npy(&s, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(&id),
    }
}

async fn embed_npy(s: &CompatState, req: Request) -> Result<Response, ApiError> {
    let body = read_body(req, s.limits.max_message_bytes).await?;
    let body: EmbedBody = parse(&body)?;
    let loaded = loaded(s)?;
    let model = loaded.info.model.clone().unwrap_or_default();
    if let Some(name) = body.model_name.as_deref().filter(|n| *n != model.model_id) {
        let mut e = ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_model",
            format!(
                "model_name {name:?} is not the model this server runs, {:?}",
                model.model_id
            ),
        );
        e.extra = json!({"requested": name, "served": model.model_id});
        return Err(e);
    }
    if let Some(asked) = body
        .max_length
        .filter(|m| *m != u64::from(model.max_length))
    {
        let mut e = ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_max_length",
            format!(
                "max_length {asked} is not this server's max_length, {}",
                model.max_length
            ),
        );
        e.extra = json!({"requested": asked, "served": model.max_length});
        return Err(e);
    }
    validate::texts(&body.texts, &s.limits).map_err(ApiError::refused)?;
    let out = loaded
        .embedder
        .embed(body.texts)
        .await
        .map_err(|e| ApiError::from_status(&status::embed_status(e)))?;
    let npy = npy_bytes(&out.vectors)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    insert(&mut headers, "x-embedding-model", &model.model_id);
    headers.insert("x-embedding-dtype", HeaderValue::from_static("float32"));
    insert(
        &mut headers,
        "x-server-fingerprint",
        &loaded.info.fingerprint,
    );
    Ok((StatusCode::OK, headers, Body::from(npy)).into_response())
}

/// Adds a header when the value is a valid header value (ids and fingerprints always are).
fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// A float32 little-endian C-order `.npy` file of `m` (NaN kept).
fn npy_bytes(m: &Array2<f32>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    m.as_standard_layout()
        .write_npy(&mut out)
        .map_err(|e| format!("encoding a matrix as .npy: {e}"))?;
    Ok(out)
}

/// The zip: `meta.json` always, `row_status.json` when given, then `embeddings.npy` and/or
/// `handcrafted.npy`.
fn zip_answer(
    meta: &Value,
    row_status: Option<&Value>,
    embeddings: Option<&Array2<f32>>,
    handcrafted: Option<&Array2<f32>>,
) -> Result<Vec<u8>, String> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let err = |e: &dyn std::fmt::Display| format!("writing the zip answer: {e}");
    let mut member = |name: &str, bytes: &[u8]| -> Result<(), String> {
        zip.start_file(name, options).map_err(|e| err(&e))?;
        zip.write_all(bytes).map_err(|e| err(&e))
    };
    let meta = serde_json::to_vec_pretty(meta).map_err(|e| err(&e))?;
    member("meta.json", &meta)?;
    if let Some(row_status) = row_status {
        let row_status = serde_json::to_vec_pretty(row_status).map_err(|e| err(&e))?;
        member("row_status.json", &row_status)?;
    }
    if let Some(m) = embeddings {
        member("embeddings.npy", &npy_bytes(m)?)?;
    }
    if let Some(m) = handcrafted {
        member("handcrafted.npy", &npy_bytes(m)?)?;
    }
    let cursor = zip.finish().map_err(|e| err(&e))?;
    Ok(cursor.into_inner())
}

/// `meta.json` of the old contract: exactly these keys, at every level (the old client's models
/// forbid any other).
fn meta_json(loaded: &Loaded, languagetool_url: Option<&str>) -> Value {
    let info = &loaded.info;
    let model = info.model.clone().unwrap_or_default();
    let tier = |t: u8| -> Vec<&'static str> { essay_features::tier_names(t) };
    let combined: Vec<String> = info
        .embedding_feature_names
        .iter()
        .cloned()
        .chain(
            essay_features::column_names()
                .into_iter()
                .map(str::to_owned),
        )
        .collect();
    let git_sha = match info.git_sha.as_str() {
        "" | "unknown" => Value::Null,
        sha => Value::from(sha),
    };
    let mut versions = serde_json::Map::new();
    for (k, v) in [
        ("hemma_offload", info.server_version.as_str()),
        ("engine", model.engine.as_str()),
        ("execution_provider", model.execution_provider.as_str()),
        ("precision", model.precision.as_str()),
        ("languagetool", info.languagetool_version.as_str()),
        ("nlp_models_sha256", info.nlp_sha256.as_str()),
    ] {
        versions.insert(k.to_owned(), Value::from(v));
    }
    versions.insert(
        "feature_schema".into(),
        Value::from(info.schema_version.to_string()),
    );
    let options = loaded.grammar.as_ref().map(|g| g.defaults().clone());
    let request_options: serde_json::Map<String, Value> = options
        .as_ref()
        .map(|o| {
            [
                ("language", o.language.clone()),
                ("level", o.level.clone()),
                ("enabled_rules", o.enabled_rules.join(",")),
                ("disabled_rules", o.disabled_rules.join(",")),
                ("enabled_categories", o.enabled_categories.join(",")),
                ("disabled_categories", o.disabled_categories.join(",")),
                ("enabled_only", o.enabled_only.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect()
        })
        .unwrap_or_default();
    json!({
        "schema_version": info.schema_version,
        "server_fingerprint": info.fingerprint,
        "git_sha": git_sha,
        "versions": versions,
        "embedding": {
            "model_name": model.model_id,
            "max_length": model.max_length,
            "pooling": model.pooling,
            "dim": model.dim,
        },
        "language_tool": {
            "language": options.as_ref().map(|o| o.language.clone()).unwrap_or_default(),
            "request_options": request_options,
            "service_url": languagetool_url.unwrap_or_default(),
            "jar_version": info.languagetool_version,
        },
        "feature_schema": {
            "tier1": tier(1),
            "tier2": tier(2),
            "tier3": tier(3),
            "combined": combined,
        },
    })
}

#[doc(hidden)]
pub mod fuzz_harness;
