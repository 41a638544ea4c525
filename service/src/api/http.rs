//! Plain HTTP routes on the gRPC port: `/healthz`, `/readyz`, `/metrics`.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

use super::Readiness;
use crate::telemetry::metrics::Metrics;

#[derive(Clone)]
struct HttpState {
    readiness: watch::Receiver<Readiness>,
    metrics: Metrics,
}

/// The HTTP routes.
pub fn routes(readiness: watch::Receiver<Readiness>, metrics: Metrics) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(HttpState { readiness, metrics })
}

/// 200 while the process serves requests.
async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 once the model is loaded and warmed up; 503 with the reason otherwise.
async fn readyz(State(s): State<HttpState>) -> impl IntoResponse {
    let (code, body) = match &*s.readiness.borrow() {
        Readiness::Ready(l) => (
            StatusCode::OK,
            serde_json::json!({"ready": true, "model": "loaded", "model_id": l.info.model.as_ref().map(|m| m.model_id.clone()), "fingerprint": l.info.fingerprint}),
        ),
        Readiness::Loading => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"ready": false, "model": "loading"}),
        ),
        Readiness::Failed(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"ready": false, "model": format!("failed: {why}")}),
        ),
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
