//! What a gRPC call meets before the service: a call over HTTP/1 is refused at once with a
//! sentence (instead of hanging until the caller gives up); a first message over
//! `--max-message-bytes` is answered RESOURCE_EXHAUSTED with a sentence after its bytes were read
//! and dropped (answering before would end in an HTTP/2 stream reset the caller cannot read); and
//! a `grpc-timeout` deadline is honoured: when it passes, the call's future is dropped (which
//! cancels its parses and queued embeddings, see `extract`) and the caller gets
//! DEADLINE_EXCEEDED.
//!
//! For a streaming call the deadline covers the time to the first response headers, as in
//! tonic's own transport.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::{StatusCode, Version, header};
use http_body_util::BodyExt;
use tonic::Status;

/// How much of an over-size message is read and dropped before answering; past it the stream
/// is reset instead.
const DRAIN_FACTOR: u64 = 4;

/// The middleware (`axum::middleware::from_fn_with_state`, with the message size limit).
pub async fn layer(State(max_message_bytes): State<usize>, req: Request, next: Next) -> Response {
    let is_grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"));
    if !is_grpc {
        return next.run(req).await;
    }
    if req.version() != Version::HTTP_2 {
        return (
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            format!(
                "gRPC needs HTTP/2, and this call came over {:?}: use a gRPC client (or \
                 grpcurl -plaintext), or the HTTP API (POST /v1/extract, /v1/embed)\n",
                req.version()
            ),
        )
            .into_response();
    }
    // A client stream may send its first message much later (or only after it has our
    // headers): waiting for it here would hold the call. Its messages meet tonic's own limit.
    let req = if is_client_streaming(req.uri().path()) {
        req
    } else {
        match first_message_fits(req, max_message_bytes).await {
            Ok(req) => req,
            Err(refusal) => return refusal,
        }
    };
    let deadline = match req.headers().get("grpc-timeout").map(parse_timeout) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(why)) => return Status::invalid_argument(why).into_http(),
    };
    match deadline {
        None => next.run(req).await,
        Some(d) => match tokio::time::timeout(d, next.run(req)).await {
            Ok(response) => response,
            Err(_) => Status::deadline_exceeded(format!(
                "the call's deadline ({} s, grpc-timeout) passed before it was answered; its \
                 work was stopped",
                d.as_secs_f64()
            ))
            .into_http(),
        },
    }
}

/// The methods whose request is a stream (their first message is not awaited here).
const CLIENT_STREAMING: &[&str] = &["/hemma.offload.v1.Offload/ExtractStream"];

/// Whether the gRPC method at `path` takes a stream of requests.
fn is_client_streaming(path: &str) -> bool {
    CLIENT_STREAMING.contains(&path)
}

/// Reads the first gRPC frame header (5 bytes: compression flag, big-endian length) and, when the
/// message it announces is over the limit, reads and drops the rest of the body and answers
/// RESOURCE_EXHAUSTED; otherwise gives the request back with its body intact.
async fn first_message_fits(req: Request, limit: usize) -> Result<Request, Response> {
    let (parts, mut body) = req.into_parts();
    let mut seen: Vec<Bytes> = Vec::new();
    let mut head = BytesMut::new();
    while head.len() < 5 {
        match body.frame().await {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    head.extend_from_slice(&data[..data.len().min(5 - head.len())]);
                    seen.push(data);
                }
                Err(_) => break, // trailers
            },
            Some(Err(e)) => {
                return Err(Status::cancelled(format!("the request body failed: {e}")).into_http());
            }
            None => break,
        }
    }
    if head.len() == 5 {
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as u64;
        if len > limit as u64 {
            let mut drained: u64 = seen.iter().map(|b| b.len() as u64).sum();
            let cap = len.min(limit as u64 * DRAIN_FACTOR) + 5;
            while drained < cap {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        drained += frame.data_ref().map_or(0, |d| d.len() as u64);
                    }
                    _ => break,
                }
            }
            return Err(Status::resource_exhausted(format!(
                "the request message is {len} bytes; this server takes messages of at most \
                 {limit} bytes (--max-message-bytes): send fewer or shorter texts per call \
                 (Info.limits says the limits)"
            ))
            .into_http());
        }
    }
    let rest = body.into_data_stream();
    let replay = futures::stream::iter(seen.into_iter().map(Ok::<_, axum::Error>)).chain(rest);
    Ok(Request::from_parts(parts, Body::from_stream(replay)))
}

/// Parses a `grpc-timeout` value: at most 8 digits and a unit (H, M, S, m, u, n).
fn parse_timeout(value: &http::HeaderValue) -> Result<Duration, String> {
    let bad = || {
        format!(
            "grpc-timeout {:?} is not 1 to 8 digits followed by H, M, S, m, u or n",
            String::from_utf8_lossy(value.as_bytes())
        )
    };
    let text = value.to_str().map_err(|_| bad())?;
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    Ok(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Duration, String> {
        parse_timeout(&http::HeaderValue::from_str(s).unwrap())
    }

    /// Sets its flag when dropped: the handler's future was dropped, its work stopped.
    struct DropFlag(std::sync::Arc<std::sync::atomic::AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// A router whose one gRPC method never answers, behind this guard.
    fn stalled(dropped: std::sync::Arc<std::sync::atomic::AtomicBool>) -> axum::Router {
        let handler = move || {
            let flag = DropFlag(dropped.clone());
            async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                drop(flag);
                "never"
            }
        };
        axum::Router::new()
            .route(
                "/hemma.offload.v1.Offload/Extract",
                axum::routing::post(handler),
            )
            .layer(axum::middleware::from_fn_with_state(1024usize, layer))
    }

    fn grpc_call(timeout: &str, message_len: u32) -> Request {
        let mut frame = vec![0u8];
        frame.extend_from_slice(&message_len.to_be_bytes());
        http::Request::builder()
            .method("POST")
            .uri("/hemma.offload.v1.Offload/Extract")
            .version(Version::HTTP_2)
            .header(header::CONTENT_TYPE, "application/grpc")
            .header("grpc-timeout", timeout)
            .body(Body::from(frame))
            .unwrap()
    }

    #[tokio::test]
    async fn a_passed_deadline_answers_deadline_exceeded_and_drops_the_work() {
        use tower::ServiceExt;
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let response = stalled(dropped.clone())
            .oneshot(grpc_call("100m", 0))
            .await
            .unwrap();
        assert_eq!(response.headers()["grpc-status"], "4", "DEADLINE_EXCEEDED");
        let message = response.headers()["grpc-message"].to_str().unwrap();
        assert!(message.contains("grpc-timeout"), "{message}");
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn an_over_size_first_message_is_resource_exhausted_with_a_sentence() {
        use tower::ServiceExt;
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let response = stalled(dropped)
            .oneshot(grpc_call("10S", 4096))
            .await
            .unwrap();
        assert_eq!(response.headers()["grpc-status"], "8", "RESOURCE_EXHAUSTED");
        let message = response.headers()["grpc-message"].to_str().unwrap();
        assert!(message.contains("max-message-bytes"), "{message}");
    }

    #[test]
    fn only_extract_stream_takes_a_stream_of_requests() {
        use hemma_proto::v1::offload_server::OffloadServer;
        use tonic::server::NamedService;
        let name = <OffloadServer<crate::api::offload::OffloadApi> as NamedService>::NAME;
        assert!(is_client_streaming(&format!("/{name}/ExtractStream")));
        assert!(!is_client_streaming(&format!("/{name}/Extract")));
    }

    #[test]
    fn timeouts_parse_as_the_grpc_spec_says() {
        assert_eq!(parse("2S"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1500m"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("1H"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("99999999n"), Ok(Duration::from_nanos(99_999_999)));
        for bad in ["", "S", "123456789S", "5s", "-1S", "1.5S"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
