//! Start-up and shutdown: checks the model folder, serves gRPC + HTTP on one listener, loads the
//! engine, and drains in-flight requests on shutdown.

use std::future::Future;
use std::sync::Arc;

use hemma_proto::v1::offload_server::OffloadServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic_health::ServingStatus;

use essay_features::analysis::Analyzer;
use hemma_embed::factory::{EngineLoader, FactoryError, engine_loader};
use hemma_embed::model::{ModelDir, ModelDirError};
use hemma_embed::plan::Budget;
use hemma_embed::queue::{Embedder, QueueConfig};
use hemma_embed::shapes::ShapeBuckets;
use hemma_embed::tokenize::{TextTokenizer, TokenizeError};
use hemma_embed::{Engine, EngineError};

use crate::api::info::info_response;
use crate::api::offload::OffloadApi;
use crate::api::{Loaded, Readiness};
use crate::config::{Config, EngineKind};
use crate::extract::{AnalysisPool, Extractor};
use crate::fingerprint::{EmbeddingIdentity, LanguageToolIdentity};
use crate::telemetry::{correlation, metrics::Metrics};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The model folder is unusable.
    #[error(transparent)]
    Model(#[from] ModelDirError),
    /// The tokenizer could not be loaded.
    #[error(transparent)]
    Tokenizer(#[from] TokenizeError),
    /// The engine could not be loaded.
    #[error("the {engine} engine failed to start: {source}")]
    Engine {
        /// Which engine.
        engine: String,
        /// Why.
        source: EngineError,
    },
    /// A setting does not fit the model.
    #[error("{0}")]
    Config(String),
    /// The engine was compiled out of this binary.
    #[error("this binary was built without the `{0}` engine (cargo feature `{0}`)")]
    EngineNotBuilt(String),
    /// Serving failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    /// LanguageTool is configured but cannot be used (e.g. it rejects the configured language).
    #[error("LanguageTool cannot be used: {0}")]
    LanguageTool(String),
    /// The native NLP models could not be loaded.
    #[error("the native NLP models in {dir} cannot be used (set --nlp-models-dir): {source}")]
    Nlp {
        /// The folder.
        dir: std::path::PathBuf,
        /// Why.
        source: spacy_en_core_sm::NlpError,
    },
    /// gRPC reflection could not be set up.
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(String),
    /// The embedding engine stopped while serving; a supervisor should restart the server.
    #[error(
        "the embedding engine stopped while serving (see the log for why); exiting so that \
         the supervisor (compose, systemd) restarts the server"
    )]
    EngineStopped,
}

/// A server whose configuration and model folder passed every check, ready to serve.
pub struct Prepared {
    config: Config,
    model: ModelDir,
    tokenizer: Arc<TextTokenizer>,
    identity: EmbeddingIdentity,
    analyzer: AnalysisPool,
    loader: EngineLoader,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("config", &self.config)
            .field("identity", &self.identity)
            .finish()
    }
}

impl Prepared {
    /// Verifies the model folder against its manifest and loads the tokenizer.
    pub fn new(config: Config) -> Result<Prepared, ServeError> {
        let model = ModelDir::open(&config.model_dir)?;
        let manifest = model.manifest();
        let max_length = config.max_length.unwrap_or(manifest.max_length);
        if max_length < 3 || max_length > manifest.max_length {
            return Err(ServeError::Config(format!(
                "max_length {max_length} is outside 3..={} (the model's maximum, from its manifest)",
                manifest.max_length
            )));
        }
        let tokenizer_file = model.verify("tokenizer.json", "tokenizer")?;
        let tokenizer = Arc::new(TextTokenizer::from_file(&tokenizer_file.path, max_length)?);
        let (loader, weights) = engine_loader(&config.engine, &model)?;
        let identity = EmbeddingIdentity {
            model_sha256: weights.sha256,
            tokenizer_sha256: tokenizer_file.sha256,
            max_length,
            pooling: "cls".into(),
            precision: config.engine.precision.name(),
            engine: config.engine.kind.name(),
            execution_provider: match config.engine.kind {
                EngineKind::Ort => config.engine.provider.name(),
                EngineKind::Candle => "cpu".into(),
            },
        };
        let analyzer =
            Analyzer::load(&config.nlp.models_dir).map_err(|source| ServeError::Nlp {
                dir: config.nlp.models_dir.clone(),
                source,
            })?;
        let analyzer = AnalysisPool::new(analyzer, config.nlp.threads);
        Ok(Prepared {
            config,
            model,
            tokenizer,
            identity,
            analyzer,
            loader,
        })
    }

    /// Wraps the engine once it is loaded (tests use it to observe or hold batches).
    pub fn map_engine<F>(mut self, wrap: F) -> Prepared
    where
        F: FnOnce(Box<dyn Engine>) -> Box<dyn Engine> + Send + 'static,
    {
        let load = self.loader;
        self.loader = Box::new(move || load().map(wrap));
        self
    }

    /// Serves on `listener` until `shutdown` resolves, then finishes in-flight requests.
    ///
    /// The listener answers `/healthz` at once; the engine loads meanwhile, after which
    /// `/readyz`, the gRPC health service and the Offload RPCs report ready. A failed load
    /// stops the server and returns the error.
    pub async fn serve<S>(self, listener: TcpListener, shutdown: S) -> Result<(), ServeError>
    where
        S: Future<Output = ()> + Send + 'static,
    {
        let Prepared {
            config,
            model,
            tokenizer,
            identity,
            analyzer,
            loader,
        } = self;
        let metrics = Metrics::new();
        let grammar = config.languagetool.as_ref().map(|lt| {
            Arc::new(languagetool_pool::start::start(
                lt,
                metrics.languagetool.clone(),
            ))
        });
        let (ready_tx, ready_rx) = watch::channel(Readiness::Loading);
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        health.set_not_serving::<OffloadServer<OffloadApi>>().await;

        let limit = config.limits.max_message_bytes;
        let offload = OffloadServer::new(OffloadApi::new(
            ready_rx.clone(),
            config.limits,
            config.stream_chunks_in_flight,
        ))
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
        // Both reflection versions: grpcurl and older tools ask for v1alpha.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(hemma_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_err =
            |e: tonic_reflection::server::Error| ServeError::Reflection(e.to_string());
        let reflection_v1 = reflection().build_v1().map_err(reflection_err)?;
        let reflection_v1alpha = reflection().build_v1alpha().map_err(reflection_err)?;
        let grpc = tonic::service::Routes::new(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(offload)
            .into_axum_router();
        let languagetool_url = config
            .languagetool
            .as_ref()
            .and_then(|lt| lt.urls.first())
            .map(|u| languagetool_pool::upstream::redact(u));
        let app = crate::api::http::routes(ready_rx.clone(), grammar.clone(), metrics.clone())
            .merge(crate::api::compat::routes(
                ready_rx,
                config.limits,
                languagetool_url,
            ))
            .merge(grpc)
            // Unknown paths: 404 naming the routes for HTTP, UNIMPLEMENTED for gRPC.
            .fallback(crate::api::http::not_found)
            .layer(axum::middleware::from_fn_with_state(
                config.limits.max_message_bytes,
                crate::api::grpc_guard::layer,
            ))
            .layer(axum::middleware::from_fn_with_state(
                metrics.clone(),
                correlation::layer,
            ));

        let addr = listener.local_addr()?;
        tracing::info!(%addr, "listening (gRPC and HTTP: /healthz /readyz /metrics)");
        let failed = Arc::new(tokio::sync::Notify::new());
        let stop = {
            let failed = failed.clone();
            async move {
                tokio::select! {
                    _ = shutdown => tracing::info!("shutdown requested: finishing in-flight requests"),
                    _ = failed.notified() => tracing::error!("stopping: the engine failed"),
                }
            }
        };
        let transport = config.transport;
        let server = tokio::spawn(crate::transport::serve(listener, app, transport, stop));

        let shapes = ShapeBuckets::new(
            config.shapes.rows.clone(),
            config.shapes.seq.clone(),
            identity.max_length,
        );
        let queue = QueueConfig {
            budget: Budget {
                max_tokens: config.batch.max_tokens,
                // A batch must fit the largest static row count.
                max_rows: shapes
                    .max_rows()
                    .map_or(config.batch.max_rows, |r| r.min(config.batch.max_rows)),
            },
            capacity: config.batch.queue_capacity,
            // One extraction holds a quarter of the queue at most (docs/architecture.md).
            share: (config.batch.queue_capacity / 4).max(1),
            shapes,
        };
        let engine_name = config.engine.kind.name();
        let mut server = server;
        let load = Embedder::start(loader, tokenizer, queue, metrics.embed.clone());
        // A shutdown during a long load (MIGraphX compiles) stops at once rather than after it.
        let load_result = tokio::select! {
            result = load => result,
            served = &mut server => {
                tracing::info!("stopped before the engine finished loading");
                return served
                    .map_err(|e| ServeError::Io(std::io::Error::other(e)))?
                    .map_err(ServeError::Io);
            }
        };
        // The model is in; LanguageTool (probed in the background since start) must answer too.
        let loaded = match load_result {
            Ok(embedder) => match &grammar {
                None => Ok((embedder, None)),
                Some(g) => {
                    ready_tx.send_replace(Readiness::AwaitingLanguageTool);
                    let wait = g.wait_ready();
                    tokio::select! {
                        version = wait => match version {
                            Ok(version) => Ok((embedder, Some(version))),
                            Err(why) => Err(ServeError::LanguageTool(why)),
                        },
                        served = &mut server => {
                            tracing::info!("stopped before LanguageTool answered");
                            return served
                                .map_err(|e| ServeError::Io(std::io::Error::other(e)))?
                                .map_err(ServeError::Io);
                        }
                    }
                }
            },
            Err(source) => Err(ServeError::Engine {
                engine: engine_name,
                source,
            }),
        };
        let mut engine_stopped = None;
        let load_error = match loaded {
            Ok((embedder, languagetool_version)) => {
                let languagetool =
                    grammar
                        .as_ref()
                        .zip(languagetool_version)
                        .map(|(g, version)| LanguageToolIdentity {
                            version,
                            options: g.defaults().clone(),
                            max_part_utf16: languagetool_pool::MAX_PART_UTF16,
                        });
                let info = info_response(
                    &config,
                    &model,
                    &identity,
                    &embedder,
                    analyzer.sha256(),
                    languagetool,
                );
                tracing::info!(fingerprint = %info.fingerprint, "ready");
                let extractor = Extractor::new(
                    analyzer,
                    embedder.clone(),
                    grammar.clone(),
                    metrics,
                    config.limits.max_strings_per_request,
                );
                engine_stopped = Some(embedder.stopped());
                ready_tx.send_replace(Readiness::Ready(Arc::new(Loaded {
                    embedder,
                    extractor,
                    info,
                    grammar: grammar.clone(),
                })));
                health.set_service_status("", ServingStatus::Serving).await;
                health.set_serving::<OffloadServer<OffloadApi>>().await;
                None
            }
            Err(e) => {
                ready_tx.send_replace(Readiness::Failed(e.to_string()));
                failed.notify_one();
                Some(e)
            }
        };
        let mut load_error = load_error;
        // Serving ends when the server stops or, first, when the engine dies under it.
        let mut finished = None;
        if let Some(stopped) = engine_stopped {
            tokio::select! {
                () = stopped => {
                    tracing::error!("the embedding engine stopped: readiness failed, health NOT_SERVING, shutting down");
                    ready_tx.send_replace(Readiness::Failed(
                        "the embedding engine stopped; the server is shutting down".into(),
                    ));
                    health.set_service_status("", ServingStatus::NotServing).await;
                    health.set_not_serving::<OffloadServer<OffloadApi>>().await;
                    failed.notify_one();
                    load_error = Some(ServeError::EngineStopped);
                }
                served = &mut server => finished = Some(served),
            }
        }
        let served = match finished {
            Some(served) => served,
            None => server.await,
        }
        .map_err(|e| ServeError::Io(std::io::Error::other(e)))?;
        // Dropping the readiness sender drops the embedder: the engine thread ends.
        drop(ready_tx);
        if let Some(e) = load_error {
            return Err(e);
        }
        served?;
        tracing::info!("server stopped");
        Ok(())
    }
}

impl From<FactoryError> for ServeError {
    fn from(e: FactoryError) -> ServeError {
        match e {
            FactoryError::Model(m) => ServeError::Model(m),
            FactoryError::NotBuilt(engine) => ServeError::EngineNotBuilt(engine),
        }
    }
}
