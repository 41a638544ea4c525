//! `hemma-offload`: the server binary.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hemma_offload::config::{Config, ServeArgs};
use hemma_offload::server::Prepared;

/// Feature server for essay-scoring research: DeBERTa embeddings over gRPC.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve gRPC and HTTP on one port until SIGINT/SIGTERM.
    Serve {
        /// TOML file with the same settings (keys are the flag names with underscores).
        #[arg(long, env = "HEMMA_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        args: ServeArgs,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, args } => serve(config, args).await,
    }
}

async fn serve(file: Option<PathBuf>, args: ServeArgs) -> anyhow::Result<()> {
    let file = file.as_deref().map(ServeArgs::from_toml_file).transpose()?;
    // ORT_DYLIB_PATH is the variable ONNX Runtime users already set; it is read here only.
    let ort_env = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from);
    let config = Config::resolve(args, file, ort_env)?;
    hemma_offload::telemetry::init_logging(config.log_format);
    tracing::info!(config = %serde_json::to_string(&config)?, "starting");
    let prepared = Prepared::new(config.clone())?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    prepared.serve(listener, shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
