//! Per-request middleware: correlation id, request span, and request metrics.
//!
//! The id comes from the `x-correlation-id` header or is generated; it is put in the request's
//! extensions (tonic handlers read it there), recorded on the request span, and echoed on every
//! response, errors included (a gRPC error is a trailers-only response, so its headers carry it).

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tracing::Instrument;

use super::metrics::Metrics;

/// Header carrying the correlation id in both directions.
pub const HEADER: &str = "x-correlation-id";

/// The correlation id of the request being served.
#[derive(Debug, Clone)]
pub struct CorrelationId(pub String);

/// Methods and routes counted by name; anything else is `other` (keeps label values bounded).
const KNOWN: &[&str] = &[
    "/hemma.offload.v1.Offload/Info",
    "/hemma.offload.v1.Offload/Embed",
    "/hemma.offload.v1.Offload/CheckGrammar",
    "/hemma.offload.v1.Offload/Extract",
    "/hemma.offload.v1.Offload/ExtractStream",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/healthz",
    "/readyz",
    "/metrics",
];

fn accept_id(value: Option<&HeaderValue>) -> Option<String> {
    let v = value?.to_str().ok()?.trim();
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| v.to_owned())
}

/// axum middleware: see the module docs.
pub async fn layer(State(metrics): State<Metrics>, mut req: Request, next: Next) -> Response {
    let id =
        accept_id(req.headers().get(HEADER)).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let path = req.uri().path().to_owned();
    let method = if KNOWN.contains(&path.as_str()) {
        path.as_str()
    } else {
        "other"
    };
    req.extensions_mut().insert(CorrelationId(id.clone()));
    let span = tracing::info_span!("request", method = %path, correlation_id = %id);
    let start = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let grpc = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    let code = if grpc {
        let raw = resp
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(0);
        format!("{:?}", tonic::Code::from_i32(raw))
    } else {
        resp.status().as_u16().to_string()
    };
    let seconds = start.elapsed().as_secs_f64();
    metrics.record_request(method, &code, seconds);
    span.in_scope(|| tracing::info!(code = %code, seconds, "request finished"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HEADER, v);
    }
    resp
}
