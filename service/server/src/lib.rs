//! hemma-offload: the feature server for essay-scoring research, composed from the workspace's
//! subsystem crates (`hemma-embed`, `languagetool-pool`, `essay-features`, `spacy-en-core-sm`).
//!
//! It answers gRPC (`hemma.offload.v1`) and plain HTTP (`/healthz`, `/readyz`, `/metrics`) on one
//! port. Requests flow one way: [`api`] validates them, [`extract`] runs the parses, embeddings
//! and LanguageTool checks of one request, and [`api`] encodes the answer. [`server`] wires the
//! subsystems together; see `docs/architecture.md`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use hemma_server::{config::{Config, ServeArgs}, server::Prepared};
//! let args = ServeArgs { model_dir: Some("../../tests/fixtures/tiny-deberta".into()), ..Default::default() };
//! let config = Config::resolve(args, None, None)?;
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! Prepared::new(config)?.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod api;
pub mod cli;
pub mod config;
pub mod extract;
pub mod fingerprint;
pub mod selftest;
pub mod server;
pub mod telemetry;
pub mod transport;
