//! The listener: one port for gRPC (HTTP/2) and HTTP/1, hardened for a shared machine.
//!
//! At most `max_connections` connections are served at once (more wait in the kernel's backlog);
//! HTTP/1 clients get `header_read_timeout` to send their headers; HTTP/2 connections carry at
//! most `max_concurrent_streams` calls and are pinged every `keepalive` (a peer that does not
//! answer is dropped). On shutdown the listener closes, in-flight requests get `shutdown_grace`
//! to finish, and whatever is still open then (a client that never reads its stream) is cut.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::config::TransportConfig;

/// Serves `app` on `listener` until `shutdown` resolves, then drains as described above.
pub async fn serve<S>(
    listener: TcpListener,
    app: Router,
    transport: TransportConfig,
    shutdown: S,
) -> std::io::Result<()>
where
    S: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(transport.max_connections));
    let graceful = GracefulShutdown::new();
    let builder = builder(&transport);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            let _slot = slot;
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let open = connections.len();
    if open > 0 {
        tracing::info!(
            connections = open,
            grace_seconds = transport.shutdown_grace.as_secs_f64(),
            "listener closed; waiting for in-flight requests"
        );
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(transport.shutdown_grace) => {
            tracing::warn!(
                connections = connections.len(),
                "shutdown grace period over: cutting the connections still open"
            );
        }
    }
    connections.shutdown().await;
    Ok(())
}

/// The connection builder with the configured limits and timers.
fn builder(t: &TransportConfig) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(t.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(t.max_concurrent_streams)
        .keep_alive_interval(Some(t.keepalive))
        .keep_alive_timeout(t.keepalive);
    builder
}
