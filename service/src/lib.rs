//! hemma-offload: a feature server for essay-scoring research.
//!
//! It answers gRPC (`hemma.offload.v1`) and plain HTTP (`/healthz`, `/readyz`, `/metrics`) on one
//! port. Requests flow one way: [`api`] validates them, [`embed`] tokenises, queues, batches and
//! runs them on an engine (ONNX Runtime or candle), and [`api`] encodes the answer.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use hemma_offload::{config::{Config, ServeArgs}, server::Prepared};
//! let args = ServeArgs { model_dir: Some("tests/fixtures/tiny-deberta".into()), ..Default::default() };
//! let config = Config::resolve(args, None, None)?;
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! Prepared::new(config)?.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod api;
pub mod cli;
pub mod config;
pub mod embed;
pub mod extract;
pub mod features;
pub mod fetch;
pub mod fingerprint;
pub mod grammar;
pub mod model;
pub mod nlp;
pub mod selftest;
pub mod server;
pub mod telemetry;
