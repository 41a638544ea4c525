//! Plain HTTP routes on the gRPC port: `/healthz`, `/readyz`, `/metrics`.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

use std::sync::Arc;

use super::Readiness;
use crate::telemetry::metrics::Metrics;
use languagetool_pool::Grammar;

#[derive(Clone)]
struct HttpState {
    readiness: watch::Receiver<Readiness>,
    grammar: Option<Arc<Grammar>>,
    metrics: Metrics,
}

/// The HTTP routes.
pub fn routes(
    readiness: watch::Receiver<Readiness>,
    grammar: Option<Arc<Grammar>>,
    metrics: Metrics,
) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(HttpState {
            readiness,
            grammar,
            metrics,
        })
}

/// Any other path. A gRPC call to an unknown method gets UNIMPLEMENTED; a plain HTTP request a
/// 404 naming the routes (not a `200` with a gRPC status, which curl and HTTP clients take for
/// success).
pub async fn not_found(req: axum::extract::Request) -> axum::response::Response {
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        let method = req.uri().path().to_owned();
        return tonic::Status::unimplemented(format!("no gRPC method {method} on this server"))
            .into_http();
    }
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(
            "no route {} {}: this port serves GET /healthz, /readyz, /metrics; POST /v1/extract, \
             /v1/embed (JSON); and gRPC hemma.offload.v1.Offload\n",
            req.method(),
            req.uri().path()
        ),
    )
        .into_response()
}

/// 200 while the process serves requests.
async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 once the model is loaded and LanguageTool (when configured) has a healthy instance;
/// 503 with the reason otherwise.
async fn readyz(State(s): State<HttpState>) -> impl IntoResponse {
    let languagetool = s.grammar.as_ref().map(|g| g.status());
    let lt_ready = languagetool.as_ref().is_none_or(|l| l.ready);
    let (ready, mut body) = match &*s.readiness.borrow() {
        Readiness::Ready(l) => (
            lt_ready,
            serde_json::json!({"model": "loaded", "model_id": l.info.model.as_ref().map(|m| m.model_id.clone()), "fingerprint": l.info.fingerprint}),
        ),
        Readiness::Loading => (false, serde_json::json!({"model": "loading"})),
        Readiness::AwaitingLanguageTool => (false, serde_json::json!({"model": "loaded"})),
        Readiness::Failed(why) => (
            false,
            serde_json::json!({"model": format!("failed: {why}")}),
        ),
    };
    body["ready"] = ready.into();
    if let Some(lt) = languagetool {
        body["languagetool"] = serde_json::to_value(lt).unwrap_or_default();
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
}

/// Prometheus text exposition.
async fn metrics_text(State(s): State<HttpState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}
